"""A card processor, simulated: the outside party the gateway's card rail talks to.

Run as its own HTTP process (`tally bank card-simulator`), it authorizes, captures, refunds and
pays out, idempotently by the merchant's reference; it sends HMAC-signed callbacks to the
gateway (`bank.signing`) and serves a daily settlement CSV. Its state lives in memory: it is a
test double for an acquirer, not a ledger.

Faults, configured per run (`--faults JSON`) or replaced between test cases with `PUT
/v1/faults` (the simulator's own control endpoint, no real acquirer has it):

- `decline`: every authorization is declined (card 4000000000000002 always is);
- `timeout_after_capture`: seconds the capture's answer is held after the money was taken,
  so the caller times out not knowing it was captured;
- `duplicate_callbacks`: how many times each callback is sent;
- `out_of_order_callbacks`: each event's callback is held back until the next one went;
- `settlement_delay`: seconds before the settlement file is served; `settlement_missing`: 404;
- `payout_fail`: every payout fails with reason `payout-declined`.
"""

from __future__ import annotations

import csv
import io
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from bank.signing import HEADER, sign

ALWAYS_DECLINED = "4000000000000002"


class Faults(BaseModel):
    decline: bool = False
    timeout_after_capture: float = Field(default=0.0, ge=0, le=60)
    duplicate_callbacks: int = Field(default=1, ge=1, le=10)
    out_of_order_callbacks: bool = False
    settlement_delay: float = Field(default=0.0, ge=0, le=60)
    settlement_missing: bool = False
    payout_fail: bool = False


class CardIn(BaseModel):
    number: str = Field(pattern=r"^[0-9]{12,19}$")
    expiry: str = Field(pattern=r"^(0[1-9]|1[0-2])/[0-9]{2}$")
    cvc: str = Field(pattern=r"^[0-9]{3,4}$")


class AuthorizeIn(BaseModel):
    reference: str = Field(min_length=1, max_length=64)
    amount: int = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    card: CardIn


class MoveIn(BaseModel):
    reference: str = Field(min_length=1, max_length=64)
    amount: int = Field(gt=0)


class PayoutIn(MoveIn):
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    card_token: str = Field(min_length=1, max_length=64)


@dataclass
class Record:
    """One reference on the rail: a card payment or a payout, and how far it got."""

    reference: str
    status: str
    rail_id: str
    amount: int
    currency: str
    day: str
    reason: str | None = None
    card_token: str | None = None
    card_last4: str | None = None
    history: list[str] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("history", "day", "currency")}


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


class Callbacks:
    """Delivers signed callbacks on a thread, with the faults that affect delivery."""

    def __init__(self, url: str | None, secret: str, faults: Faults) -> None:
        self.url = url
        self.secret = secret
        self.faults = faults
        self._held: list[bytes] = []
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        if self.url is None:
            return
        body = httpx.Request("POST", "/", json=event).content
        with self._lock:
            if not self.faults.out_of_order_callbacks:
                batch = [body]
            elif self._held:
                batch, self._held = [body, *self._held], []  # the newer one first
            else:
                batch, self._held = [], [body]
                threading.Timer(2.0, self.flush).start()  # no later event: send it anyway
        if batch:
            threading.Thread(target=self._deliver_all, args=(batch,), daemon=True).start()

    def flush(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        if held:
            self._deliver_all(held)

    def _deliver_all(self, batch: list[bytes]) -> None:
        for body in batch:
            self._deliver(body)

    def _deliver(self, body: bytes) -> None:
        assert self.url is not None
        for _ in range(self.faults.duplicate_callbacks):
            for attempt in range(5):
                try:
                    response = httpx.post(
                        self.url,
                        content=body,
                        headers={
                            "content-type": "application/json",
                            HEADER: sign(self.secret, body),
                        },
                        timeout=10,
                    )
                    if response.status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2 * (attempt + 1))


class Processor:
    """The simulated acquirer's books: records by reference, card tokens, faults."""

    def __init__(self, secret: str, callback_url: str | None, faults: Faults) -> None:
        self.secret = secret
        self.faults = faults
        self.callbacks = Callbacks(callback_url, secret, faults)
        self.records: dict[str, Record] = {}
        self.cards: dict[str, str] = {}  # token -> card number
        self.lock = threading.Lock()

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self.callbacks.faults = faults
        self.callbacks.flush()

    def _event(self, record: Record) -> None:
        record.history.append(record.status)
        self.callbacks.emit(
            {
                "event_id": secrets.token_hex(8),
                "kind": record.status,
                "reference": record.reference,
                "rail_id": record.rail_id,
                "amount": record.amount,
            }
        )

    def authorize(self, body: AuthorizeIn) -> Record:
        with self.lock:
            if (known := self.records.get(body.reference)) is not None:
                return known
            number = body.card.number
            token = secrets.token_hex(16)
            declined = None
            if not luhn_ok(number):
                declined = "invalid-card"
            elif number == ALWAYS_DECLINED or self.faults.decline:
                declined = "card-declined"
            else:
                self.cards[token] = number
            record = Record(
                body.reference,
                "declined" if declined else "authorized",
                "auth_" + secrets.token_hex(8),
                body.amount,
                body.currency,
                today(),
                reason=declined,
                card_token=None if declined else token,
                card_last4=number[-4:],
            )
            self.records[body.reference] = record
            self._event(record)
            return record

    def capture(self, body: MoveIn) -> Record:
        with self.lock:
            record = self._known(body.reference)
            if record.status == "authorized":
                if body.amount > record.amount:
                    raise HTTPException(422, "capture exceeds the authorization")
                record.status, record.amount = "captured", body.amount
                record.rail_id, record.day = "cap_" + secrets.token_hex(8), today()
                self._event(record)
            elif record.status not in ("captured", "refunded"):
                raise HTTPException(409, f"cannot capture a {record.status} payment")
        if self.faults.timeout_after_capture:
            time.sleep(self.faults.timeout_after_capture)
        return record

    def refund(self, body: MoveIn) -> Record:
        with self.lock:
            record = self._known(body.reference)
            if record.status == "captured":
                record.status, record.day = "refunded", today()
                self._event(record)
            elif record.status != "refunded":
                raise HTTPException(409, f"cannot refund a {record.status} payment")
            return record

    def payout(self, body: PayoutIn) -> Record:
        with self.lock:
            if (known := self.records.get(body.reference)) is not None:
                return known
            reason = None
            if body.card_token not in self.cards:
                reason = "unknown-card"
            elif self.faults.payout_fail:
                reason = "payout-declined"
            record = Record(
                body.reference,
                "failed" if reason else "paid",
                "po_" + secrets.token_hex(8),
                body.amount,
                body.currency,
                today(),
                reason=reason,
                card_token=body.card_token,
            )
            self.records[body.reference] = record
            self._event(record)
            return record

    def _known(self, reference: str) -> Record:
        record = self.records.get(reference)
        if record is None:
            raise HTTPException(404, f"no payment with reference {reference!r}")
        return record

    def settlement(self, day: str) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["day", "kind", "reference", "rail_id", "amount", "currency"])
        with self.lock:
            for record in self.records.values():
                if record.day == day and record.status in ("captured", "refunded", "paid"):
                    writer.writerow(
                        [day, record.status, record.reference, record.rail_id, record.amount,
                         record.currency]
                    )  # fmt: skip
        return out.getvalue()


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def create_app(
    secret: str, callback_url: str | None = None, faults: Faults | None = None
) -> FastAPI:
    """The simulator's HTTP API; every call but `/health` needs `Authorization: Bearer
    <secret>` (the merchant's API secret, which also signs callbacks)."""
    processor = Processor(secret, callback_url, faults or Faults())
    app = FastAPI(title="Tally card-processor simulator", docs_url=None, redoc_url=None)
    app.state.processor = processor

    @app.middleware("http")
    async def merchant_auth(request: Request, call_next: Any) -> Any:
        if (
            request.url.path != "/health"
            and request.headers.get("authorization") != f"Bearer {secret}"
        ):
            return JSONResponse({"detail": "missing or wrong merchant secret"}, status_code=401)
        return await call_next(request)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/authorizations")
    def authorize(body: AuthorizeIn) -> dict[str, Any]:
        return processor.authorize(body).answer()

    @app.post("/v1/captures")
    def capture(body: MoveIn) -> dict[str, Any]:
        return processor.capture(body).answer()

    @app.post("/v1/refunds")
    def refund(body: MoveIn) -> dict[str, Any]:
        return processor.refund(body).answer()

    @app.post("/v1/payouts")
    def payout(body: PayoutIn) -> dict[str, Any]:
        return processor.payout(body).answer()

    @app.get("/v1/references/{reference}")
    def lookup(reference: str) -> dict[str, Any]:
        return processor._known(reference).answer()

    @app.get("/v1/ledger")
    def ledger() -> list[dict[str, Any]]:
        """Every record with its status history (what the tests total against the chain)."""
        with processor.lock:
            return [asdict(record) for record in processor.records.values()]

    @app.get("/v1/settlements/{day}", response_class=PlainTextResponse)
    def settlement(day: date) -> str:
        if processor.faults.settlement_delay:
            time.sleep(processor.faults.settlement_delay)
        if processor.faults.settlement_missing or day.isoformat() > today():
            raise HTTPException(404, f"no settlement file for {day.isoformat()} yet")
        return processor.settlement(day.isoformat())

    @app.get("/v1/faults")
    def get_faults() -> Faults:
        return processor.faults

    @app.put("/v1/faults")
    def put_faults(faults: Faults) -> Faults:
        processor.set_faults(faults)
        return faults

    return app
