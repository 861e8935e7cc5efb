"""The case workflow: open -> assigned -> escalated -> closed, each step a note on the case.

Closing may act on chain, signed with the compliance key through the SDK (any `client` key
store): `release` or `reject` the payment's hold, `flag` the account (its payments are held
from now on); `no_action` closes without a transaction. A chain refusal (the hold is no longer
pending, say) leaves the case as it was and is reported to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bank.chain import reason_bytes
from bank.risk.models import Case, CaseNote, CaseState, Decision
from client import KeyStore
from client.errors import TallyClientError
from client.tokens import WalletToken
from client.wallet import Wallet

Resolution = Literal["release", "reject", "flag", "no_action"]


class CaseError(Exception):
    """A request the case's state refuses: `status` is the HTTP code to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Compliance:
    """The compliance key bound to the wallet token."""

    def __init__(self, store: KeyStore, label: str, rpc: str, token: str) -> None:
        self.wallet = Wallet(store, label, rpc)
        self.token = WalletToken(self.wallet, token)

    @property
    def address(self) -> str:
        return self.wallet.address

    def act(self, resolution: Resolution, decision: Decision, reason: str) -> str | None:
        """The chain action a resolution calls for; its transaction hash (None: no action)."""
        if resolution == "no_action":
            return None
        if resolution == "flag":
            return self.token.flag(decision.payer, reason_bytes(reason)).tx_hash
        if decision.hold_id is None:
            raise CaseError(409, f"{resolution}: this payment was not held on chain")
        if resolution == "release":
            return self.token.release_hold(decision.hold_id).tx_hash
        return self.token.reject_hold(decision.hold_id, reason_bytes(reason)).tx_hash


@dataclass
class Cases:
    sessions: sessionmaker[Session]
    compliance: Compliance

    def queue(self, state: CaseState | None, limit: int) -> list[dict[str, Any]]:
        with self.sessions() as session:
            query = select(Case, Decision).join(Decision, Case.decision_id == Decision.id)
            if state is None:
                query = query.where(Case.state != CaseState.CLOSED)
            else:
                query = query.where(Case.state == state)
            rows = session.execute(
                query.order_by(Decision.score.desc(), Case.id).limit(limit)
            ).all()
            return [view(case, decision) for case, decision in rows]

    def get(self, case_id: int) -> dict[str, Any]:
        with self.sessions() as session:
            case, decision = self._load(session, case_id)
            notes = session.scalars(
                select(CaseNote).where(CaseNote.case_id == case_id).order_by(CaseNote.id)
            )
            return {
                **view(case, decision),
                "notes": [
                    {"author": n.author, "action": n.action, "text": n.text,
                     "at": n.created_at.isoformat()}
                    for n in notes
                ],
            }  # fmt: skip

    def step(
        self, case_id: int, author: str, action: str, text: str, assignee: str | None = None
    ) -> dict[str, Any]:
        """assign, note or escalate."""
        with self.sessions() as session:
            case, _ = self._load(session, case_id)
            if case.state is CaseState.CLOSED:
                raise CaseError(409, "the case is closed")
            if action == "assign":
                case.assignee = assignee or author
                if case.state is CaseState.OPEN:
                    case.state = CaseState.ASSIGNED
                text = text or f"assigned to {case.assignee}"
            elif action == "escalate":
                case.state = CaseState.ESCALATED
            session.add(CaseNote(case_id=case.id, author=author, action=action, text=text))
            session.commit()
        return self.get(case_id)

    def close(
        self, case_id: int, author: str, resolution: Resolution, reason: str
    ) -> dict[str, Any]:
        with self.sessions() as session:
            case, decision = self._load(session, case_id)
            if case.state is CaseState.CLOSED:
                raise CaseError(409, "the case is closed")
            try:
                tx = self.compliance.act(resolution, decision, reason or resolution)
            except TallyClientError as exc:
                raise CaseError(409, f"the chain refused {resolution}: {exc}") from None
            case.state, case.resolution, case.resolution_tx = CaseState.CLOSED, resolution, tx
            text = f"{resolution}" + (f" ({tx})" if tx else "") + (f": {reason}" if reason else "")
            session.add(CaseNote(case_id=case.id, author=author, action="close", text=text))
            session.commit()
        return self.get(case_id)

    @staticmethod
    def _load(session: Session, case_id: int) -> tuple[Case, Decision]:
        case = session.get(Case, case_id)
        if case is None:
            raise CaseError(404, "no such case")
        decision = session.get(Decision, case.decision_id)
        assert decision is not None  # a foreign key
        return case, decision


def decision_view(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.id,
        "source": decision.source.value,
        "tx_hash": decision.tx_hash,
        "block_number": decision.block_number,
        "payer": decision.payer,
        "payee": decision.payee,
        "amount": decision.amount,
        "timestamp": decision.timestamp,
        "hold_id": decision.hold_id,
        "score": decision.score,
        "reasons": decision.reasons,
        "outcome": decision.outcome.value,
        "config_version": decision.config_version,
        "decided_at": decision.decided_at.isoformat(),
    }


def view(case: Case, decision: Decision) -> dict[str, Any]:
    return {
        "id": case.id,
        "state": case.state.value,
        "account": case.account,
        "assignee": case.assignee,
        "resolution": case.resolution,
        "resolution_tx": case.resolution_tx,
        "decision": decision_view(decision),
    }
