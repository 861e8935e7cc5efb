"""Alembic's environment for the gateway's database: `bank.db.upgrade` hands it a connection,
so migrations run in the gateway's own process at start (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context

from bank.models import Base
from bank.risk import models as _risk_models  # noqa: F401 - their tables in the metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
)
with context.begin_transaction():
    context.run_migrations()
