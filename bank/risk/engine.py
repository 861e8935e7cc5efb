"""The rules bound to the database: one `Scorer` shared by the monitor's thread and the
screening requests (under a lock), rebuilt at start from the decisions already stored, and the
writes that store each decision (and open its case) in one transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

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

    def record(self, payments: Iterable[ChainPayment]) -> list[Decision]:
        """Score and store payments read from the chain, in chain order, one transaction for
        the batch; payments of a transaction already decided (a redelivery) are skipped."""
        batch = list(payments)
        stored: list[Decision] = []
        with self.sessions() as session, self.lock:
            known = set(
                session.scalars(
                    select(Decision.tx_hash).where(
                        Decision.source == Source.MONITOR,
                        Decision.tx_hash.in_({p.tx_hash for p in batch}),
                    )
                )
            )
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
                decision = self._decision(
                    session,
                    Source.MONITOR,
                    item.tx_hash,
                    item.payment,
                    Assessment(assessment.score, tuple(reasons)),
                    Outcome.ALERT if alert or item.hold_id is not None else Outcome.ALLOW,
                )
                decision.block_number, decision.log_index = item.block_number, item.log_index
                decision.hold_id = item.hold_id
                if decision.outcome is Outcome.ALERT:
                    summary = "; ".join(f"{r.rule}: {r.detail}" for r in reasons)
                    decision.case = Case(
                        account=item.payment.payer,
                        state=CaseState.OPEN,
                        notes=[CaseNote(author="monitor", action="open", text=summary)],
                    )
                stored.append(decision)
            session.commit()
        return stored

    def screen(self, tx_hash: str, payment: Payment) -> Decision:
        """Judge a payment not yet sent (remembering nothing of it) and store the answer."""
        with self.lock:
            assessment = self.scorer.assess(payment)
        decisions = self.config.decisions
        if assessment.score >= decisions.deny_score:
            outcome = Outcome.DENY
        elif assessment.score >= decisions.hold_score:
            outcome = Outcome.HOLD
        else:
            outcome = Outcome.ALLOW
        with self.sessions() as session:
            existing = session.scalars(
                select(Decision).where(
                    Decision.source == Source.SCREENING, Decision.tx_hash == tx_hash
                )
            ).first()
            if existing is not None:
                return existing  # the same signed transaction asked again
            decision = self._decision(
                session, Source.SCREENING, tx_hash, payment, assessment, outcome
            )
            session.commit()
            return decision

    def _decision(
        self,
        session: Session,
        source: Source,
        tx_hash: str,
        payment: Payment,
        assessment: Assessment,
        outcome: Outcome,
    ) -> Decision:
        decision = Decision(
            source=source,
            tx_hash=tx_hash,
            payer=payment.payer,
            payee=payment.payee,
            amount=payment.amount,
            timestamp=payment.timestamp,
            score=assessment.score,
            reasons=[reason.as_dict() for reason in assessment.reasons],
            outcome=outcome,
            config_version=self.config.version,
        )
        session.add(decision)
        return decision
