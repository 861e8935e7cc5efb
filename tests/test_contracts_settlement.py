"""Escrow, BatchPayout and Netting on a real node, and netting's properties (value conserved,
no account below zero) on a pure-Python model and on chain."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from web3 import Web3

from tests.test_contracts_helpers import (
    UNLIMITED,
    ChainRole,
    Kind,
    Suite,
    assert_reverts,
    logs,
    mine,
    new_accounts,
    standard_suite,
    top_up,
)

REF = Web3.keccak(text="contract 77")
ACTIVE, DISPUTED, CLOSED = 1, 2, 3


@pytest.fixture(scope="module")
def suite(w3: Web3, dev_accounts: list[LocalAccount]) -> Suite:
    return standard_suite(w3, dev_accounts)


def balances(suite: Suite, accounts: Sequence[str]) -> list[int]:
    return [suite.token.functions.balanceOf(a).call() for a in accounts]


def now(suite: Suite) -> int:
    return suite.chain.w3.eth.get_block("latest")["timestamp"]


# ------------------------------------------------------------------------------------ escrow


def test_escrow_milestones_released_by_the_payer(suite: Suite) -> None:
    token, escrow, chain = suite.token, suite.escrow, suite.chain
    payer, payee = suite.take(ChainRole.ENTERPRISE, 3), suite.take(ChainRole.CUSTOMER, 2)
    (arbiter,) = new_accounts(1)
    p = payer.address
    deal = escrow.functions.dealCount().call() + 1
    top_up(suite, {p: 300_00})
    chain.tx(payer, token.functions.approve(escrow.address, 300_00))
    opened = escrow.functions.open(
        payee.address, arbiter.address, [100_00, 200_00], now(suite) + 3600, REF
    )
    chain.tx(payer, opened)
    chain.tx(payer, escrow.functions.release(deal, 1))
    *_, open_receipt, release_receipt = mine(suite)
    event = logs(escrow, "EscrowOpened", open_receipt)[0].args
    assert (event.id, event.payer, event.payee, event.total) == (deal, p, payee.address, 300_00)
    assert logs(escrow, "MilestoneReleased", release_receipt)[0].args.amount == 200_00
    assert balances(suite, [p, payee.address, escrow.address])[:2] == [0, 200_00]
    state = escrow.functions.deal(deal).call()
    assert (state[4], state[5], state[7]) == (ACTIVE, 100_00, 0b10)

    assert_reverts(escrow.functions.release(deal, 1), p, "MilestoneAlreadyReleased", deal, 1)
    assert_reverts(escrow.functions.release(deal, 2), p, "InvalidMilestone", deal, 2)
    fn = escrow.functions.release(deal, 0)
    assert_reverts(fn, payee.address, "NotPayer", deal, payee.address)
    fn = escrow.functions.resolve(deal, 0)
    assert_reverts(fn, arbiter.address, "WrongState", deal, ACTIVE)
    assert_reverts(escrow.functions.release(99, 0), p, "UnknownDeal", 99)

    receipt = chain.run(payer, escrow.functions.release(deal, 0))
    assert logs(escrow, "EscrowClosed", receipt)[0].args.id == deal
    assert balances(suite, [payee.address])[0] == 300_00
    assert escrow.functions.deal(deal).call()[4] == CLOSED
    assert_reverts(escrow.functions.release(deal, 0), p, "WrongState", deal, CLOSED)


def test_escrow_open_refusals(suite: Suite) -> None:
    token, escrow, chain = suite.token, suite.escrow, suite.chain
    payer, payee = suite.take(ChainRole.CUSTOMER, 1), suite.take(ChainRole.CUSTOMER, 1)
    gateway = suite.take(ChainRole.ENTERPRISE, 3)
    (arbiter,) = new_accounts(1)
    p, q, a = payer.address, payee.address, arbiter.address
    top_up(suite, {p: 100_00})
    chain.tx(suite.compliance, token.functions.setRecipientKind(gateway.address, Kind.EXTERNAL))
    mine(suite)
    later = now(suite) + 3600
    cases = [
        (escrow.functions.open(q, a, [], later, REF), ("NoMilestones", ())),
        (escrow.functions.open(q, a, [1] * 33, later, REF), ("TooManyMilestones", (33, 32))),
        (escrow.functions.open(q, a, [1, 0], later, REF), ("ZeroAmount", (1,))),
        (escrow.functions.open(q, q, [1], later, REF), ("InvalidParty", (q,))),
        (escrow.functions.open(p, a, [1], later, REF), ("InvalidParty", (p,))),
        (escrow.functions.open(gateway.address, a, [1], later, REF), ("ExternalPayee", None)),
        (escrow.functions.open(q, a, [1], now(suite) - 1, REF), ("DeadlineInPast", None)),
        # Not approved, then over the tier-1 per-payment limit: the token's own errors.
        (escrow.functions.open(q, a, [10_00], later, REF), ("ERC20InsufficientAllowance", None)),
    ]
    for fn, (error, args) in cases:
        assert_reverts(fn, p, error, *(args or ()))
    chain.run(payer, token.functions.approve(escrow.address, 100_00))
    fn = escrow.functions.open(q, a, [30_00, 30_00], later, REF)
    assert_reverts(fn, p, "OverPaymentLimit", p, 60_00, 50_00)


def test_escrow_dispute_resolved_by_the_arbiter(suite: Suite) -> None:
    token, escrow, chain = suite.token, suite.escrow, suite.chain
    payer, payee = suite.take(ChainRole.ENTERPRISE, 3), suite.take(ChainRole.ENTERPRISE, 3)
    arbiter, outsider = new_accounts(2)
    p, q, a = payer.address, payee.address, arbiter.address
    deal = escrow.functions.dealCount().call() + 1
    top_up(suite, {p: 100_00})
    chain.tx(payer, token.functions.approve(escrow.address, 100_00))
    chain.tx(payer, escrow.functions.open(q, a, [50_00, 50_00], now(suite) + 3600, REF))
    chain.tx(payee, escrow.functions.dispute(deal))
    receipts = mine(suite)
    assert logs(escrow, "Disputed", receipts[-1])[0].args.by == q
    assert_reverts(escrow.functions.release(deal, 0), p, "WrongState", deal, DISPUTED)
    assert_reverts(escrow.functions.refund(deal), p, "WrongState", deal, DISPUTED)
    assert_reverts(escrow.functions.dispute(deal), outsider.address, "NotParty")
    assert_reverts(escrow.functions.resolve(deal, 1), p, "NotArbiter", deal, p)
    fn = escrow.functions.resolve(deal, 100_01)
    assert_reverts(fn, a, "SplitTooLarge", deal, 100_01, 100_00)

    receipt = chain.run(arbiter, escrow.functions.resolve(deal, 30_00))
    resolved = logs(escrow, "Resolved", receipt)[0].args
    assert (resolved.toPayee, resolved.toPayer) == (30_00, 70_00)
    assert balances(suite, [p, q]) == [70_00, 30_00]
    assert escrow.functions.deal(deal).call()[4] == CLOSED


def test_escrow_refund_after_the_deadline_and_nothing_else(suite: Suite) -> None:
    token, escrow, chain = suite.token, suite.escrow, suite.chain
    payer, payee = suite.take(ChainRole.ENTERPRISE, 3), suite.take(ChainRole.ENTERPRISE, 3)
    (arbiter,) = new_accounts(1)
    p, q = payer.address, payee.address
    deal = escrow.functions.dealCount().call() + 1
    late = deal + 1
    deadline = now(suite) + 4
    top_up(suite, {p: 101_00})
    chain.tx(payer, token.functions.approve(escrow.address, 101_00))
    chain.tx(payer, escrow.functions.open(q, arbiter.address, [60_00, 40_00], deadline, REF))
    chain.tx(payer, escrow.functions.release(deal, 0))
    chain.tx(payer, escrow.functions.open(q, arbiter.address, [1_00], deadline, REF))
    mine(suite)
    assert_reverts(escrow.functions.refund(deal), q, "DeadlineNotReached", deal, deadline)

    time.sleep(max(0.0, deadline + 1.5 - time.time()))
    receipt = chain.run(payee, escrow.functions.refund(deal))  # anyone may trigger it
    assert now(suite) > deadline
    assert logs(escrow, "Refunded", receipt)[0].args.amount == 40_00
    assert balances(suite, [p, q]) == [40_00, 60_00]  # 1.00 still in the late deal
    assert escrow.functions.deal(deal).call()[4] == CLOSED
    # Past the deadline: no second refund, no late release, no late dispute.
    assert_reverts(escrow.functions.refund(deal), p, "WrongState", deal, CLOSED)
    fn = escrow.functions.release(late, 0)
    assert_reverts(fn, p, "DeadlinePassed", late, deadline)
    assert_reverts(escrow.functions.dispute(late), q, "DeadlinePassed", late, deadline)


# ------------------------------------------------------------------------------ batch payout


def test_batch_payout_pays_everyone_or_no_one(suite: Suite) -> None:
    token, payout, chain = suite.token, suite.payout, suite.chain
    employer = suite.take(ChainRole.ENTERPRISE, 3)
    staff = [suite.take(ChainRole.CUSTOMER, 1) for _ in range(3)]
    e, addrs = employer.address, [s.address for s in staff]
    amounts = [1_000_00, 2_000_00, 3_000_00]
    batch = payout.functions.batchCount().call() + 1
    top_up(suite, {e: 10_000_00})
    chain.tx(employer, token.functions.approve(payout.address, UNLIMITED))
    chain.tx(employer, payout.functions.pay(addrs, amounts, REF))
    receipt = mine(suite)[-1]
    paid = logs(payout, "PayeePaid", receipt)
    assert [(x.args.batchId, x.args.payee, x.args.amount) for x in paid] == [
        (batch, a, m) for a, m in zip(addrs, amounts, strict=True)
    ]
    total = logs(payout, "BatchPaid", receipt)[0].args
    assert (total.payer, total.payees, total.total, total.ref) == (e, 3, 6_000_00, REF)
    assert balances(suite, [e, *addrs]) == [4_000_00, *amounts]

    assert_reverts(payout.functions.pay([], [], REF), e, "EmptyBatch")
    assert_reverts(payout.functions.pay(addrs, [1, 2], REF), e, "LengthMismatch", 3, 2)
    assert_reverts(payout.functions.pay(addrs, [1, 0, 1], REF), e, "ZeroAmount", 1)
    assert_reverts(payout.functions.pay(addrs * 86, [1] * 258, REF), e, "TooManyPayees", 258, 256)
    # One frozen payee: the whole batch is refused, mined or not.
    chain.tx(suite.compliance, token.functions.freeze(addrs[1], REF))
    chain.tx(employer, payout.functions.pay(addrs, [1_00, 1_00, 1_00], REF))
    froze, refused = mine(suite, expect_success=False)
    assert (froze["status"], refused["status"]) == (1, 0)
    assert balances(suite, [e, *addrs]) == [4_000_00, *amounts]
    fn = payout.functions.pay(addrs, [1_00, 1_00, 1_00], REF)
    assert_reverts(fn, e, "AccountFrozen", addrs[1])
    # The payer's own limits apply to each leg (a tier-1 customer paying a small payroll).
    small = staff[0]
    chain.run(small, token.functions.approve(payout.address, UNLIMITED))
    fn = payout.functions.pay([addrs[2], addrs[2], addrs[2]], [40_00, 40_00, 40_00], REF)
    assert_reverts(fn, small.address, "OverDailyLimit", small.address, 80_00, 40_00, 100_00)


# ---------------------------------------------------------------------------------- netting


def model_nets(parties: Sequence[str], obligations: Sequence[tuple[int, int, int]]) -> list[int]:
    """Net position per party (creditor +, debtor -) of (debtor, creditor, amount) obligations."""
    nets = [0] * len(parties)
    for debtor, creditor, amount in obligations:
        nets[debtor] -= amount
        nets[creditor] += amount
    return nets


def model_settle(start: Sequence[int], nets: Sequence[int]) -> list[int] | None:
    """Balances after settling, or None if a net debtor lacks funds (all or nothing)."""
    if any(b + n < 0 for b, n in zip(start, nets, strict=True)):
        return None
    return [b + n for b, n in zip(start, nets, strict=True)]


obligation_lists = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(1, 10_000_00)).filter(
        lambda o: o[0] != o[1]
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    obligations=obligation_lists, start=st.lists(st.integers(0, 50_000_00), min_size=5, max_size=5)
)
def test_netting_model_conserves_value_and_keeps_balances_non_negative(
    obligations: list[tuple[int, int, int]], start: list[int]
) -> None:
    nets = model_nets(range(5), obligations)  # type: ignore[arg-type]
    assert sum(nets) == 0
    # Netting never moves more than the gross obligations.
    assert sum(n for n in nets if n > 0) <= sum(a for _, _, a in obligations)
    end = model_settle(start, nets)
    if end is None:
        assert any(b < -n for b, n in zip(start, nets, strict=True) if n < 0)
    else:
        assert sum(end) == sum(start)
        assert min(end) >= 0


def record_all(
    suite: Suite, parties: Sequence[LocalAccount], obligations: Sequence[tuple[int, int, int]]
) -> None:
    for debtor, creditor, amount in obligations:
        fn = suite.netting.functions.record(parties[creditor].address, amount, REF)
        suite.chain.tx(parties[debtor], fn)


@pytest.fixture(scope="module")
def enterprises(suite: Suite) -> list[LocalAccount]:
    """Five enterprises that approved the netting contract once."""
    parties = [suite.take(ChainRole.ENTERPRISE, 3) for _ in range(5)]
    for party in parties:
        suite.chain.tx(party, suite.token.functions.approve(suite.netting.address, UNLIMITED))
    mine(suite)
    return parties


def test_netting_settles_net_positions_only(suite: Suite, enterprises: list[LocalAccount]) -> None:
    netting, chain = suite.netting, suite.chain
    a, b, c = enterprises[:3]
    addrs = [a.address, b.address, c.address]
    cycle = netting.functions.cycle().call()
    # a owes b 100, b owes c 80, c owes a 50, a owes c 30: nets a -80, b +20, c +60.
    obligations = [(0, 1, 100_00), (1, 2, 80_00), (2, 0, 50_00), (0, 2, 30_00)]
    top_up(suite, {a.address: 80_00})
    record_all(suite, [a, b, c], obligations)
    receipts = mine(suite)
    recorded = logs(netting, "ObligationRecorded", receipts[1])[0].args
    assert (recorded.cycle, recorded.debtor, recorded.creditor) == (cycle, a.address, b.address)
    start = balances(suite, addrs)
    parties, nets = netting.functions.netPositions().call()
    assert parties == addrs and nets == [-80_00, 20_00, 60_00]
    assert netting.functions.grossValue().call() == 260_00

    # Refusals: unbalanced, balanced but not what was recorded, a party left out, a stranger.
    settle = netting.functions.settleCycle
    fn = settle(addrs, [-80_00, 20_00, 61_00])
    assert_reverts(fn, a.address, "CycleUnbalanced", 1_00)
    fn = settle(addrs, [-80_00, 60_00, 20_00])
    assert_reverts(fn, a.address, "NetMismatch", b.address, 20_00, 60_00)
    fn = settle([addrs[0], addrs[0], addrs[2]], [-80_00, 20_00, 60_00])
    assert_reverts(fn, a.address, "NetMismatch", a.address, 0, 20_00)
    fn = settle(addrs[:2], [-80_00, 80_00])
    assert_reverts(fn, a.address, "PartyCountMismatch", 3, 2)
    stranger = enterprises[4].address
    assert_reverts(settle(addrs, nets), stranger, "NotSettler", stranger)

    receipt = chain.run(b, settle(addrs, nets))  # any party (or an issuer) may settle
    settled = logs(netting, "CycleSettled", receipt)[0].args
    assert (settled.cycle, settled.parties, settled.gross, settled.netMoved) == (
        cycle,
        3,
        260_00,
        80_00,
    )
    assert [x.args.net for x in logs(netting, "NetSettled", receipt)] == nets
    end = balances(suite, addrs)
    assert end == [s + n for s, n in zip(start, nets, strict=True)]
    assert sum(end) == sum(start) and balances(suite, [netting.address]) == [0]
    assert netting.functions.cycle().call() == cycle + 1
    assert_reverts(settle([], []), a.address, "EmptyCycle", cycle + 1)


def test_netting_refusals(suite: Suite, enterprises: list[LocalAccount]) -> None:
    netting, token, chain = suite.netting, suite.token, suite.chain
    a, b = enterprises[:2]
    customer = suite.take(ChainRole.CUSTOMER, 2)
    c = customer.address
    assert_reverts(netting.functions.record(b.address, 1, REF), c, "UnauthorizedRole", c, 6)
    fn = netting.functions.record(c, 1, REF)
    assert_reverts(fn, a.address, "UnauthorizedRole", c, ChainRole.CUSTOMER)
    assert_reverts(netting.functions.record(a.address, 1, REF), a.address, "SelfObligation")
    assert_reverts(netting.functions.record(b.address, 0, REF), a.address, "ZeroAmount")

    # A net debtor without the funds blocks the whole cycle; so does a missing allowance.
    owed = token.functions.balanceOf(a.address).call() + 5_00
    chain.tx(b, token.functions.approve(netting.address, 0))
    record_all(suite, [a, b], [(0, 1, owed)])
    mine(suite)
    parties, nets = netting.functions.netPositions().call()
    fn = netting.functions.settleCycle(parties, nets)
    assert_reverts(fn, b.address, "PartyLacksFunds", a.address, owed, owed - 5_00)
    top_up(suite, {a.address: 5_00})
    record_all(suite, [a, b], [(1, 0, owed + 1)])  # now b is the net debtor of 1, no allowance
    mine(suite)
    parties, nets = netting.functions.netPositions().call()
    assert nets == [1, -1]
    fn = netting.functions.settleCycle(parties, nets)
    assert_reverts(fn, b.address, "PartyLacksAllowance", b.address, 1, 0)
    top_up(suite, {b.address: 1})
    chain.tx(b, token.functions.approve(netting.address, UNLIMITED))
    chain.tx(b, fn)
    mine(suite)
    assert netting.functions.netPositions().call() == [[], []]


@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    obligations=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 500_00)).filter(
            lambda o: o[0] != o[1]
        ),
        min_size=1,
        max_size=6,
    ),
    funding=st.lists(st.integers(0, 600_00), min_size=4, max_size=4),
)
@example(obligations=[(0, 1, 10**9), (2, 3, 1_00), (3, 0, 2_00)], funding=[0, 0, 0, 0])
def test_netting_on_chain_matches_the_model(
    suite: Suite,
    enterprises: list[LocalAccount],
    obligations: list[tuple[int, int, int]],
    funding: list[int],
) -> None:
    parties = enterprises[:4]
    addrs = [p.address for p in parties]
    top_up(suite, {a: f for a, f in zip(addrs, funding, strict=True) if f})
    record_all(suite, parties, obligations)
    mine(suite)
    start = balances(suite, addrs)
    want = model_nets(range(4), obligations)  # type: ignore[arg-type]
    listed, nets = suite.netting.functions.netPositions().call()
    by_party = dict(zip(listed, nets, strict=True))
    assert [by_party.get(a, 0) for a in addrs] == want
    expected = model_settle(start, want)
    settle = suite.netting.functions.settleCycle(listed, nets)
    if expected is None:
        name = "PartyLacksFunds"
        assert_reverts(settle, suite.issuer.address, name)
        short: dict[str, int] = {
            a: -n - s for a, n, s in zip(addrs, want, start, strict=True) if s + n < 0
        }
        top_up(suite, short)
        mine(suite)
        start = balances(suite, addrs)
        expected = model_settle(start, want)
        assert expected is not None
    suite.chain.run(suite.issuer, settle)  # the bank as clearing operator
    end = balances(suite, addrs)
    assert end == expected
    assert sum(end) == sum(start) and min(end) >= 0
    assert balances(suite, [suite.netting.address]) == [0]
