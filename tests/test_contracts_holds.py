"""WalletToken's holds on a real node: a payment over the payer's tier review threshold, or
from or to an account compliance flagged, waits in a hold that compliance releases (paid with
its fee and points) or rejects (refunded), and that its payer may cancel after the review
window. Every case checks that the supply is conserved: spendable + locked (held) = supply."""

from __future__ import annotations

import time
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from tests.test_contracts_helpers import (
    FEES,
    ChainRole,
    Kind,
    Suite,
    assert_reverts,
    deploy_suite,
    logs,
    mine,
    top_up,
)

OVER, PAYER_FLAGGED, PAYEE_FLAGGED = 1, 2, 4
HELD, RELEASED, REJECTED, CANCELLED = 1, 2, 3, 4
THRESHOLD = 100_00  # tier 2 payments above 100.00 are held
WINDOW = 3  # seconds: the review window these tests configure
REASON = Web3.keccak(text="case 77")
PEOPLE: list[str] = []  # everyone the suite may pay: its customers and fee collector


@pytest.fixture(scope="module")
def suite(w3: Web3, dev_accounts: list[LocalAccount]) -> Suite:
    s = deploy_suite(
        w3,
        dev_accounts[0],
        dev_accounts[:3],
        2,
        spare=[(ChainRole.CUSTOMER, 1, 3), (ChainRole.CUSTOMER, 2, 9)],
    )
    PEOPLE.extend([*(a.address for a, _, _ in s.spare), s.collector.address])
    s.chain.tx(s.issuer, s.token.functions.setReviewThreshold(2, THRESHOLD))
    s.chain.tx(s.issuer, s.token.functions.setReviewThreshold(1, 30_00))
    s.chain.tx(s.issuer, s.token.functions.setReviewWindow(WINDOW))
    mine(s)
    return s


def fee(kind: Kind, amount: int) -> int:
    bps, fixed, cap = FEES[kind]
    return 0 if cap == 0 else min(amount * bps // 10_000 + fixed, cap)


def assert_conserved(suite: Suite) -> None:
    """Every unit minted is spendable or locked in a pending hold somewhere (these tests mint
    only to the suite's customers and pay fees only to its collector)."""
    token, people = suite.token, PEOPLE
    available = sum(token.functions.availableBalanceOf(p).call() for p in people)
    locked = sum(token.functions.lockedOf(p).call() for p in people)
    pending = 0
    for i in range(1, token.functions.holdCount().call() + 1):
        h = hold(suite, i)
        pending += h[1] + h[3] if h[6] == HELD else 0
    assert locked == pending
    assert available + locked == token.functions.totalSupply().call()
    assert all(
        token.functions.balanceOf(p).call()
        == token.functions.availableBalanceOf(p).call() + token.functions.lockedOf(p).call()
        for p in people
    )


def hold(suite: Suite, hold_id: int) -> list[Any]:
    """(from, amount, to, fee, kind, reasons, status, deadline)"""
    return list(suite.token.functions.hold(hold_id).call())


def held_event(suite: Suite, receipt: object) -> tuple[int, str, str, int, int, int]:
    (e,) = logs(suite.token, "PaymentHeld", receipt)
    a = e.args
    return a.holdId, a["from"], a.to, a.amount, a.kind, a.reasons


def test_over_threshold_is_held_then_released_as_the_payment(suite: Suite) -> None:
    token, chain = suite.token, suite.chain
    payer, payee = suite.take(ChainRole.CUSTOMER, 2), suite.take(ChainRole.CUSTOMER, 2)
    p, q, collector = payer.address, payee.address, suite.collector.address
    assert token.functions.reviewThreshold(2).call() == THRESHOLD
    top_up(suite, {p: 500_00})
    chain.tx(payer, token.functions.transfer(q, THRESHOLD))  # at the threshold: paid
    chain.tx(payer, token.functions.transferExternal(q, 150_00, Kind.EXTERNAL))
    *_, paid, held = mine(suite)
    assert logs(token, "Transfer", paid)[0].args.value == THRESHOLD
    charge = fee(Kind.EXTERNAL, 150_00)
    hold_id, *rest = held_event(suite, held)
    assert rest == [p, q, 150_00, Kind.EXTERNAL, OVER]
    for event in ("Transfer", "FeeCharged", "PointsEarned"):
        assert not logs(token, event, held)
    points_before = token.functions.accruedPoints(p).call()
    # Held: still the payer's balance, but not spendable; counted as spent today.
    assert token.functions.balanceOf(p).call() == 400_00
    assert token.functions.availableBalanceOf(p).call() == 250_00 - charge
    assert token.functions.lockedOf(p).call() == 150_00 + charge
    assert token.functions.spentToday(p).call() == 250_00
    assert token.functions.balanceOf(q).call() == THRESHOLD
    h = hold(suite, hold_id)
    assert h[:7] == [p, 150_00, q, charge, Kind.EXTERNAL, OVER, HELD]
    assert_reverts(
        token.functions.transfer(q, 250_00),
        p,
        "ERC20InsufficientBalance",
        p,
        250_00 - charge,
        250_00,
    )
    assert_conserved(suite)

    for who in (p, suite.issuer.address, suite.admins[0].address):
        role = suite.rules.functions.roleOf(who).call()
        assert_reverts(token.functions.releaseHold(hold_id), who, "UnauthorizedRole", who, role)
        fn = token.functions.rejectHold(hold_id, REASON)
        assert_reverts(fn, who, "UnauthorizedRole", who, role)
    fee_before = token.functions.balanceOf(collector).call()
    released = chain.run(suite.compliance, token.functions.releaseHold(hold_id))
    moves = [(t.args["from"], t.args.to, t.args.value) for t in logs(token, "Transfer", released)]
    assert moves == [(p, q, 150_00), (p, collector, charge)]
    assert logs(token, "FeeCharged", released)[0].args.fee == charge
    (earned,) = logs(token, "PointsEarned", released)
    assert (earned.args.account, earned.args.points) == (p, 150)
    assert token.functions.accruedPoints(p).call() == points_before + 150
    (done,) = logs(token, "HoldReleased", released)
    assert (done.args.holdId, done.args.amount, done.args.fee) == (hold_id, 150_00, charge)
    assert token.functions.balanceOf(p).call() == 250_00 - charge
    assert token.functions.lockedOf(p).call() == 0
    assert token.functions.balanceOf(q).call() == 250_00
    assert token.functions.balanceOf(collector).call() == fee_before + charge
    assert hold(suite, hold_id)[6] == RELEASED
    c = suite.compliance.address
    fn = token.functions.releaseHold(hold_id)
    assert_reverts(fn, c, "HoldNotPending", hold_id, RELEASED)
    assert_reverts(token.functions.releaseHold(10**6), c, "UnknownHold", 10**6)
    assert_conserved(suite)


def test_flagged_payer_and_payee_are_held_and_rejected_back(suite: Suite) -> None:
    token, chain = suite.token, suite.chain
    flagged, other = suite.take(ChainRole.CUSTOMER, 2), suite.take(ChainRole.CUSTOMER, 2)
    f, o, c = flagged.address, other.address, suite.compliance.address
    top_up(suite, {f: 50_00, o: 50_00})
    mine(suite)
    assert_reverts(token.functions.flag(f, REASON), f, "UnauthorizedRole", f, ChainRole.CUSTOMER)
    flagging = chain.run(suite.compliance, token.functions.flag(f, REASON))
    assert logs(token, "AccountFlagged", flagging)[0].args.reason == REASON
    assert token.functions.isFlagged(f).call() and not token.functions.isFrozen(f).call()
    chain.tx(flagged, token.functions.transfer(o, 10_00))  # a flagged account can still pay
    chain.tx(other, token.functions.transfer(f, 20_00))  # and be paid
    out, into = mine(suite)
    out_id, *out_rest = held_event(suite, out)
    in_id, *in_rest = held_event(suite, into)
    assert out_rest == [f, o, 10_00, Kind.INTERNAL, PAYER_FLAGGED]
    assert in_rest == [o, f, 20_00, Kind.INTERNAL, PAYEE_FLAGGED]
    assert (token.functions.balanceOf(f).call(), token.functions.balanceOf(o).call()) == (
        50_00,
        50_00,
    )
    assert token.functions.availableBalanceOf(f).call() == 40_00
    assert_conserved(suite)

    chain.tx(suite.compliance, token.functions.rejectHold(out_id, REASON))
    chain.tx(suite.compliance, token.functions.rejectHold(in_id, REASON))
    rejected, _ = mine(suite)
    (event,) = logs(token, "HoldRejected", rejected)
    assert (event.args.holdId, event.args.amount, event.args.reason) == (out_id, 10_00, REASON)
    assert not logs(token, "Transfer", rejected)
    for who in (f, o):
        assert token.functions.availableBalanceOf(who).call() == 50_00
        assert token.functions.lockedOf(who).call() == 0
    assert hold(suite, in_id)[6] == REJECTED
    assert_reverts(token.functions.releaseHold(in_id), c, "HoldNotPending", in_id, REJECTED)
    assert_conserved(suite)

    unflagged = chain.run(suite.compliance, token.functions.unflag(f))
    assert logs(token, "AccountUnflagged", unflagged)[0].args.account == f
    paid = chain.run(flagged, token.functions.transfer(o, 10_00))
    assert not logs(token, "PaymentHeld", paid)
    assert token.functions.balanceOf(o).call() == 60_00


def test_the_payer_cancels_only_after_the_review_window(suite: Suite) -> None:
    token, chain = suite.token, suite.chain
    payer, payee = suite.take(ChainRole.CUSTOMER, 2), suite.take(ChainRole.CUSTOMER, 2)
    p, q = payer.address, payee.address
    top_up(suite, {p: 300_00})
    chain.tx(payer, token.functions.transfer(q, 200_00))
    *_, held = mine(suite)
    hold_id = held_event(suite, held)[0]
    deadline = hold(suite, hold_id)[7]
    stamp = suite.chain.w3.eth.get_block(held["blockNumber"])["timestamp"]
    assert deadline == stamp + WINDOW
    fn = token.functions.cancelHold(hold_id)
    if time.time() < deadline - 1:
        assert_reverts(fn, p, "ReviewPending", hold_id, deadline)
    assert_reverts(fn, q, "NotHoldPayer", hold_id, q)
    time.sleep(max(0.0, deadline + 1 - time.time()))
    cancelled = chain.run(payer, token.functions.cancelHold(hold_id))
    (event,) = logs(token, "HoldCancelled", cancelled)
    assert (event.args.holdId, event.args["from"], event.args.amount) == (hold_id, p, 200_00)
    assert token.functions.availableBalanceOf(p).call() == 300_00
    assert token.functions.balanceOf(q).call() == 0
    c = suite.compliance.address
    assert_reverts(token.functions.releaseHold(hold_id), c, "HoldNotPending", hold_id, CANCELLED)
    assert_conserved(suite)


def test_holds_count_against_the_daily_limit(suite: Suite) -> None:
    token, chain = suite.token, suite.chain
    payer, payee = suite.take(ChainRole.CUSTOMER, 1), suite.take(ChainRole.CUSTOMER, 1)
    p, q = payer.address, payee.address
    assert token.functions.tierLimits(1).call() == [50_00, 100_00]
    top_up(suite, {p: 200_00})
    chain.tx(payer, token.functions.transfer(q, 40_00))  # over tier 1's 30.00 threshold
    chain.tx(payer, token.functions.transfer(q, 40_00))
    *_, first, _second = mine(suite)
    assert token.functions.spentToday(p).call() == 80_00
    fn = token.functions.transfer(q, 30_00)
    assert_reverts(fn, p, "OverDailyLimit", p, 80_00, 30_00, 100_00)
    # A rejected hold gives the money back, not the day's allowance: it was spent as asked.
    chain.run(suite.compliance, token.functions.rejectHold(held_event(suite, first)[0], REASON))
    assert token.functions.spentToday(p).call() == 80_00
    assert token.functions.availableBalanceOf(p).call() == 160_00
    assert_conserved(suite)
