"""The bank's off-chain services: the card top-up and withdrawal gateway, the card rails, risk.

Layers: `bank` signs through `client` (its key stores and typed contract wrappers) and reads
the chain over JSON-RPC; it never imports `node`. Modules:

- `models`, `db`, `migrations/`: the gateway's records (SQLAlchemy 2, Alembic migrations run
  at start; SQLite embedded by default, PostgreSQL in production);
- `rails/`: the card-rail interface (`rails.base.CardRail`) and the simulator's adapter;
- `simulator`: a card processor run as its own HTTP process, with fault injection;
- `topups`, `withdrawals`, `outbox`, `chain`: the money movements and their crash-safe steps;
- `gateway`, `auth`, `cli`: the gateway's HTTP API, its API keys, and `tally bank`;
- `risk/`: the risk monitor (the node's event stream), screening and compliance cases.
"""
