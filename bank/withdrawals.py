"""Withdrawals: a `WithdrawalRequested` on chain becomes a card payout, then a burn.

The follower reads the events from a checkpoint kept in the database, in (block, log index)
order and up to the finalized head only; the events it read and the new checkpoint are
committed in one transaction [withdrawal.recorded], so a restart neither skips nor repeats
one. Each withdrawal is paid out on the rail under the reference `wd-<id>` (the rail is
idempotent by it) [withdrawal.paid]; the payout's result and the chain write it calls for
(`burnWithdrawal`, or `rejectWithdrawal` with the rail's reason) are committed together in
the outbox, which sends them (`bank.outbox`).
"""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bank.chain import Issuer
from bank.crash import crash_point
from bank.locks import KeyedLocks
from bank.models import (
    Checkpoint,
    OutboxEntry,
    OutboxKind,
    OutboxState,
    PayoutCard,
    Withdrawal,
    WithdrawalState,
)
from bank.rails.base import CardRail, RailResult, RailUnavailable

CHECKPOINT = "withdrawals"
MAX_RANGE = 2_000  # blocks per eth_getLogs call


def payout_reference(withdrawal_id: int) -> str:
    return f"wd-{withdrawal_id}"


class Withdrawals:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        rail: CardRail,
        issuer: Issuer,
        currency: str,
        wake: threading.Event,
        from_block: int = 0,
    ) -> None:
        self.sessions = sessions
        self.rail = rail
        self.issuer = issuer
        self.currency = currency
        self.wake = wake
        self.from_block = from_block
        self.locks = KeyedLocks()

    def follow(self) -> int:
        """Record the events of newly finalized blocks; returns how many were new."""
        with self.sessions() as session:
            checkpoint = session.get(Checkpoint, CHECKPOINT)
            first = checkpoint.next_block if checkpoint else self.from_block
        head = self.issuer.finalized_block()
        if head < first:
            return 0
        last = min(head, first + MAX_RANGE - 1)
        logs = self.issuer.withdrawal_logs(first, last)
        new = 0
        with self.sessions() as session, session.begin():
            checkpoint = session.get(Checkpoint, CHECKPOINT, with_for_update=True)
            if checkpoint is None:
                checkpoint = Checkpoint(name=CHECKPOINT, next_block=first)
                session.add(checkpoint)
            if checkpoint.next_block != first:
                return 0  # another follower moved it meanwhile: read again next time
            for log in logs:
                if session.get(Withdrawal, log.id) is None:
                    session.add(
                        Withdrawal(
                            id=log.id,
                            holder=log.holder,
                            amount=log.amount,
                            ref=log.ref,
                            block_number=log.block_number,
                            log_index=log.log_index,
                            state=WithdrawalState.REQUESTED,
                        )
                    )
                    new += 1
            checkpoint.next_block = last + 1
        if new:
            crash_point("withdrawal.recorded")
        return new

    def pay_pending(self) -> None:
        """Pay out every withdrawal still only requested, oldest first."""
        with self.sessions() as session:
            pending = session.scalars(
                select(Withdrawal.id)
                .where(Withdrawal.state == WithdrawalState.REQUESTED)
                .order_by(Withdrawal.block_number, Withdrawal.log_index)
            ).all()
        for withdrawal_id in pending:
            self.pay(withdrawal_id)

    def pay(self, withdrawal_id: int) -> None:
        lock = self.locks.get(withdrawal_id)
        if not lock.acquire(blocking=False):
            return
        try:
            with self.sessions() as session:
                withdrawal = session.get(Withdrawal, withdrawal_id)
                assert withdrawal is not None
                card = session.get(PayoutCard, withdrawal.holder)
            if withdrawal.state is not WithdrawalState.REQUESTED:
                return
            if card is None:
                self._record(withdrawal_id, None, "no-payout-card")
                return
            try:
                result = self.rail.payout(
                    payout_reference(withdrawal_id), withdrawal.amount, self.currency,
                    card.card_token,
                )  # fmt: skip
            except RailUnavailable:
                return  # asked again next pass: the rail pays a reference once
            crash_point("withdrawal.paid")
            self._record(withdrawal_id, result, result.reason if not result.approved else None)
        finally:
            lock.release()

    def _record(self, withdrawal_id: int, result: RailResult | None, refusal: str | None) -> None:
        """The payout's outcome and the chain write it calls for, in one transaction."""
        with self.sessions() as session, session.begin():
            withdrawal = session.get(Withdrawal, withdrawal_id, with_for_update=True)
            assert withdrawal is not None
            if withdrawal.state is not WithdrawalState.REQUESTED:
                return
            if result is not None:
                withdrawal.payout_id = result.rail_id
            if refusal is None:
                withdrawal.state, kind = WithdrawalState.PAID, OutboxKind.BURN
            else:
                withdrawal.state, kind = WithdrawalState.REJECTING, OutboxKind.REJECT
                withdrawal.reason = refusal[:32]
            session.add(
                OutboxEntry(
                    kind=kind,
                    subject=str(withdrawal_id),
                    account=withdrawal.holder,
                    amount=withdrawal.amount,
                    reason=withdrawal.reason,
                    state=OutboxState.PENDING,
                )
            )
        self.wake.set()

    def finished(self, session: Session, withdrawal_id: int, tx_hash: str | None) -> None:
        withdrawal = session.get(Withdrawal, withdrawal_id)
        assert withdrawal is not None
        withdrawal.chain_tx = tx_hash
        withdrawal.state = (
            WithdrawalState.BURNED
            if withdrawal.state is WithdrawalState.PAID
            else WithdrawalState.REJECTED
        )
