"""The gateway's database: an engine for a URL, and its schema brought to Alembic's head.

SQLite (a file under the data directory) is the default, so `tally bank gateway` runs with no
setup; PostgreSQL (`postgresql+psycopg://...`) is for production. The schema only ever comes
from the migrations in `bank/migrations` (`upgrade`), never from `create_all`, so a database
made by an older gateway is brought forward the same way a fresh one is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def sqlite_url(data_dir: Path) -> str:
    """The embedded default: `bank.sqlite3` in the data directory (created if missing)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'bank.sqlite3'}"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets a busy timeout and WAL so the gateway's threads share
    it, PostgreSQL a small pool."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    """`alembic upgrade head` on this database, in this process."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
