"""Top-ups: card money in, WalletToken out, each capture minted exactly once.

The steps (crash points in brackets, see `bank.crash`):

1. `submit` records the top-up under its idempotency key [topup.received]; a retry with the same
   key and body gets the same top-up back (and resumes it), a different body is a `Conflict`;
2. the rail authorizes [topup.authorized], then captures [topup.captured];
3. `record_capture` commits the capture and the pending mint (an outbox entry) in one
   transaction [topup.recorded]; the outbox worker mints (`bank.outbox`).

Whatever step a crash interrupts, `recover` (run by the worker) or the rail's callback picks it
up: the rail is idempotent by our reference and `lookup` tells what it already did, so the
gateway never asks twice for money or records a capture twice (the outbox's unique key). A
top-up the rail never heard of can only be resumed by a retry carrying the card (the gateway
does not keep card numbers); after `abandon_after` seconds it is marked failed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bank.crash import crash_point
from bank.locks import KeyedLocks
from bank.models import (
    OutboxEntry,
    OutboxKind,
    OutboxState,
    PayoutCard,
    TopUp,
    TopUpState,
    utcnow,
)
from bank.rails.base import Card, CardRail, RailResult, RailUnavailable

log = logging.getLogger("bank.topups")
IN_FLIGHT = (TopUpState.RECEIVED, TopUpState.AUTHORIZED)


class Conflict(Exception):
    """The idempotency key was used for a different request."""


@dataclass(frozen=True)
class TopUpRequest:
    account: str
    amount: int
    currency: str
    card: Card

    def fingerprint(self, secret: bytes) -> str:
        """A keyed hash of the whole request (card included) to compare retries with: keyed,
        so the stored value says nothing about the card number."""
        canonical = json.dumps(
            [self.account.lower(), self.amount, self.currency, self.card.number,
             self.card.expiry, self.card.cvc]
        )  # fmt: skip
        return hmac.new(secret, canonical.encode(), hashlib.sha256).hexdigest()


class TopUps:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        rail: CardRail,
        secret: bytes,
        wake: threading.Event,
        abandon_after: float = 600.0,
        recover_after: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.rail = rail
        self.secret = secret
        self.wake = wake  # set when a mint is queued, so the outbox worker sends it at once
        self.abandon_after = abandon_after
        self.recover_after = recover_after
        self.locks = KeyedLocks()

    def submit(self, api_key_id: int, key: str, request: TopUpRequest) -> tuple[TopUp, bool]:
        """The top-up for this idempotency key (created: True the first time), advanced as
        far as the rail allows now."""
        fingerprint = request.fingerprint(self.secret)
        with self.sessions() as session:
            topup = TopUp(
                idempotency_key=key,
                request_hash=fingerprint,
                api_key_id=api_key_id,
                account=request.account,
                amount=request.amount,
                currency=request.currency,
                reference=secrets.token_hex(32),
                card_last4=request.card.last4,
                state=TopUpState.RECEIVED,
            )
            session.add(topup)
            try:
                session.commit()
                created = True
            except IntegrityError:
                session.rollback()
                found = session.scalars(select(TopUp).where(TopUp.idempotency_key == key)).one()
                if found.request_hash != fingerprint or found.api_key_id != api_key_id:
                    raise Conflict(key) from None
                topup, created = found, False
        if created:
            crash_point("topup.received")
        if topup.state in IN_FLIGHT:
            topup = self.advance(topup.id, request.card)
        return topup, created

    def get(self, topup_id: int) -> TopUp | None:
        with self.sessions() as session:
            return session.get(TopUp, topup_id)

    def advance(self, topup_id: int, card: Card | None = None, *, wait: bool = True) -> TopUp:
        """Move a top-up forward as far as it goes now; the rail being unreachable leaves it
        where it is (the callback or the next recovery pass continues)."""
        lock = self.locks.get(topup_id)
        if not lock.acquire(blocking=wait):
            return self._load(topup_id)
        try:
            topup = self._load(topup_id)
            try:
                if topup.state is TopUpState.RECEIVED:
                    if card is not None:
                        result: RailResult | None = self.rail.authorize(
                            topup.reference, topup.amount, topup.currency, card
                        )
                        crash_point("topup.authorized")
                    else:
                        result = self.rail.lookup(topup.reference)
                    topup = self._apply(topup, result)
                if topup.state is TopUpState.AUTHORIZED:
                    captured = self.rail.capture(topup.reference, topup.amount)
                    crash_point("topup.captured")
                    topup = self._apply(topup, captured)
            except RailUnavailable:
                pass
            return topup
        finally:
            lock.release()

    def _load(self, topup_id: int) -> TopUp:
        with self.sessions() as session:
            topup = session.get(TopUp, topup_id)
            assert topup is not None
            return topup

    def _apply(self, topup: TopUp, result: RailResult | None) -> TopUp:
        """Record what the rail says about the top-up (None: it never heard of it)."""
        if result is None:
            age = utcnow() - _aware(topup.created_at)
            if age > timedelta(seconds=self.abandon_after):
                return self._set(topup.id, TopUpState.FAILED, "interrupted before authorization")
            return topup
        if result.status == "declined":
            return self._set(topup.id, TopUpState.DECLINED, result.reason or "declined")
        if result.status == "authorized":
            return self._authorized(topup.id, result)
        if result.status == "captured":
            return self.record_capture(topup.reference, result.rail_id)
        if result.status == "refunded":  # given back on the rail before we minted: never mint
            return self._set(topup.id, TopUpState.FAILED, "refunded on the rail")
        return topup

    def _set(self, topup_id: int, state: TopUpState, reason: str | None) -> TopUp:
        with self.sessions() as session, session.begin():
            topup = session.get(TopUp, topup_id, with_for_update=True)
            assert topup is not None
            if topup.state in IN_FLIGHT:
                topup.state, topup.reason = state, reason
            return topup

    def _authorized(self, topup_id: int, result: RailResult) -> TopUp:
        with self.sessions() as session, session.begin():
            topup = session.get(TopUp, topup_id, with_for_update=True)
            assert topup is not None
            if topup.state is TopUpState.RECEIVED:
                topup.state = TopUpState.AUTHORIZED
                topup.authorization_id = result.rail_id
            if result.card_token:
                _remember_card(session, topup.account, result.card_token,
                               result.card_last4 or topup.card_last4)  # fmt: skip
            return topup

    def record_capture(self, reference: str, capture_id: str) -> TopUp:
        """Commit the capture and its pending mint together (once, whoever gets here first:
        the request, the callback or recovery)."""
        with self.sessions() as session, session.begin():
            topup = session.scalars(
                select(TopUp).where(TopUp.reference == reference).with_for_update()
            ).one()
            if topup.state in IN_FLIGHT:
                topup.state, topup.capture_id = TopUpState.CAPTURED, capture_id
                session.add(
                    OutboxEntry(
                        kind=OutboxKind.MINT,
                        subject=reference,
                        account=topup.account,
                        amount=topup.amount,
                        state=OutboxState.PENDING,
                    )
                )
        crash_point("topup.recorded")
        self.wake.set()
        return topup

    def on_rail_event(self, kind: str, reference: str, rail_id: str) -> None:
        """A verified callback: a capture the gateway did not record yet is recorded now;
        anything else is already known or moves nothing (so duplicates and order are moot)."""
        with self.sessions() as session:
            topup = session.scalars(select(TopUp).where(TopUp.reference == reference)).first()
        if topup is None or topup.state not in IN_FLIGHT:
            return
        if kind != "captured":
            return
        with self.locks.get(topup.id):
            if self._load(topup.id).state in IN_FLIGHT:
                log.info("top-up %s: capture recorded from the rail's callback", topup.id)
                self.record_capture(reference, rail_id)

    def recover(self) -> None:
        """Resume top-ups left in flight (by a crash, or a rail that did not answer) once
        idle for `recover_after` seconds (the rail's callback usually comes first)."""
        cutoff = utcnow() - timedelta(seconds=self.recover_after)
        with self.sessions() as session:
            stuck = session.scalars(
                select(TopUp.id).where(TopUp.state.in_(IN_FLIGHT), TopUp.updated_at < cutoff)
            ).all()
        for topup_id in stuck:
            self.advance(topup_id, wait=False)

    def refund(self, reference: str, reason: str) -> None:
        """The chain refused the mint for good: give the card its money back."""
        with self.sessions() as session:
            topup = session.scalars(select(TopUp).where(TopUp.reference == reference)).one()
        self.rail.refund(reference, topup.amount)
        with self.sessions() as session, session.begin():
            row = session.get(TopUp, topup.id, with_for_update=True)
            assert row is not None
            row.state, row.reason = TopUpState.REFUNDED, reason[:200]

    def minted(self, session: Session, reference: str, tx_hash: str | None) -> None:
        topup = session.scalars(select(TopUp).where(TopUp.reference == reference)).one()
        topup.state, topup.mint_tx = TopUpState.MINTED, tx_hash


def _remember_card(session: Session, account: str, token: str, last4: str) -> None:
    """The account's payout card is now this one. Two first top-ups at once may race to
    insert it: the loser's savepoint rolls back and it updates the winner's row instead."""
    card = session.get(PayoutCard, account, with_for_update=True)
    if card is None:
        try:
            with session.begin_nested():
                session.add(PayoutCard(account=account, card_token=token, card_last4=last4))
            return
        except IntegrityError:
            card = session.get(PayoutCard, account, with_for_update=True, populate_existing=True)
            assert card is not None
    card.card_token, card.card_last4 = token, last4


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC): make them comparable."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
