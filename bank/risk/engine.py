"""The rules bound to the database: one `Scorer` shared by the monitor's thread and the
screening requests (under a lock), rebuilt at start from the decisions already stored, and the
writes that store each decision (and open its case) in one transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from bank.models import utcnow
from bank.risk.config import RiskConfig
from bank.risk.models import Case, CaseNote, CaseState, Decision, Outcome, Source
from bank.risk.rules import Assessment, Payment, Reason, Scorer

HOLD_REASONS = ((1, "over the review threshold"), (2, "payer flagged"), (4, "payee flagged"))


@dataclass(frozen=True)
class ChainPayment:
    """A payment the monitor read from the stream (a Transfer, or a PaymentHeld)."""

    payment: Payment
    tx_hash: str
    block_number: int
    log_index: int
    hold_id: int | None = None
    hold_reasons: int = 0


class Engine:
    def __init__(self, config: RiskConfig, sessions: sessionmaker[Session]) -> None:
        self.config = config
        self.sessions = sessions
        self.scorer = Scorer(config)
        self.lock = threading.Lock()

    def load_history(self, now: float | None = None) -> int:
        """Replay the monitor's stored payments still inside the rules' horizon."""
        decisions = self.config.decisions
        horizon = (now or time.time()) - max(
            decisions.history_seconds, self.config.rules.dormant.idle_seconds
        )
        with self.sessions() as session:
            rows = session.execute(
                select(Decision.payer, Decision.payee, Decision.amount, Decision.timestamp)
                .where(Decision.source == Source.MONITOR, Decision.timestamp >= horizon)
                .order_by(Decision.timestamp, Decision.id)
            ).all()
        with self.lock:
            self.scorer.replay(Payment(*row) for row in rows)
        return len(rows)

    def record(self, payments: Iterable[ChainPayment]) -> int:
        """Score and store payments read from the chain, in chain order, one transaction for
        the batch (bulk inserts: at the chain's peak rate the ORM's per-object work was the
        monitor's bottleneck); payments of a transaction already decided (a redelivery) are
        skipped. Returns how many were decided."""
        batch = list(payments)
        with self.sessions() as session, self.lock:
            known = set(
                session.scalars(
                    select(Decision.tx_hash).where(
                        Decision.source == Source.MONITOR,
                        Decision.tx_hash.in_({p.tx_hash for p in batch}),
                    )
                )
            )
            rows: list[dict[str, Any]] = []
            opened: list[tuple[int, str, str]] = []  # (row index, account, summary)
            for item in batch:
                if item.tx_hash in known:
                    continue
                known.add(item.tx_hash)
                assessment = self.scorer.observe(item.payment)
                reasons = list(assessment.reasons)
                if item.hold_id is not None:
                    held = ", ".join(text for bit, text in HOLD_REASONS if item.hold_reasons & bit)
                    reasons.append(Reason("held_on_chain", 0, f"hold {item.hold_id}: {held}"))
                alert = assessment.score >= self.config.decisions.alert_score
                if alert or item.hold_id is not None:
                    summary = "; ".join(f"{r.rule}: {r.detail}" for r in reasons)
                    opened.append((len(rows), item.payment.payer, summary))
                rows.append(
                    self._row(
                        Source.MONITOR,
                        item.tx_hash,
                        item.payment,
                        Assessment(assessment.score, tuple(reasons)),
                        Outcome.ALERT if alert or item.hold_id is not None else Outcome.ALLOW,
                    )
                    | {
                        "block_number": item.block_number,
                        "log_index": item.log_index,
                        "hold_id": item.hold_id,
                    }
                )
            if rows:
                ids = list(
                    session.scalars(
                        insert(Decision).returning(Decision.id, sort_by_parameter_order=True),
                        rows,
                    )
                )
                if opened:
                    case_ids = list(
                        session.scalars(
                            insert(Case).returning(Case.id, sort_by_parameter_order=True),
                            [
                                {"decision_id": ids[index], "account": account,
                                 "state": CaseState.OPEN}
                                for index, account, _ in opened
                            ],
                        )
                    )  # fmt: skip
                    session.execute(
                        insert(CaseNote),
                        [
                            {"case_id": case_id, "author": "monitor", "action": "open",
                             "text": summary}
                            for case_id, (_, _, summary) in zip(case_ids, opened, strict=True)
                        ],
                    )  # fmt: skip
            session.commit()
        return len(rows)

    def screen(self, tx_hash: str, payment: Payment, chain: Reason | None = None) -> Decision:
        """Judge a payment not yet sent (remembering nothing of it) and store the answer;
        `chain` says the chain itself would hold it (at least a hold, then)."""
        with self.lock:
            assessment = self.scorer.assess(payment)
        decisions = self.config.decisions
        if assessment.score >= decisions.deny_score:
            outcome = Outcome.DENY
        elif assessment.score >= decisions.hold_score or chain is not None:
            outcome = Outcome.HOLD
        else:
            outcome = Outcome.ALLOW
        if chain is not None:
            assessment = Assessment(assessment.score, (*assessment.reasons, chain))
        with self.sessions() as session:
            existing = session.scalars(
                select(Decision).where(
                    Decision.source == Source.SCREENING, Decision.tx_hash == tx_hash
                )
            ).first()
            if existing is not None:
                return existing  # the same signed transaction asked again
            decision = Decision(
                **self._row(Source.SCREENING, tx_hash, payment, assessment, outcome)
            )
            session.add(decision)
            session.commit()
            return decision

    def _row(
        self,
        source: Source,
        tx_hash: str,
        payment: Payment,
        assessment: Assessment,
        outcome: Outcome,
    ) -> dict[str, Any]:
        return {
            "source": source,
            "tx_hash": tx_hash,
            "payer": payment.payer,
            "payee": payment.payee,
            "amount": payment.amount,
            "timestamp": payment.timestamp,
            "score": assessment.score,
            "reasons": [reason.as_dict() for reason in assessment.reasons],
            "outcome": outcome,
            "config_version": self.config.version,
            "decided_at": utcnow(),
        }
