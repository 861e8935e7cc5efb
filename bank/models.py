"""The gateway's records. Amounts are integers in minor units (cents), never floats.

A top-up moves forward through `TopUpState`, a withdrawal through `WithdrawalState`; every
chain write goes through `OutboxEntry`, recorded in the same transaction as the rail result
that calls for it, so a crash between the two cannot lose or double it.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class TopUpState(enum.StrEnum):
    RECEIVED = "received"  # recorded; the rail not yet asked (or its answer not recorded)
    AUTHORIZED = "authorized"
    CAPTURED = "captured"  # money taken: a mint is in the outbox
    MINTED = "minted"
    DECLINED = "declined"
    FAILED = "failed"  # abandoned before any capture
    REFUNDED = "refunded"  # captured but the mint was refused: the card was refunded


class WithdrawalState(enum.StrEnum):
    REQUESTED = "requested"  # seen on chain
    PAID = "paid"  # paid out on the rail: a burn is in the outbox
    BURNED = "burned"
    REJECTING = "rejecting"  # the rail refused: a reject is in the outbox
    REJECTED = "rejected"


class OutboxKind(enum.StrEnum):
    MINT = "mint"
    BURN = "burn"
    REJECT = "reject"


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"  # a transaction went out; the chain decides whether it counted
    DONE = "done"
    FAILED = "failed"  # the chain refused for a reason other than "already done"


def _enum(kind: type[enum.StrEnum], name: str) -> Enum:
    return Enum(kind, name=name, native_enum=False, length=16, values_callable=_values)


def _values(kind: type[enum.StrEnum]) -> list[str]:
    return [member.value for member in kind]


class TopUp(Base):
    __tablename__ = "topups"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    account: Mapped[str] = mapped_column(String(42), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: Our reference for this payment on the rail and on chain (bytes32 as 64 hex digits).
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    card_last4: Mapped[str] = mapped_column(String(4))
    state: Mapped[TopUpState] = mapped_column(_enum(TopUpState, "topup_state"), index=True)
    reason: Mapped[str | None] = mapped_column(String(200))
    authorization_id: Mapped[str | None] = mapped_column(String(64))
    capture_id: Mapped[str | None] = mapped_column(String(64))
    mint_tx: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Withdrawal(Base):
    __tablename__ = "withdrawals"

    #: The withdrawal's id on chain (WalletToken's counter): the payout's idempotency key.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    holder: Mapped[str] = mapped_column(String(42), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    ref: Mapped[str] = mapped_column(String(64))
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[WithdrawalState] = mapped_column(
        _enum(WithdrawalState, "withdrawal_state"), index=True
    )
    reason: Mapped[str | None] = mapped_column(String(32))
    payout_id: Mapped[str | None] = mapped_column(String(64))
    chain_tx: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class OutboxEntry(Base):
    """A chain write the gateway owes: sent by the worker until the chain shows it done."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("kind", "subject", name="uq_outbox_kind_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[OutboxKind] = mapped_column(_enum(OutboxKind, "outbox_kind"))
    #: The top-up's reference (mint) or the withdrawal's id (burn, reject), as text.
    subject: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[OutboxState] = mapped_column(_enum(OutboxState, "outbox_state"), index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PayoutCard(Base):
    """Where an account's withdrawals are paid: the rail's token for the card it last topped up
    with (never the card number)."""

    __tablename__ = "payout_cards"

    account: Mapped[str] = mapped_column(String(42), primary_key=True)
    card_token: Mapped[str] = mapped_column(String(64))
    card_last4: Mapped[str] = mapped_column(String(4))


class Checkpoint(Base):
    """A follower of the chain's events: the node's event stream it reads (`stream_id`) and the
    first block not known to be wholly recorded (`next_block`), advanced in the transaction
    that records the events. The node keeps the stream's own checkpoint; `next_block` is where
    a new stream starts if the node lost this one."""

    __tablename__ = "checkpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_block: Mapped[int] = mapped_column(BigInteger)
    stream_id: Mapped[str | None] = mapped_column(String(32))


class ApiKey(Base):
    """An API key, stored as its SHA-256 (the key is 256 random bits: no salt or KDF needed)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    #: The customer's wallet address (customers act on it only); None for operations staff.
    account: Mapped[str | None] = mapped_column(String(42))
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CreditConsent(Base):
    """A customer's consent to credit evaluation (`bank.credit_api`): kept here, never on
    chain. Revoking keeps the row (who consented when stays on record) and stops evaluations."""

    __tablename__ = "credit_consents"

    account: Mapped[str] = mapped_column(String(42), primary_key=True)  # lower-case 0x-hex
    #: Where the consent was given (e.g. "wallet app", a form number): no personal data.
    source: Mapped[str] = mapped_column(String(64))
    granted_by_key: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CreditEvaluation(Base):
    """One evaluation a credit officer ran: who, of whom, when, under which model, the score."""

    __tablename__ = "credit_evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(42), index=True)
    officer_key: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    model_version: Mapped[str] = mapped_column(String(32))
    score: Mapped[int]
    as_of: Mapped[int] = mapped_column(BigInteger)  # the head block's timestamp it read
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
