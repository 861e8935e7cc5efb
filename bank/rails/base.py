"""The card-rail interface: what the gateway needs from an acquirer, and nothing more.

A real acquirer adapter implements `CardRail` and slots in where `SimulatorRail` does
(`bank.gateway.build`). The contract every method keeps, because the gateway's crash safety
rests on it:

- **Idempotent by our reference.** `authorize`, `capture`, `refund` and `payout` take the
  gateway's own reference (a top-up's 64-hex reference, a withdrawal's `wd-<id>`); calling one
  again with the same reference returns the first result and moves no money twice. Acquirers
  call this a merchant reference or an idempotency key; an adapter maps it to theirs.
- **`lookup(reference)` tells what the rail has**, so a gateway that crashed between asking
  and recording the answer learns the answer instead of guessing (None: the rail never heard
  of it).
- **Card numbers go to the rail only.** `authorize` returns the rail's reusable `card_token`
  and the last four digits; the gateway stores those, never the number.
- **Failures are typed**: a refusal is a result (`approved=False` with a reason); a transport
  failure or timeout raises `RailUnavailable`, after which the outcome is unknown and the
  gateway asks `lookup` (or waits for the callback).
- **Callbacks are signed**: `verify_callback(body, headers)` returns the event or raises
  `BadCallback`; the gateway acts on verified events only, and each is idempotent on its side
  (duplicates and any order are expected).
- **Settlement files**: `settlement_file(day)` returns the day's CSV (header
  `day,kind,reference,rail_id,amount,currency`), or raises `SettlementUnavailable` when the
  rail has none yet.

Amounts are integers in minor units (cents).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol, runtime_checkable

RailStatus = Literal["authorized", "declined", "captured", "refunded", "paid", "failed"]


class RailError(Exception):
    """Base of the rail's errors."""


class RailUnavailable(RailError):
    """No answer (connection refused, timeout, 5xx): the operation's outcome is unknown."""


class BadCallback(RailError):
    """A callback whose signature, timestamp or body does not check out."""


class SettlementUnavailable(RailError):
    """The rail has no settlement file for that day (yet)."""


@dataclass(frozen=True)
class Card:
    """What a customer types; handed to the rail's `authorize` and never stored."""

    number: str
    expiry: str  # MM/YY
    cvc: str

    @property
    def last4(self) -> str:
        return self.number[-4:]


@dataclass(frozen=True)
class RailResult:
    """The rail's answer for one reference."""

    reference: str
    status: RailStatus
    rail_id: str
    amount: int
    reason: str | None = None
    card_token: str | None = None
    card_last4: str | None = None

    @property
    def approved(self) -> bool:
        return self.status not in ("declined", "failed")


@dataclass(frozen=True)
class CallbackEvent:
    """A verified notification: `kind` is the status the reference reached on the rail."""

    event_id: str
    kind: RailStatus
    reference: str
    rail_id: str
    amount: int


@runtime_checkable
class CardRail(Protocol):
    """An acquirer, as the gateway uses it. Every call may raise `RailUnavailable`."""

    def authorize(self, reference: str, amount: int, currency: str, card: Card) -> RailResult:
        """Hold `amount` on the card: status `authorized` (with `card_token`) or `declined`."""
        ...

    def capture(self, reference: str, amount: int) -> RailResult:
        """Take the authorized money: status `captured` (`rail_id` is the capture id)."""
        ...

    def refund(self, reference: str, amount: int) -> RailResult:
        """Give a captured payment back: status `refunded`."""
        ...

    def payout(self, reference: str, amount: int, currency: str, card_token: str) -> RailResult:
        """Credit a card the rail tokenized: status `paid`, or `failed` with a reason."""
        ...

    def lookup(self, reference: str) -> RailResult | None:
        """The furthest status the rail reached for this reference, or None."""
        ...

    def settlement_file(self, day: date) -> str:
        """The day's settlement CSV; `SettlementUnavailable` if there is none yet."""
        ...

    def verify_callback(self, body: bytes, headers: Mapping[str, str]) -> CallbackEvent:
        """Check a callback's signature and freshness; `BadCallback` if it fails."""
        ...
