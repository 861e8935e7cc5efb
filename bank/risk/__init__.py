"""The bank's risk side: a monitor that scores every WalletToken payment from the node's event
stream, a screening endpoint for wallet apps, and case management for compliance.

Modules: `config` (the versioned rules file), `rules` (the scoring engine, pure), `watchlist`
(salted hashes), `models` (decisions, cases, notes), `monitor` (the WebSocket follower),
`screening` (a signed raw transaction in, allow/hold/deny out), `cases` (the case workflow and
the chain actions it signs with the compliance key), `app` (REST), `workload` (the seeded
synthetic population the benchmark and tests score), `cli` (`tally bank risk`).
"""
