"""The scoring engine: each payment against its payer's (and payee's) recent history, by the
rules of a `RiskConfig`. Pure and in memory (no database, no network), so the monitor, the
screening endpoint, the benchmark and the tests all score with the very same code.

`assess` judges a payment without remembering it (screening a transaction not yet sent);
`observe` judges and then records it (the monitor, payment after payment in chain order).
A payment's score is the sum of its reasons' scores, capped at 100.
"""

from __future__ import annotations

import statistics
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from bank.risk.config import RiskConfig
from bank.risk.watchlist import entry

RULES = (
    "velocity",
    "amount_vs_history",
    "new_counterparty",
    "structuring",
    "dormant",
    "fan_out",
    "fan_in",
    "watchlist",
)


@dataclass(frozen=True)
class Payment:
    payer: str
    payee: str
    amount: int
    timestamp: float


@dataclass(frozen=True)
class Reason:
    rule: str
    score: int
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "score": self.score, "detail": self.detail}


@dataclass(frozen=True)
class Assessment:
    score: int
    reasons: tuple[Reason, ...]

    @property
    def rules(self) -> set[str]:
        return {reason.rule for reason in self.reasons}


@dataclass
class Account:
    """What the rules remember of one account."""

    out: deque[tuple[float, int, str]] = field(default_factory=deque)  # (time, amount, payee)
    into: deque[tuple[float, int, str]] = field(default_factory=deque)  # (time, amount, payer)
    first_paid: dict[str, float] = field(default_factory=dict)  # payee -> first payment time
    last_out: float | None = None


def since(entries: deque[tuple[float, int, str]], start: float) -> list[tuple[float, int, str]]:
    """The entries after `start`, read from the newest back (they are in time order)."""
    found = []
    for item in reversed(entries):
        if item[0] <= start:
            break
        found.append(item)
    return found


class Scorer:
    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self.accounts: defaultdict[str, Account] = defaultdict(Account)
        rules = config.rules
        self.watched = frozenset(h.lower() for h in rules.watchlist.hashes)

    def observe(self, payment: Payment) -> Assessment:
        assessment = self.assess(payment)
        self.record(payment)
        return assessment

    def replay(self, payments: Iterable[Payment]) -> None:
        """Remember past payments (a restart rebuilding its state) without judging them."""
        for payment in payments:
            self.record(payment)

    def record(self, payment: Payment) -> None:
        payer = self.accounts[payment.payer.lower()]
        payee_key = payment.payee.lower()
        now = payment.timestamp
        payer.out.append((now, payment.amount, payee_key))
        payer.first_paid.setdefault(payee_key, now)
        payer.last_out = now
        self.accounts[payee_key].into.append((now, payment.amount, payment.payer.lower()))
        horizon = now - self.config.decisions.history_seconds
        while payer.out and payer.out[0][0] < horizon:
            payer.out.popleft()
        into = self.accounts[payee_key].into
        while into and into[0][0] < horizon:
            into.popleft()

    def assess(self, payment: Payment) -> Assessment:
        payer = self.accounts.get(payment.payer.lower()) or Account()
        reasons = [
            reason
            for check in (
                self._velocity,
                self._amount_vs_history,
                self._new_counterparty,
                self._structuring,
                self._dormant,
                self._fan_out,
                self._fan_in,
                self._watchlist,
            )
            for reason in check(payment, payer)
        ]
        return Assessment(min(100, sum(r.score for r in reasons)), tuple(reasons))

    def _velocity(self, p: Payment, a: Account) -> list[Reason]:
        rule = self.config.rules.velocity
        if not rule.enabled:
            return []
        recent = [amount for _, amount, _ in since(a.out, p.timestamp - rule.window_seconds)]
        count, total = len(recent) + 1, sum(recent) + p.amount
        found = []
        if count > rule.max_count:
            found.append(f"{count} payments in {rule.window_seconds} s (max {rule.max_count})")
        if total > rule.max_amount:
            found.append(f"{total} paid in {rule.window_seconds} s (max {rule.max_amount})")
        return [Reason("velocity", rule.score, "; ".join(found))] if found else []

    def _amount_vs_history(self, p: Payment, a: Account) -> list[Reason]:
        rule = self.config.rules.amount_vs_history
        if not rule.enabled or len(a.out) < rule.min_history or p.amount < rule.min_amount:
            return []
        median = statistics.median(amount for _, amount, _ in a.out)
        if p.amount <= rule.multiple * median:
            return []
        ratio = p.amount / max(median, 1)
        detail = f"{p.amount} is {ratio:.1f}x the payer's median {median:g}"
        return [Reason("amount_vs_history", rule.score, detail)]

    def _new_counterparty(self, p: Payment, a: Account) -> list[Reason]:
        rule = self.config.rules.new_counterparty
        if not rule.enabled or p.amount < rule.large_amount or p.payee.lower() in a.first_paid:
            return []
        detail = f"first payment to this payee is {p.amount} (large: {rule.large_amount})"
        return [Reason("new_counterparty", rule.score, detail)]

    def _structuring(self, p: Payment, a: Account) -> list[Reason]:
        rule = self.config.rules.structuring
        if not rule.enabled:
            return []
        for limit in rule.limits:
            floor = limit * (1 - rule.margin)
            if not floor <= p.amount < limit:
                continue
            recent = since(a.out, p.timestamp - rule.window_seconds)
            count = 1 + sum(1 for _, amount, _ in recent if floor <= amount < limit)
            if count >= rule.min_count:
                detail = f"{count} payments just under {limit} in {rule.window_seconds} s"
                return [Reason("structuring", rule.score, detail)]
        return []

    def _dormant(self, p: Payment, a: Account) -> list[Reason]:
        rule = self.config.rules.dormant
        if not rule.enabled or a.last_out is None or p.amount < rule.min_amount:
            return []
        idle = p.timestamp - a.last_out
        if idle < rule.idle_seconds:
            return []
        return [Reason("dormant", rule.score, f"first payment out after {idle:.0f} s idle")]

    def _fan_out(self, p: Payment, a: Account) -> list[Reason]:
        rule = self.config.rules.fan_out
        if not rule.enabled:
            return []
        start = p.timestamp - rule.window_seconds
        new = {payee for payee, first in a.first_paid.items() if first > start}
        if p.payee.lower() in a.first_paid:
            return []  # only a payment to a new payee extends a fan-out
        new.add(p.payee.lower())
        if len(new) < rule.min_new_payees:
            return []
        detail = f"{len(new)} new payees in {rule.window_seconds} s"
        return [Reason("fan_out", rule.score, detail)]

    def _fan_in(self, p: Payment, a: Account) -> list[Reason]:
        rule = self.config.rules.fan_in
        if not rule.enabled:
            return []
        sources = {payer for _, _, payer in since(a.into, p.timestamp - rule.window_seconds)}
        if len(sources) < rule.min_sources:
            return []
        # Pass-through over all the history kept: a mule pays on nearly all it receives, a
        # shop a fraction (its takings' share owed to suppliers).
        received = sum(amount for _, amount, _ in a.into)
        paid_on = p.amount + sum(amount for _, amount, _ in a.out)
        if paid_on < rule.pass_through * received:
            return []
        detail = (
            f"{len(sources)} payers in {rule.window_seconds} s; {paid_on} of {received} paid on"
        )
        return [Reason("fan_in", rule.score, detail)]

    def _watchlist(self, p: Payment, a: Account) -> list[Reason]:
        rule = self.config.rules.watchlist
        if not rule.enabled or not self.watched:
            return []
        found = [
            role
            for role, address in (("payer", p.payer), ("payee", p.payee))
            if entry(rule.salt, address) in self.watched
        ]
        if not found:
            return []
        return [Reason("watchlist", rule.score, f"{' and '.join(found)} on the watch list")]
