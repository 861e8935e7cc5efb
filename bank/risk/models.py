"""The risk side's records, in the gateway's database (same `Base`, same migrations).

A `Decision` is one payment scored: by the monitor (a payment on chain, one per transaction)
or by screening (a signed transaction not yet sent); it keeps the score, the reasons and the
version of the rules file that made it. A decision worth a look (or a payment the chain held)
opens a `Case`; every step of a case (assign, note, escalate, close, a chain action) is a
`CaseNote`, so the case carries its own audit trail.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bank.models import Base, _enum, utcnow


class Source(enum.StrEnum):
    MONITOR = "monitor"
    SCREENING = "screening"


class Outcome(enum.StrEnum):
    ALLOW = "allow"
    ALERT = "alert"  # monitor: a case was opened
    HOLD = "hold"  # screening: send it, it will be reviewed
    DENY = "deny"  # screening: do not send it


class CaseState(enum.StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    CLOSED = "closed"


class Decision(Base):
    __tablename__ = "risk_decisions"
    __table_args__ = (UniqueConstraint("source", "tx_hash", name="uq_risk_decision_tx"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[Source] = mapped_column(_enum(Source, "risk_source"))
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    log_index: Mapped[int | None] = mapped_column(Integer)
    payer: Mapped[str] = mapped_column(String(42), index=True)
    payee: Mapped[str] = mapped_column(String(42), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    #: The payment's time (the block's, or the screening's), Unix seconds.
    timestamp: Mapped[float] = mapped_column(Float, index=True)
    #: WalletToken's hold id when the chain held the payment.
    hold_id: Mapped[int | None] = mapped_column(BigInteger)
    score: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    outcome: Mapped[Outcome] = mapped_column(_enum(Outcome, "risk_outcome"))
    config_version: Mapped[str] = mapped_column(String(32))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Case(Base):
    __tablename__ = "risk_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("risk_decisions.id"), unique=True)
    account: Mapped[str] = mapped_column(String(42), index=True)
    state: Mapped[CaseState] = mapped_column(_enum(CaseState, "risk_case_state"), index=True)
    assignee: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolution_tx: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class CaseNote(Base):
    __tablename__ = "risk_case_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("risk_cases.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RiskState(Base):
    """Small named values the monitor keeps (its stream's id on the node)."""

    __tablename__ = "risk_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
