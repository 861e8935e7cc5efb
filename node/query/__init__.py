"""The node's read side, shared by JSON-RPC (`node.rpc`) and REST (`node.api`).

Typed Python values in and out: headers, records, proofs as bytes and ints. Each edge parses
its own wire format into these and encodes the answers its own way, so neither goes through
the other's encodings, and neither knows how the store lays blocks out.
"""
