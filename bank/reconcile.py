"""Reconciliation: the rail's settlement file, the gateway's records and the chain, for a day.

Three sources, one key each: a top-up's reference (the rail's merchant reference, the gateway's
`topups.reference`, `Minted.topUpRef` on chain) and a withdrawal's id (`wd-<id>` on the rail,
`withdrawals.id`, `WithdrawalBurned.id`). The day is UTC; the gateway's side is every top-up
and withdrawal created that day; the chain's side every `Minted` and `WithdrawalBurned` of
those records or of the rail's file in blocks stamped from that midnight to `LATE_MARGIN`
after the next, plus any other in blocks stamped that day that the gateway did not record on
another day. Only those blocks are read:
their range is found by binary search over the headers' timestamps (`Issuer.block_at`), so a
report costs the same on a chain of one day or of years, and names its range (`first_block`,
`last_block`). Breaks, by kind:

- `missing mint`: captured on the rail, no mint on chain;
- `mint without capture`: minted on chain, no capture on the rail (or a refunded one);
- `amount mismatch`: the sources disagree on the amount;
- `double payout`: one withdrawal paid out more than once on the rail;
- `missing burn`: paid out, not burned; `burn without payout`: burned, paid out neither on
  the rail nor in the gateway's records;
- `late settlement`: the gateway recorded a capture or payout the day's file does not list
  (or there is no file yet): the rail is expected to list it later.

Everything else is matched, and counted with its total in minor units.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bank.chain import Issuer
from bank.models import TopUp, TopUpState, Withdrawal, WithdrawalState
from bank.rails.base import CardRail, SettlementUnavailable
from bank.withdrawals import payout_reference

CAPTURED = (TopUpState.CAPTURED, TopUpState.MINTED)
LATE_MARGIN = timedelta(hours=2)
"""How long after midnight the chain is read for the day's mints and burns that settle late."""
PAID = (WithdrawalState.PAID, WithdrawalState.BURNED)


@dataclass(frozen=True)
class Break:
    kind: str
    reference: str
    rail_amount: int | None
    gateway_amount: int | None
    chain_amount: int | None


@dataclass
class Report:
    day: str
    settlement_file: bool
    first_block: int = 0
    last_block: int = -1
    matched_topups: int = 0
    matched_topup_total: int = 0
    matched_withdrawals: int = 0
    matched_withdrawal_total: int = 0
    breaks: list[Break] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "breaks": [asdict(b) for b in self.breaks]}

    def to_csv(self) -> str:
        """One line per matched total and per break (what operations open in a spreadsheet)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["day", "line", "reference", "rail_amount", "gateway_amount",
                         "chain_amount", "count"])  # fmt: skip
        writer.writerow([self.day, "matched top-ups", "", "", "", self.matched_topup_total,
                         self.matched_topups])  # fmt: skip
        writer.writerow([self.day, "matched withdrawals", "", "", "",
                         self.matched_withdrawal_total, self.matched_withdrawals])  # fmt: skip
        for b in self.breaks:
            writer.writerow([self.day, b.kind, b.reference, _blank(b.rail_amount),
                             _blank(b.gateway_amount), _blank(b.chain_amount), 1])  # fmt: skip
        return out.getvalue()


def _blank(value: int | None) -> str:
    return "" if value is None else str(value)


def day_window(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def reconcile(day: date, sessions: sessionmaker[Session], rail: CardRail, issuer: Issuer) -> Report:
    report = Report(day.isoformat(), settlement_file=True)
    rail_captures: dict[str, int] = {}
    rail_refunds: set[str] = set()
    payouts: Counter[str] = Counter()
    payout_amounts: dict[str, int] = {}
    try:
        for row in csv.DictReader(io.StringIO(rail.settlement_file(day))):
            if row["kind"] == "captured":
                rail_captures[row["reference"]] = int(row["amount"])
            elif row["kind"] == "refunded":
                rail_refunds.add(row["reference"])
            elif row["kind"] == "paid":
                payouts[row["reference"]] += 1
                payout_amounts[row["reference"]] = int(row["amount"])
    except SettlementUnavailable:
        report.settlement_file = False

    start, end = day_window(day)
    first = issuer.block_at(start.timestamp())
    next_day = issuer.block_at(end.timestamp())
    last = issuer.block_at((end + LATE_MARGIN).timestamp()) - 1
    report.first_block, report.last_block = first, last
    minted_all, burned_all = issuer.settlements(first, last)
    with sessions() as session:
        topups = {
            t.reference: t
            for t in session.scalars(
                select(TopUp).where(TopUp.created_at >= start, TopUp.created_at < end)
            )
        }
        withdrawals = {
            payout_reference(w.id): w
            for w in session.scalars(
                select(Withdrawal).where(
                    Withdrawal.created_at >= start, Withdrawal.created_at < end
                )
            )
        }
        other_topups = set(
            session.scalars(
                select(TopUp.reference).where(TopUp.reference.in_(set(minted_all) - set(topups)))
            )
        )
        day_ids = {w.id for w in withdrawals.values()}
        other_withdrawals = set(
            session.scalars(
                select(Withdrawal.id).where(Withdrawal.id.in_(set(burned_all) - day_ids))
            )
        )
    # A mint or burn belongs to the day of its capture or payout, in the rail's file or the
    # gateway's records (a mint just after midnight settles a capture of the day before); one
    # neither knows for that day, to the day its block is stamped unless the gateway recorded
    # it on another day.
    minted = {
        ref: s.amount for ref, s in minted_all.items()
        if ref in topups or ref in rail_captures
        or (s.block < next_day and ref not in other_topups)
    }  # fmt: skip
    burned = {
        i: s.amount for i, s in burned_all.items()
        if i in day_ids or payout_reference(i) in payouts
        or (s.block < next_day and i not in other_withdrawals)
    }  # fmt: skip

    def add(kind: str, ref: str, rail: int | None, gateway: int | None, chain: int | None) -> None:
        report.breaks.append(Break(kind, ref, rail, gateway, chain))

    for ref in sorted(set(rail_captures) | set(minted) | {r for r, t in topups.items()
                                                          if t.state in CAPTURED}):  # fmt: skip
        on_rail, on_chain = rail_captures.get(ref), minted.get(ref)
        gateway = topups[ref].amount if ref in topups else None
        recorded = ref in topups and topups[ref].state in CAPTURED
        if on_rail is None and recorded and ref not in rail_refunds:
            add("late settlement", ref, None, gateway, on_chain)
        elif on_rail is None and on_chain is not None:
            add("mint without capture", ref, None, gateway, on_chain)
        elif on_rail is None:
            add("late settlement", ref, None, gateway, on_chain)
        elif on_chain is None:
            add("missing mint", ref, on_rail, gateway, None)
        elif on_rail != on_chain or (gateway is not None and gateway != on_rail):
            add("amount mismatch", ref, on_rail, gateway, on_chain)
        else:
            report.matched_topups += 1
            report.matched_topup_total += on_rail

    paid_refs = set(payouts) | {r for r, w in withdrawals.items() if w.state in PAID}
    for ref in sorted(paid_refs | {payout_reference(i) for i in burned}):
        withdrawal_id = int(ref.removeprefix("wd-"))
        on_rail, on_chain = payout_amounts.get(ref), burned.get(withdrawal_id)
        gateway = withdrawals[ref].amount if ref in withdrawals else None
        if payouts[ref] > 1:
            add("double payout", ref, on_rail, gateway, on_chain)
        elif on_rail is None and on_chain is not None and ref not in withdrawals:
            add("burn without payout", ref, None, gateway, on_chain)
        elif on_rail is None:
            add("late settlement", ref, None, gateway, on_chain)
        elif on_chain is None:
            add("missing burn", ref, on_rail, gateway, None)
        elif on_rail != on_chain or (gateway is not None and gateway != on_rail):
            add("amount mismatch", ref, on_rail, gateway, on_chain)
        else:
            report.matched_withdrawals += 1
            report.matched_withdrawal_total += on_rail
    return report
