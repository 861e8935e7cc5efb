"""The credit scorecard: a transparent score over a customer's on-chain history.

Five factors, each scored by a fixed table of bins (points, and a reason code when the bin is
not the best one), so a credit officer can see exactly why a score is what it is and the
customer can be told the main reasons, ordered by the points they cost:

- income regularity: the share of the last `periods` periods with a payment in from someone
  else (top-ups, minted from the zero address, are the customer's own money, not income);
- balance trend: the wallet-token balance at the end of the window against its start,
  rebuilt backwards from today's balance and the window's transfers;
- spending volatility: the coefficient of variation of each period's outgoing payments
  (withdrawals, burned to the zero address, are not spending; fewer than two payments in the
  window are too few to judge);
- held or rejected payments: any payment of the customer held for review, worse if rejected;
- account age: time since the first transfer seen in a look-back of twice the window.

Money is in integer minor units throughout. `MODEL_VERSION` names the bins and rules; the
period length is a parameter reported with every result (30 days in production; tests use
seconds so a history made by real transactions spans several periods).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

MODEL_VERSION = "tally-scorecard-1.0"
ZERO = "0x" + "0" * 40


@dataclass(frozen=True)
class Model:
    """The scorecard's parameters: `periods` periods of `period_seconds` each."""

    period_seconds: int = 30 * 86_400
    periods: int = 6

    @property
    def window(self) -> int:
        return self.period_seconds * self.periods

    @property
    def lookback(self) -> int:
        """How far back transfers are read: twice the window, for the account's age."""
        return 2 * self.window

    def as_dict(self) -> dict[str, int]:
        return {"period_seconds": self.period_seconds, "periods": self.periods}


@dataclass(frozen=True)
class Transfer:
    """A wallet-token transfer touching the customer (addresses lower-case 0x-hex)."""

    timestamp: int
    sender: str
    recipient: str
    amount: int


@dataclass(frozen=True)
class Held:
    """A payment of the customer held for review, with its status now."""

    timestamp: int
    amount: int
    status: str  # held, released, rejected, cancelled


@dataclass(frozen=True)
class History:
    """What the scorecard reads: the customer's transfers and held payments in the look-back,
    the balance now, and `now` (the head block's timestamp, not the wall clock)."""

    account: str
    now: int
    balance: int
    transfers: list[Transfer] = field(default_factory=list)
    holds: list[Held] = field(default_factory=list)


@dataclass(frozen=True)
class Factor:
    name: str
    points: int
    max_points: int
    value: float | int | None
    reason: str | None
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "factor": self.name,
            "points": self.points,
            "max_points": self.max_points,
            "value": self.value,
            "reason": self.reason,
            "description": self.description,
        }


#: Reason codes and what they tell the officer (and, in plain words, the customer).
REASONS = {
    "NO_INCOME": "no payments received from others in the window",
    "INCOME_IRREGULAR": "payments received in few of the window's periods",
    "BALANCE_DECLINING": "the balance fell by more than 10% over the window",
    "BALANCE_FLAT": "the balance did not grow over the window",
    "SPENDING_VOLATILE": "spending varies strongly from period to period",
    "SPENDING_THIN": "fewer than two payments made in the window",
    "PAYMENT_HELD": "a payment was held for review",
    "PAYMENT_REJECTED": "a payment was rejected after review",
    "ACCOUNT_YOUNG": "the account is younger than the window",
    "ACCOUNT_NEW": "the account is younger than half the window",
    "NO_HISTORY": "no transfers at all in the look-back",
}


def _factor(name: str, max_points: int, value: Any, points: int, reason: str | None) -> Factor:
    return Factor(name, points, max_points, value, reason, REASONS[reason] if reason else "")


def period_of(model: Model, now: int, timestamp: int) -> int | None:
    """Which period (0 oldest .. periods-1 newest) `timestamp` falls in, None if outside."""
    start = now - model.window
    if timestamp < start or timestamp > now:
        return None
    return min((timestamp - start) // model.period_seconds, model.periods - 1)


def _income(model: Model, history: History) -> Factor:
    me = history.account
    paid = {
        period_of(model, history.now, t.timestamp)
        for t in history.transfers
        if t.recipient == me and t.sender not in (me, ZERO)
    } - {None}
    share = len(paid) / model.periods
    if share >= 0.75:
        points, reason = 120, None
    elif share >= 0.5:
        points, reason = 70, "INCOME_IRREGULAR"
    elif share > 0:
        points, reason = 30, "INCOME_IRREGULAR"
    else:
        points, reason = 0, "NO_INCOME"
    return _factor("income_regularity", 120, round(share, 3), points, reason)


def _balance(model: Model, history: History) -> Factor:
    me, start = history.account, history.now - model.window
    net = 0
    for t in history.transfers:
        if t.timestamp < start:
            continue
        net += t.amount if t.recipient == me else 0
        net -= t.amount if t.sender == me else 0
    before = history.balance - net
    change = (history.balance - before) / max(before, 1)
    if change >= 0.1:
        points, reason = 100, None
    elif change >= -0.1:
        points, reason = 60, "BALANCE_FLAT"
    else:
        points, reason = 20, "BALANCE_DECLINING"
    return _factor("balance_trend", 100, round(change, 3), points, reason)


def _spending(model: Model, history: History) -> Factor:
    me = history.account
    totals = [0] * model.periods
    payments = 0
    for t in history.transfers:
        period = period_of(model, history.now, t.timestamp)
        if period is not None and t.sender == me and t.recipient not in (me, ZERO):
            totals[period] += t.amount
            payments += 1
    if payments < 2:
        return _factor("spending_volatility", 100, None, 50, "SPENDING_THIN")
    variation = statistics.pstdev(totals) / statistics.fmean(totals)
    if variation <= 0.5:
        points, reason = 100, None
    elif variation <= 1.0:
        points, reason = 60, "SPENDING_VOLATILE"
    else:
        points, reason = 20, "SPENDING_VOLATILE"
    return _factor("spending_volatility", 100, round(variation, 3), points, reason)


def _holds(model: Model, history: History) -> Factor:
    start = history.now - model.window
    recent = [h for h in history.holds if h.timestamp >= start]
    if any(h.status == "rejected" for h in recent):
        points, reason = 0, "PAYMENT_REJECTED"
    elif recent:
        points, reason = 60, "PAYMENT_HELD"
    else:
        points, reason = 100, None
    return _factor("held_payments", 100, len(recent), points, reason)


def _age(model: Model, history: History) -> Factor:
    if not history.transfers:
        return _factor("account_age", 100, None, 0, "NO_HISTORY")
    age = history.now - min(t.timestamp for t in history.transfers)
    if age >= model.window:
        points, reason = 100, None
    elif age >= model.window // 2:
        points, reason = 60, "ACCOUNT_YOUNG"
    else:
        points, reason = 20, "ACCOUNT_NEW"
    return _factor("account_age", 100, age, points, reason)


def evaluate(model: Model, history: History) -> dict[str, Any]:
    """The scorecard's result: the score, each factor's points, the reasons (most costly
    first), the model version and parameters, and what the history held."""
    factors = [scorer(model, history) for scorer in (_income, _balance, _spending, _holds, _age)]
    costly = sorted((f for f in factors if f.reason), key=lambda f: f.points - f.max_points)
    return {
        "account": history.account,
        "model_version": MODEL_VERSION,
        "parameters": model.as_dict(),
        "as_of": history.now,
        "score": sum(f.points for f in factors),
        "max_score": sum(f.max_points for f in factors),
        "factors": [f.as_dict() for f in factors],
        "reasons": [{"code": f.reason, "factor": f.name, "description": f.description}
                    for f in costly],
        "inputs": {"transfers": len(history.transfers), "holds": len(history.holds),
                   "balance": history.balance},
    }  # fmt: skip
