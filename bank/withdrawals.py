"""Withdrawals: a `WithdrawalRequested` on chain becomes a card payout, then a burn.

The requests come through the node's event stream (`bank.stream`), in (block, log index)
order, from committed (final) blocks only. Each delivered batch is committed in one
transaction [withdrawal.recorded] before it is acknowledged to the node, and a request
already recorded is skipped, so a crash on either side neither skips nor repeats one. Each
withdrawal is paid out on the rail under the reference `wd-<id>` (the rail is
idempotent by it) [withdrawal.paid]; the payout's result and the chain write it calls for
(`burnWithdrawal`, or `rejectWithdrawal` with the rail's reason) are committed together in
the outbox, which sends them (`bank.outbox`).
"""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bank.chain import WithdrawalLog
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


def payout_reference(withdrawal_id: int) -> str:
    return f"wd-{withdrawal_id}"


class Withdrawals:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        rail: CardRail,
        currency: str,
        wake: threading.Event,
        from_block: int = 0,
    ) -> None:
        self.sessions = sessions
        self.rail = rail
        self.currency = currency
        self.wake = wake
        self.from_block = from_block
        self.locks = KeyedLocks()

    def stream_start(self) -> tuple[str | None, int]:
        """The node stream the follower reads (None: none yet) and the block a new one starts
        at: the first block not wholly recorded, else `from_block`."""
        with self.sessions() as session:
            checkpoint = session.get(Checkpoint, CHECKPOINT)
            if checkpoint is None:
                return None, self.from_block
            return checkpoint.stream_id, checkpoint.next_block

    def use_stream(self, stream_id: str, next_block: int) -> None:
        """Remember the node stream created from `next_block` on."""
        with self.sessions() as session, session.begin():
            checkpoint = session.get(Checkpoint, CHECKPOINT, with_for_update=True)
            if checkpoint is None:
                session.add(Checkpoint(name=CHECKPOINT, next_block=next_block, stream_id=stream_id))
            else:
                checkpoint.stream_id = stream_id

    def record(self, requests: list[WithdrawalLog]) -> int:
        """Record a delivered batch of requests in one transaction; returns how many were new.
        A request already recorded (a batch delivered again after a crash before its ack) is
        skipped, so the stream's at-least-once delivery records each exactly once."""
        new = 0
        with self.sessions() as session, session.begin():
            for log in requests:
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
            checkpoint = session.get(Checkpoint, CHECKPOINT, with_for_update=True)
            if checkpoint is not None and requests:
                checkpoint.next_block = max(checkpoint.next_block, requests[-1].block_number)
        if new:
            crash_point("withdrawal.recorded")
            self.wake.set()
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
