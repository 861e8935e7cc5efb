"""Durable event streams: subscriptions to the chain's logs, delivered by webhook or WebSocket.

A subscription names what it wants (contracts, events, accounts) and how to receive it; its
checkpoint, the last (block, log index) the subscriber acknowledged, lives in the node's
LevelDB (`node.storage.schema`, prefixes `S` and `C`). Delivery always reads the committed
chain from the checkpoint on (`scan`), never only the live block feed, so a restart of either
side resumes where the subscriber left off: at least once, strictly in (block, log index)
order.
"""
