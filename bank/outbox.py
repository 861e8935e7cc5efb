"""The outbox worker: sends the chain writes the gateway owes, until the chain shows each done.

An entry is recorded in the same transaction as the rail result that calls for it (a capture
calls for a mint; a payout for a burn; a failed payout for a reject). The worker sends pending
entries without waiting, several at once [outbox.sent], records the hash [outbox.recorded], and
on later passes reads each outcome. It never decides from its own records that a write is done:
when a send or its transaction reverts, it asks the chain (`toppedUp(reference)`,
`withdrawal(id)`), because the likeliest reason is that an earlier send, whose hash a crash
kept from being recorded, already did it. WalletToken refuses a reused top-up reference
(`DuplicateTopUp`) and a second burn or reject of one withdrawal (`WithdrawalNotPending`): a
resend can never count twice.

A mint the chain refuses for another reason (the account not allowed, or frozen) ends with the
card refunded; a paused token is waited out.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bank.chain import Issuer
from bank.crash import crash_point
from bank.models import OutboxEntry, OutboxKind, OutboxState, utcnow
from bank.rails.base import RailError
from bank.topups import TopUps, _aware
from bank.withdrawals import Withdrawals
from client.errors import ExecutionReverted, TallyClientError
from client.tokens import WithdrawalStatus

log = logging.getLogger("bank.outbox")
BATCH = 200
SENDERS = 8  # the wallet hands its nonces out in order to concurrent senders
RETRY_LATER = ("EnforcedPause",)
CLOCK_SKEW = timedelta(minutes=5)
"""How far the node's block timestamps may lag the gateway's clock."""


class Outbox:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        issuer: Issuer,
        topups: TopUps,
        withdrawals: Withdrawals,
        resend_after: float = 30.0,
    ) -> None:
        self.sessions = sessions
        self.issuer = issuer
        self.topups = topups
        self.withdrawals = withdrawals
        self.resend_after = resend_after

    def run_once(self) -> int:
        """Send what is pending, then settle what was sent; returns how many are open."""
        with self.sessions() as session:
            entries = session.scalars(
                select(OutboxEntry)
                .where(OutboxEntry.state.in_((OutboxState.PENDING, OutboxState.SENT)))
                .order_by(OutboxEntry.id)
                .limit(BATCH)
            ).all()
        pending = [entry for entry in entries if entry.state is OutboxState.PENDING]
        if pending:  # in parallel: each send is a few node round trips (estimate, fees, send)
            with ThreadPoolExecutor(SENDERS) as pool:
                list(pool.map(self._send, pending))
        for entry in entries:
            self._settle(entry)
        return len(entries)

    def _transaction(self, entry: OutboxEntry) -> str:
        if entry.kind is OutboxKind.MINT:
            return self.issuer.mint(entry.account, entry.amount, entry.subject)
        if entry.kind is OutboxKind.BURN:
            return self.issuer.burn(int(entry.subject))
        return self.issuer.reject(int(entry.subject), entry.reason or "rejected")

    def _send(self, entry: OutboxEntry) -> None:
        try:
            tx_hash = self._transaction(entry)
        except ExecutionReverted as exc:
            self._resolve(entry, str(exc))
            return
        except TallyClientError as exc:
            log.warning("outbox %s: not sent (%s); retrying", entry.id, exc)
            return
        crash_point("outbox.sent")
        with self.sessions() as session, session.begin():
            row = session.get(OutboxEntry, entry.id, with_for_update=True)
            assert row is not None
            row.state, row.tx_hash, row.sent_at = OutboxState.SENT, tx_hash, utcnow()
            row.attempts += 1
        entry.state, entry.tx_hash, entry.sent_at = row.state, tx_hash, row.sent_at
        crash_point("outbox.recorded")

    def _settle(self, entry: OutboxEntry) -> None:
        if entry.state is not OutboxState.SENT or entry.tx_hash is None:
            return
        try:
            outcome = self.issuer.outcome(entry.tx_hash)
        except TallyClientError as exc:
            log.warning("outbox %s: cannot read the outcome (%s)", entry.id, exc)
            return
        if outcome == "succeeded":
            self._done(entry, entry.tx_hash)
        elif outcome == "reverted":
            self._resolve(entry, f"transaction {entry.tx_hash} reverted")
        elif entry.sent_at and utcnow() - _aware(entry.sent_at) > timedelta(
            seconds=self.resend_after
        ):
            self._set(entry, OutboxState.PENDING, "not final in time: resending")

    def _resolve(self, entry: OutboxEntry, error: str) -> None:
        """The chain refused: done already (an earlier send counted), or failed for good."""
        try:
            done, tx_hash = self._already_done(entry)
        except TallyClientError as exc:
            log.warning("outbox %s: cannot check the chain (%s)", entry.id, exc)
            return
        if done:
            if tx_hash is None:  # the state says done, its log is not found yet: look again
                log.warning("outbox %s: done on chain, its log not found yet", entry.id)
                return
            log.info("outbox %s: refused (%s); done already by %s", entry.id, error, tx_hash)
            self._done(entry, tx_hash)
            return
        if any(reason in error for reason in RETRY_LATER):
            self._set(entry, OutboxState.PENDING, error)
            return
        log.error("outbox %s (%s %s) failed: %s", entry.id, entry.kind, entry.subject, error)
        self._set(entry, OutboxState.FAILED, error)
        if entry.kind is OutboxKind.MINT:
            try:
                self.topups.refund(entry.subject, f"mint refused: {error}")
            except RailError as exc:
                log.error("refund of %s failed (%s): operations must refund it", entry.subject, exc)

    def _already_done(self, entry: OutboxEntry) -> tuple[bool, str | None]:
        """Whether the chain already shows this write, and the transaction that made it (looked
        for in blocks since the entry was queued, less `CLOCK_SKEW`)."""
        since = (_aware(entry.created_at) - CLOCK_SKEW).timestamp()
        if entry.kind is OutboxKind.MINT:
            if not self.issuer.topped_up(entry.subject):
                return False, None
            return True, self.issuer.mint_tx(entry.subject, since)
        withdrawal_id = int(entry.subject)
        burned = entry.kind is OutboxKind.BURN
        wanted = WithdrawalStatus.BURNED if burned else WithdrawalStatus.REJECTED
        if self.issuer.withdrawal_status(withdrawal_id) is not wanted:
            return False, None
        return True, self.issuer.withdrawal_tx(withdrawal_id, burned, since)

    def _set(self, entry: OutboxEntry, state: OutboxState, error: str) -> None:
        with self.sessions() as session, session.begin():
            row = session.get(OutboxEntry, entry.id, with_for_update=True)
            assert row is not None
            row.state, row.error = state, error[:300]

    def _done(self, entry: OutboxEntry, tx_hash: str | None) -> None:
        with self.sessions() as session, session.begin():
            row = session.get(OutboxEntry, entry.id, with_for_update=True)
            assert row is not None
            if row.state is OutboxState.DONE:
                return
            row.state, row.tx_hash = OutboxState.DONE, tx_hash
            if row.kind is OutboxKind.MINT:
                self.topups.minted(session, row.subject, tx_hash)
            else:
                self.withdrawals.finished(session, int(row.subject), tx_hash)
