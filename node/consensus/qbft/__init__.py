"""QBFT consensus as Besu runs it, split into a pure core and its ports.

`messages` holds the wire payloads and codecs, `validators` the arithmetic every node must agree
on (quorum, proposer rotation, round timeouts), and `state_machine` the per-height protocol: a
plain object fed events that returns actions, with no sockets, threads or clock of its own.
"""
