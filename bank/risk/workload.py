"""A seeded synthetic workload: a population of ordinary customers and merchants, with fraud
patterns of each kind injected into it, every payment labelled with the episode it belongs to.

Normal customers pay 1-6 regular merchants about once a day (amounts log-normal around a
personal typical amount between 5.00 and 50.00), now and then a small first payment to a new
merchant or a friend, and sometimes pause for up to a month; merchants pay a fixed supplier a
third of their week's takings. Injected episodes, `episodes` of each kind:

- velocity: 15 ordinary-sized payments within 30 minutes;
- amount_vs_history: one payment of 15-40x the customer's typical amount to a regular merchant;
- new_counterparty: 1,500-4,000.00 to an account never paid before;
- structuring: 3 payments of 9,200-9,990.00 in a day (under a 10,000.00 limit);
- dormant: a customer active only in the first 20 days pays 300-900.00 after day 200;
- fan_out: 6 payments of 50-200.00 to 6 new payees within 3 hours;
- fan_in: a mule receives 100-500.00 from 6 customers within a day and pays 90% of it on;
- watchlist: an ordinary payment to a watch-listed account.

`evaluate` scores it with `rules.Scorer` in time order and gives, per rule, the alerts raised,
those on injected payments (precision) and the episodes of its own kind it caught (recall).
Same seed, same workload, on any machine (`random.Random`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bank.risk.config import RiskConfig
from bank.risk.rules import RULES, Payment, Scorer
from bank.risk.watchlist import entry

DAY = 86_400
START = 1_780_000_000  # a fixed epoch: the workload never depends on today's date


@dataclass(frozen=True)
class Labelled:
    payment: Payment
    pattern: str | None = None  # the injected kind, None for the normal population
    episode: int | None = None


@dataclass
class Workload:
    payments: list[Labelled]
    watched: list[str]  # watch-listed addresses (hash them with the config's salt)

    def config(self, base: RiskConfig) -> RiskConfig:
        """`base` with this workload's watch list added (salted as `base` says)."""
        rule = base.rules.watchlist
        hashes = [*rule.hashes, *(entry(rule.salt, a) for a in self.watched)]
        rules = base.rules.model_copy(
            update={"watchlist": rule.model_copy(update={"hashes": hashes})}
        )
        return base.model_copy(update={"rules": rules})


@dataclass
class Generator:
    """Build once (`build`): the generator's state is the workload being made."""

    seed: int = 1
    customers: int = 200
    merchants: int = 40
    days: int = 220
    episodes: int = 20
    rng: random.Random = field(init=False)
    out: list[Labelled] = field(init=False, default_factory=list)
    episode_ids: int = field(init=False, default=0)
    merchant_list: list[str] = field(init=False, default_factory=list)
    typical: dict[str, int] = field(init=False, default_factory=dict)  # a customer's usual
    regular: dict[str, list[str]] = field(init=False, default_factory=dict)  # their merchants

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        if self.days < 40:
            raise ValueError("a workload needs 40 days or more (dormancy needs 220)")

    def address(self) -> str:
        return "0x" + "".join(self.rng.choice("0123456789abcdef") for _ in range(40))

    def pay(
        self,
        payer: str,
        payee: str,
        amount: int,
        at: float,
        pattern: str | None = None,
        episode: int | None = None,
    ) -> None:
        self.out.append(Labelled(Payment(payer, payee, max(1, amount), at), pattern, episode))

    def daytime(self, day: int) -> float:
        return START + day * DAY + self.rng.uniform(7 * 3600, 22 * 3600)

    def build(self) -> Workload:
        self.merchant_list = [self.address() for _ in range(self.merchants)]
        people = [self.customer() for _ in range(self.customers)]
        for c in people:
            self.live(c, 0, self.days)
        self.merchants_pay()
        watched = [self.address() for _ in range(5)]
        for _ in range(self.episodes):
            self.episode_set(people, watched)
        self.out.sort(key=lambda labelled: labelled.payment.timestamp)
        return Workload(self.out, watched)

    def customer(self) -> str:
        c = self.address()
        self.typical[c] = int(self.rng.lognormvariate(7.0, 0.6))  # ~11.00 median
        count = min(self.rng.randint(1, 6), len(self.merchant_list))
        self.regular[c] = self.rng.sample(self.merchant_list, count)
        return c

    def live(self, c: str, first: int, last: int) -> None:
        """A normal customer's payments on days first..last-1 (a pause of up to 30 days
        now and then)."""
        rng = self.rng
        pause = rng.randint(first, max(first, last - 1))
        pause_end = pause + (rng.randint(5, 30) if rng.random() < 0.3 else 0)
        for day in range(first, last):
            if pause <= day < pause_end:
                continue
            for _ in range(rng.choices((0, 1, 2, 3), (3, 4, 2, 1))[0]):
                amount = int(self.typical[c] * rng.lognormvariate(0, 0.35))
                if rng.random() < 0.02:
                    payee = self.address()
                    amount = min(amount, self.typical[c])
                else:
                    payee = rng.choice(self.regular[c])
                self.pay(c, payee, amount, self.daytime(day))

    def merchants_pay(self) -> None:
        """Each merchant pays its supplier a third of the week's takings."""
        takings: dict[tuple[str, int], int] = {}
        merchants = set(self.merchant_list)
        for labelled in self.out:
            p = labelled.payment
            if p.payee in merchants:
                week = int(p.timestamp - START) // (7 * DAY)
                takings[(p.payee, week)] = takings.get((p.payee, week), 0) + p.amount
        suppliers = {m: self.address() for m in self.merchant_list}
        for (m, week), total in sorted(takings.items()):
            self.pay(m, suppliers[m], total // 3, self.daytime(week * 7 + 7))

    def actor(self, day: int) -> str:
        """A customer who lives normally until `day`, the day of their episode."""
        c = self.customer()
        self.live(c, 0, day)
        return c

    def episode_set(self, people: list[str], watched: list[str]) -> None:
        """One episode of each kind."""
        rng = self.rng

        def when(margin: int = 1) -> tuple[int, float]:
            day = rng.randint(30, self.days - margin)
            return day, self.daytime(day)

        c = self.customer()
        self.live(c, 0, 20)
        dormant_day = rng.randint(self.days - 20, self.days - 1)
        self.inject(
            "dormant",
            c,
            [(rng.choice(self.regular[c]), rng.randint(300_00, 900_00), self.daytime(dormant_day))],
        )
        day, t0 = when()
        c = self.actor(day)
        self.inject(
            "velocity",
            c,
            [
                (
                    rng.choice(self.regular[c]),
                    int(self.typical[c] * rng.uniform(0.6, 1.4)),
                    t0 + i * 120,
                )
                for i in range(15)
            ],
        )
        day, t0 = when()
        c = self.actor(day)
        self.inject(
            "amount_vs_history",
            c,
            [
                (
                    rng.choice(self.regular[c]),
                    int(self.typical[c] * rng.uniform(15, 40)) + 200_00,
                    t0,
                )
            ],
        )
        day, t0 = when()
        self.inject(
            "new_counterparty",
            self.actor(day),
            [(self.address(), rng.randint(1500_00, 4000_00), t0)],
        )
        day, t0 = when(2)
        self.inject(
            "structuring",
            self.actor(day),
            [
                (self.address(), rng.randint(9200_00, 9990_00), t0 + i * rng.uniform(1800, 20000))
                for i in range(3)
            ],
        )
        day, t0 = when()
        self.inject(
            "fan_out",
            self.actor(day),
            [(self.address(), rng.randint(50_00, 200_00), t0 + i * 1500) for i in range(6)],
        )
        day, t0 = when(2)
        mule, sources = self.address(), [self.actor(day) for _ in range(6)]
        amounts = [rng.randint(100_00, 500_00) for _ in sources]
        episode = self.next_episode()
        for i, (s, amount) in enumerate(zip(sources, amounts, strict=True)):
            self.pay(s, mule, amount, t0 + i * 1200, "fan_in", episode)
        self.pay(
            mule, self.address(), sum(amounts) * 9 // 10, t0 + 6 * 1200 + 600, "fan_in", episode
        )
        day, t0 = when()
        c = self.actor(day)
        self.inject("watchlist", c, [(rng.choice(watched), self.typical[c], t0)])

    def next_episode(self) -> int:
        self.episode_ids += 1
        return self.episode_ids

    def inject(self, pattern: str, payer: str, payments: list[tuple[str, int, float]]) -> None:
        episode = self.next_episode()
        for payee, amount, at in payments:
            self.pay(payer, payee, amount, at, pattern, episode)


@dataclass
class RuleFigures:
    alerts: int = 0  # payments this rule fired on
    on_injected: int = 0  # of which part of an injected episode (any kind)
    on_normal: int = 0  # of which in the normal population
    episodes: int = 0  # injected episodes of this rule's own kind
    caught: int = 0  # of which this rule fired on at least one payment

    @property
    def precision(self) -> float:
        return self.on_injected / self.alerts if self.alerts else 1.0

    @property
    def recall(self) -> float:
        return self.caught / self.episodes if self.episodes else 1.0


def evaluate(config: RiskConfig, workload: Workload) -> dict[str, RuleFigures]:
    """Score the workload in time order; figures per rule."""
    scorer = Scorer(workload.config(config))
    figures = {rule: RuleFigures() for rule in RULES}
    caught: dict[str, set[int]] = {rule: set() for rule in RULES}
    episodes: dict[str, set[int]] = {rule: set() for rule in RULES}
    for labelled in workload.payments:
        if labelled.pattern is not None and labelled.episode is not None:
            episodes[labelled.pattern].add(labelled.episode)
        for rule in scorer.observe(labelled.payment).rules:
            figure = figures[rule]
            figure.alerts += 1
            if labelled.pattern is None:
                figure.on_normal += 1
            else:
                figure.on_injected += 1
            if labelled.pattern == rule and labelled.episode is not None:
                caught[rule].add(labelled.episode)
    for rule in RULES:
        figures[rule].episodes = len(episodes[rule])
        figures[rule].caught = len(caught[rule])
    return figures
