"""Tally node: execution, storage, consensus, p2p, txpool, permissioning, JSON-RPC, REST."""
