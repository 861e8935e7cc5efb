"""QBFT consensus as Besu runs it, split into a pure core and its ports.

`messages` holds the wire payloads and codecs, `validators` the arithmetic every node must agree
on (fault bound, proposer rotation, round timeouts), and `state_machine` the per-height
protocol: a plain object fed events that returns actions, with no sockets, threads or clock of
its own. The core imports no EVM: headers are `node.qbftheader`'s, and blocks are decoded by a
`messages.BlockCodec` the engine passes in (`node.consensus.block_codec`).
"""
