"""Risk monitoring (issue 18): scored payments, cases, case notes, the monitor's state.

Revision ID: 0004_risk
Revises: 0003
Create Date: 2026-12-04 04:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_risk"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "risk_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", _enum("risk_source", "monitor", "screening"), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("log_index", sa.Integer(), nullable=True),
        sa.Column("payer", sa.String(length=42), nullable=False),
        sa.Column("payee", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("hold_id", sa.BigInteger(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column(
            "outcome", _enum("risk_outcome", "allow", "alert", "hold", "deny"), nullable=False
        ),
        sa.Column("config_version", sa.String(length=32), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "tx_hash", name="uq_risk_decision_tx"),
    )
    with op.batch_alter_table("risk_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_risk_decisions_payer"), ["payer"], unique=False)
        batch_op.create_index(batch_op.f("ix_risk_decisions_payee"), ["payee"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_risk_decisions_timestamp"), ["timestamp"], unique=False
        )
    op.create_table(
        "risk_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column(
            "state",
            _enum("risk_case_state", "open", "assigned", "escalated", "closed"),
            nullable=False,
        ),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolution_tx", sa.String(length=66), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["decision_id"], ["risk_decisions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("decision_id"),
    )
    with op.batch_alter_table("risk_cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_risk_cases_account"), ["account"], unique=False)
        batch_op.create_index(batch_op.f("ix_risk_cases_state"), ["state"], unique=False)
    op.create_table(
        "risk_case_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["risk_cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("risk_case_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_risk_case_notes_case_id"), ["case_id"], unique=False)
    op.create_table(
        "risk_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("risk_state")
    op.drop_table("risk_case_notes")
    op.drop_table("risk_cases")
    op.drop_table("risk_decisions")
