"""WalletToken (top-up, withdrawal, freeze, KYC limits, fees, pause, its copy of AccountRules)
and Points on a real node; the daily limit's day boundary on an in-process chain."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector
from web3 import Web3

from node.chain.calls import CallExecutor, CallRequest
from node.chain.chain import Chain
from node.chain.genesis import dev_accounts, dev_genesis
from node.chain.vm import decode_transaction
from node.domain.contracts import TIER_LIMITS as TIER_LIMITS_GENESIS
from node.domain.contracts import WALLET_TOKEN
from node.qbftheader.extra_data import QbftExtraData
from node.storage.chainstore import ChainStore
from node.storage.store import MemoryStore
from tests.test_contracts_helpers import (
    FEES,
    POINTS_RATE_BPS,
    UNLIMITED,
    ChainRole,
    Kind,
    Suite,
    assert_reverts,
    logs,
    mine,
    new_accounts,
    propose,
    standard_suite,
    top_up,
    top_up_ref,
)

ZERO32 = b"\0" * 32
DAY = 86_400
VALIDATOR = b"\x11" * 20
EXTRA = QbftExtraData(b"\x00" * 32, (VALIDATOR,), None, 0, ()).encode()
TOKEN = Web3.to_checksum_address(WALLET_TOKEN)


@pytest.fixture(scope="module")
def suite(w3: Web3, dev_accounts: list[LocalAccount]) -> Suite:
    return standard_suite(w3, dev_accounts)


def balance(suite: Suite, who: str) -> int:
    return suite.token.functions.balanceOf(who).call()


def fee(kind: Kind, amount: int) -> int:
    bps, fixed, cap = FEES[kind]
    return 0 if cap == 0 else min(amount * bps // 10_000 + fixed, cap)


def test_top_up_payment_and_points(suite: Suite) -> None:
    token, chain = suite.token, suite.chain
    payer, payee = suite.take(ChainRole.CUSTOMER, 1), suite.take(ChainRole.CUSTOMER, 1)
    assert (token.functions.decimals().call(), token.functions.symbol().call()) == (2, "TEUR")
    supply = token.functions.totalSupply().call()
    ref = top_up_ref()
    chain.tx(suite.issuer, token.functions.mint(payer.address, 100_00, ref))
    chain.tx(payer, token.functions.transfer(payee.address, 12_50))
    minted, paid = chain.mine()
    (event,) = logs(token, "Minted", minted)
    assert (event.args.to, event.args.amount, event.args.topUpRef) == (payer.address, 100_00, ref)
    assert token.functions.toppedUp(ref).call()
    (moved,) = logs(token, "Transfer", paid)
    assert (moved.args["from"], moved.args.to, moved.args.value) == (
        payer.address,
        payee.address,
        12_50,
    )
    assert not logs(token, "FeeCharged", paid)  # internal payments are free
    assert balance(suite, payer.address) == 87_50
    assert balance(suite, payee.address) == 12_50
    assert token.functions.totalSupply().call() == supply + 100_00
    assert token.functions.spentToday(payer.address).call() == 12_50
    # Customers earn points at the bank's rate (100 bps of 12.50 = 12 points); receiving earns
    # none. They accrue in the token and count in the Points ledger's balance at once.
    (earned,) = logs(token, "PointsEarned", paid)
    assert (earned.args.account, earned.args.paymentAmount, earned.args.points) == (
        payer.address,
        12_50,
        12,
    )
    assert token.functions.accruedPoints(payer.address).call() == 12
    assert suite.points.functions.balanceOf(payer.address).call() == 12
    assert suite.points.functions.balanceOf(payee.address).call() == 0


def test_paying_oneself_moves_nothing_but_counts_as_spending(suite: Suite) -> None:
    token, chain = suite.token, suite.chain
    holder = suite.take(ChainRole.CUSTOMER, 2)
    h = holder.address
    top_up(suite, {h: 30_00})
    chain.tx(holder, token.functions.transfer(h, 10_00))
    (_, paid) = chain.mine()
    assert logs(token, "Transfer", paid)[0].args.value == 10_00
    assert balance(suite, h) == 30_00
    assert token.functions.spentToday(h).call() == 10_00
    fn = token.functions.transfer(h, 30_01)
    assert_reverts(fn, h, "ERC20InsufficientBalance", h, 30_00, 30_01)


def test_the_supply_stays_within_the_holder_word(suite: Suite) -> None:
    token = suite.token
    customer = suite.take(ChainRole.CUSTOMER, 1)
    cap = token.functions.MAX_SUPPLY().call()
    assert cap == 2**80 - 1
    supply = token.functions.totalSupply().call()
    fn = token.functions.mint(customer.address, cap, top_up_ref())
    assert_reverts(fn, suite.issuer.address, "OverSupplyCap", supply, cap)


def test_mint_refusals(suite: Suite) -> None:
    token = suite.token
    customer = suite.take(ChainRole.CUSTOMER, 1)
    (outsider,) = new_accounts(1)
    ref = top_up_ref()
    for who, role in (
        (customer.address, ChainRole.CUSTOMER),
        (suite.compliance.address, ChainRole.COMPLIANCE),
        (suite.admins[0].address, ChainRole.ADMIN),
        (outsider.address, ChainRole.NONE),
    ):
        fn = token.functions.mint(customer.address, 1_00, ref)
        assert_reverts(fn, who, "UnauthorizedRole", who, role)
    issuer = suite.issuer.address
    assert_reverts(token.functions.mint(customer.address, 0, ref), issuer, "ZeroAmount")
    fn = token.functions.mint(outsider.address, 1_00, ref)
    assert_reverts(fn, issuer, "AccountNotAllowed", outsider.address)
    suite.chain.run(suite.issuer, token.functions.mint(customer.address, 1_00, ref))
    fn = token.functions.mint(customer.address, 1_00, ref)
    assert_reverts(fn, issuer, "DuplicateTopUp", ref)


def test_kyc_limits_and_balance_refusals(suite: Suite) -> None:
    token = suite.token
    basic, verified = suite.take(ChainRole.CUSTOMER, 1), suite.take(ChainRole.CUSTOMER, 2)
    unverified = suite.take(ChainRole.CUSTOMER, 0)
    payee = suite.take(ChainRole.CUSTOMER, 2)
    (outsider,) = new_accounts(1)
    assert token.functions.tierLimits(1).call() == [50_00, 100_00]
    top_up(suite, {basic.address: 200_00, unverified.address: 10_00, verified.address: 10_00})
    # Two payments of 50.00 reach tier 1's daily 100.00.
    suite.chain.tx(basic, token.functions.transfer(payee.address, 50_00))
    suite.chain.tx(basic, token.functions.transfer(payee.address, 50_00))
    mine(suite)
    b = basic.address
    assert token.functions.spentToday(b).call() == 100_00

    over = token.functions.transfer(payee.address, 50_01)
    assert_reverts(over, b, "OverPaymentLimit", b, 50_01, 50_00)
    assert_reverts(
        token.functions.transfer(payee.address, 1), b, "OverDailyLimit", b, 100_00, 1, 100_00
    )
    # Tier 0 may hold money but not pay.
    u = unverified.address
    assert_reverts(token.functions.transfer(payee.address, 1), u, "OverPaymentLimit", u, 1, 0)
    # Only allowed accounts can be paid.
    v = verified.address
    fn = token.functions.transfer(outsider.address, 1_00)
    assert_reverts(fn, v, "AccountNotAllowed", outsider.address)
    # A payer that is not an allowed account (e.g. a contract calling transferFrom).
    fn = token.functions.transferFrom(outsider.address, payee.address, 1)
    assert_reverts(fn, v, "AccountNotAllowed", outsider.address)
    # More than the balance.
    fn = token.functions.transfer(payee.address, 20_00)
    assert_reverts(fn, v, "ERC20InsufficientBalance", v, 10_00, 20_00)
    assert balance(suite, payee.address) == 100_00


def test_freeze_and_unfreeze_by_compliance(suite: Suite) -> None:
    token, chain = suite.token, suite.chain
    held, other = suite.take(ChainRole.CUSTOMER, 2), suite.take(ChainRole.CUSTOMER, 2)
    top_up(suite, {held.address: 50_00, other.address: 50_00})
    reason = Web3.keccak(text="case 1234")
    chain.tx(suite.compliance, token.functions.freeze(held.address, reason))
    receipts = mine(suite)
    assert logs(token, "Frozen", receipts[-1])[0].args.reason == reason
    assert token.functions.isFrozen(held.address).call()
    h, o = held.address, other.address
    assert_reverts(token.functions.transfer(o, 1_00), h, "AccountFrozen", h)
    assert_reverts(token.functions.transfer(h, 1_00), o, "AccountFrozen", h)
    assert_reverts(token.functions.requestWithdrawal(1_00, ZERO32), h, "AccountFrozen", h)
    for who in (h, suite.issuer.address, suite.admins[0].address):
        role = suite.rules.functions.roleOf(who).call()
        assert_reverts(token.functions.unfreeze(h), who, "UnauthorizedRole", who, role)
        assert_reverts(token.functions.freeze(o, reason), who, "UnauthorizedRole", who, role)

    chain.tx(suite.compliance, token.functions.unfreeze(h))
    chain.tx(held, token.functions.transfer(o, 5_00))
    unfrozen, _ = chain.mine()
    assert logs(token, "Unfrozen", unfrozen)[0].args.account == h
    assert balance(suite, o) == 55_00


def test_pause_stops_everything_until_unpaused(suite: Suite) -> None:
    token, chain = suite.token, suite.chain
    payer, payee = suite.take(ChainRole.CUSTOMER, 2), suite.take(ChainRole.CUSTOMER, 2)
    top_up(suite, {payer.address: 10_00})
    mine(suite)
    p = payer.address
    assert_reverts(token.functions.pause(), p, "UnauthorizedRole", p, ChainRole.CUSTOMER)
    chain.run(suite.admins[0], token.functions.pause())
    try:
        assert token.functions.paused().call()
        assert_reverts(token.functions.transfer(payee.address, 1_00), p, "EnforcedPause")
        fn = token.functions.mint(p, 1_00, top_up_ref())
        assert_reverts(fn, suite.issuer.address, "EnforcedPause")
        assert_reverts(token.functions.requestWithdrawal(1_00, ZERO32), p, "EnforcedPause")
        assert_reverts(token.functions.unpause(), p, "UnauthorizedRole", p, ChainRole.CUSTOMER)
    finally:
        chain.tx(suite.compliance, token.functions.unpause())
        chain.tx(payer, token.functions.transfer(payee.address, 1_00))
        chain.mine()
    assert not token.functions.paused().call()
    assert balance(suite, payee.address) == 1_00


def test_withdrawal_locks_then_burns_or_unlocks(suite: Suite) -> None:
    token, chain = suite.token, suite.chain
    holder, payee = suite.take(ChainRole.CUSTOMER, 2), suite.take(ChainRole.CUSTOMER, 2)
    h = holder.address
    top_up(suite, {h: 100_00})
    first = token.functions.withdrawalCount().call() + 1
    chain.tx(holder, token.functions.requestWithdrawal(60_00, Web3.keccak(text="iban-ref")))
    chain.tx(holder, token.functions.requestWithdrawal(30_00, ZERO32))
    receipts = mine(suite)
    (req,) = logs(token, "WithdrawalRequested", receipts[-2])
    assert (req.args.id, req.args.holder, req.args.amount) == (first, h, 60_00)
    assert token.functions.lockedOf(h).call() == 90_00
    assert token.functions.availableBalanceOf(h).call() == 10_00
    # Locked funds cannot be paid or requested again.
    fn = token.functions.transfer(payee.address, 20_00)
    assert_reverts(fn, h, "ERC20InsufficientBalance", h, 10_00, 20_00)
    fn = token.functions.requestWithdrawal(20_00, ZERO32)
    assert_reverts(fn, h, "ERC20InsufficientBalance", h, 10_00, 20_00)
    for who in (h, suite.compliance.address):
        role = suite.rules.functions.roleOf(who).call()
        assert_reverts(token.functions.burnWithdrawal(first), who, "UnauthorizedRole", who, role)

    supply = token.functions.totalSupply().call()
    chain.tx(suite.issuer, token.functions.burnWithdrawal(first))
    chain.tx(suite.issuer, token.functions.rejectWithdrawal(first + 1, Web3.keccak(text="no")))
    burned, rejected = chain.mine()
    assert logs(token, "WithdrawalBurned", burned)[0].args.amount == 60_00
    assert logs(token, "WithdrawalRejected", rejected)[0].args.amount == 30_00
    assert balance(suite, h) == 40_00
    assert token.functions.totalSupply().call() == supply - 60_00
    assert token.functions.lockedOf(h).call() == 0
    assert token.functions.withdrawal(first).call() == [h, 60_00, 2]  # Burned
    assert token.functions.withdrawal(first + 1).call() == [h, 30_00, 3]  # Rejected
    issuer = suite.issuer.address
    fn = token.functions.burnWithdrawal(first)
    assert_reverts(fn, issuer, "WithdrawalNotPending", first, 2)
    assert_reverts(token.functions.burnWithdrawal(10**6), issuer, "UnknownWithdrawal", 10**6)


def test_fees_quoted_then_charged_to_the_collector(suite: Suite) -> None:
    token, chain = suite.token, suite.chain
    payer, payee = suite.take(ChainRole.CUSTOMER, 2), suite.take(ChainRole.CUSTOMER, 2)
    gateway, firm = suite.take(ChainRole.ENTERPRISE, 3), suite.take(ChainRole.ENTERPRISE, 3)
    p, collector = payer.address, suite.collector.address
    quote = token.functions.quoteFee
    assert quote(p, payee.address, 40_00, Kind.INTERNAL).call() == 0
    assert quote(p, payee.address, 40_00, Kind.EXTERNAL).call() == fee(Kind.EXTERNAL, 40_00) == 30
    assert quote(p, payee.address, 40_00, Kind.CROSS_BORDER).call() == 110
    # Capped: 0.5% of 10,000.00 + 0.10 is over the 5.00 cap.
    assert quote(firm.address, payee.address, 10_000_00, Kind.EXTERNAL).call() == 5_00
    # Settlement contracts pay no fee.
    assert quote(suite.escrow.address, payee.address, 40_00, Kind.CROSS_BORDER).call() == 0

    top_up(suite, {p: 500_00})
    chain.tx(suite.compliance, token.functions.setRecipientKind(gateway.address, Kind.CROSS_BORDER))
    fees_before = balance(suite, collector)
    mine(suite)
    assert token.functions.recipientKind(gateway.address).call() == Kind.CROSS_BORDER
    # A flagged recipient pays its kind's fee whatever the payer declares.
    assert quote(p, gateway.address, 40_00, Kind.INTERNAL).call() == 110
    chain.tx(payer, token.functions.transferExternal(payee.address, 40_00, Kind.EXTERNAL))
    chain.tx(payer, token.functions.transfer(gateway.address, 40_00))
    external, flagged = chain.mine()
    charged = logs(token, "FeeCharged", external)[0].args
    assert (charged["from"], charged.to, charged.kind, charged.amount, charged.fee) == (
        p,
        payee.address,
        Kind.EXTERNAL,
        40_00,
        30,
    )
    assert logs(token, "FeeCharged", flagged)[0].args.fee == 110
    assert balance(suite, collector) == fees_before + 30 + 110
    assert balance(suite, p) == 500_00 - 80_00 - 140
    assert balance(suite, gateway.address) == 40_00

    # The payer must cover amount plus fee; an allowance must cover both too.
    spender = suite.take(ChainRole.CUSTOMER, 2)
    chain.tx(payer, token.functions.approve(spender.address, 40_00))
    mine(suite)
    fn = token.functions.transferFrom(p, gateway.address, 40_00)
    assert_reverts(fn, spender.address, "ERC20InsufficientAllowance", spender.address, 40_00, 41_10)
    available = balance(suite, p)
    fn = token.functions.transferExternal(payee.address, available, Kind.EXTERNAL)
    assert_reverts(fn, p, "ERC20InsufficientBalance")


def test_policy_changes_need_the_group_or_an_issuer(suite: Suite) -> None:
    token, points = suite.token, suite.points
    customer = suite.take(ChainRole.CUSTOMER, 1)
    c = customer.address
    for fn in (
        token.functions.setTierLimits(9, 1, 1),
        token.functions.setFee(Kind.EXTERNAL, 1, 1, 1),
        token.functions.setFeeCollector(c),
        token.functions.setPoints(points.address),
        token.functions.setPointsRate(1),
    ):
        assert_reverts(fn, c, "UnauthorizedRole", c, ChainRole.CUSTOMER)
    issuer = suite.issuer.address
    assert_reverts(token.functions.setFee(Kind.INTERNAL, 0, 1, 1), issuer, "InvalidFee", 0)
    assert_reverts(token.functions.setFee(Kind.EXTERNAL, 1_001, 0, 1), issuer, "InvalidFee", 1)
    assert_reverts(token.functions.setPointsRate(10_001), issuer, "InvalidRate", 10_001)

    suite.chain.tx(suite.issuer, token.functions.setTierLimits(9, 7_00, UNLIMITED))
    propose(suite, token.functions.setFee(Kind.CROSS_BORDER, 200, 0, 30_00))  # 2 of 3 admins
    limits, _, by_group = mine(suite)
    assert logs(token, "TierLimitsSet", limits)[0].args.perPayment == 7_00
    assert token.functions.tierLimits(9).call() == [7_00, UNLIMITED]
    assert logs(token, "FeeSet", by_group)[0].args.bps == 200
    assert token.functions.feeOf(Kind.CROSS_BORDER).call() == [200, 0, 30_00]
    propose(suite, token.functions.setFee(Kind.CROSS_BORDER, *FEES[Kind.CROSS_BORDER]))
    mine(suite)


def test_the_points_rate_is_the_tokens(suite: Suite) -> None:
    """A rate change applies to the next payment; rate 0 stops earning (and its event)."""
    token, points, chain = suite.token, suite.points, suite.chain
    payer, payee = suite.take(ChainRole.CUSTOMER, 2), suite.take(ChainRole.CUSTOMER, 2)
    top_up(suite, {payer.address: 100_00})
    chain.tx(suite.issuer, token.functions.setPointsRate(1_000))
    chain.tx(payer, token.functions.transfer(payee.address, 10_00))
    chain.tx(suite.issuer, token.functions.setPointsRate(0))
    chain.tx(payer, token.functions.transfer(payee.address, 10_00))
    chain.tx(suite.issuer, token.functions.setPointsRate(POINTS_RATE_BPS))
    _, set_high, high, set_zero, zero, _ = mine(suite)
    try:
        assert logs(token, "PointsRateSet", set_high)[0].args.rateBps == 1_000
        assert logs(token, "PointsEarned", high)[0].args.points == 1_00  # 10% of 10.00
        assert logs(token, "PointsRateSet", set_zero)[0].args.rateBps == 0
        assert not logs(token, "PointsEarned", zero)
        assert points.functions.balanceOf(payer.address).call() == 1_00
    finally:
        assert token.functions.pointsRateBps().call() == POINTS_RATE_BPS
        assert points.functions.rateBps().call() == POINTS_RATE_BPS


def test_points_redeem_and_transfers_off_by_default(suite: Suite) -> None:
    points, chain = suite.points, suite.chain
    holder, friend = suite.take(ChainRole.CUSTOMER, 1), suite.take(ChainRole.CUSTOMER, 1)
    (outsider,) = new_accounts(1)
    h = holder.address
    assert points.functions.rateBps().call() == 100
    assert_reverts(points.functions.award(h, 100_00), h, "NotAwarder", h)
    receipt = chain.run(suite.issuer, points.functions.award(h, 100_00))  # a promotion
    assert logs(points, "Awarded", receipt)[0].args.points == 100
    assert points.functions.balanceOf(h).call() == 100
    assert_reverts(points.functions.transfer(friend.address, 1), h, "TransfersDisabled")
    assert_reverts(points.functions.redeem(101, ZERO32), h, "InsufficientPoints", h, 100, 101)
    assert_reverts(points.functions.redeem(0, ZERO32), h, "ZeroAmount")
    fn = points.functions.setTransferable(True)
    assert_reverts(
        fn, suite.issuer.address, "UnauthorizedRole", suite.issuer.address, ChainRole.ISSUER
    )

    ref = Web3.keccak(text="voucher-7")
    supply = points.functions.totalSupply().call()
    chain.tx(holder, points.functions.redeem(40, ref))
    chain.tx(suite.admins[0], points.functions.setTransferable(True))
    chain.tx(holder, points.functions.transfer(friend.address, 10))
    redeemed, switched, moved = chain.mine()
    try:
        assert logs(points, "Redeemed", redeemed)[0].args.ref == ref
        assert logs(points, "TransferableSet", switched)[0].args.transferable
        assert logs(points, "Transferred", moved)[0].args.points == 10
        assert points.functions.balanceOf(h).call() == 50
        assert points.functions.balanceOf(friend.address).call() == 10
        assert points.functions.totalSupply().call() == supply - 40
        fn = points.functions.transfer(outsider.address, 1)
        assert_reverts(fn, h, "AccountNotAllowed", outsider.address)
    finally:
        chain.run(suite.admins[0], points.functions.setTransferable(False))


def test_points_earned_on_payments_settle_into_the_ledger(suite: Suite) -> None:
    """Accrued points move into the Points ledger when the holder redeems (or anyone settles);
    only the linked ledger may claim them from the token."""
    token, points, chain = suite.token, suite.points, suite.chain
    payer, payee = suite.take(ChainRole.CUSTOMER, 2), suite.take(ChainRole.CUSTOMER, 2)
    p = payer.address
    top_up(suite, {p: 900_00})
    for _ in range(3):
        chain.tx(payer, token.functions.transfer(payee.address, 200_00))  # 200 points each
    mine(suite)
    assert token.functions.accruedPoints(p).call() == 600
    supply = points.functions.totalSupply().call()
    unclaimed = token.functions.unclaimedPoints().call()
    assert unclaimed >= 600 and supply >= unclaimed
    assert_reverts(token.functions.claimPoints(p), p, "NotPoints", p)

    ref = Web3.keccak(text="voucher-9")
    chain.tx(payer, points.functions.redeem(250, ref))
    redeemed = chain.mine()[0]
    (settled,) = logs(points, "Settled", redeemed)
    assert (settled.args.account, settled.args.points) == (p, 600)
    (claimed,) = logs(token, "PointsClaimed", redeemed)
    assert (claimed.args.account, claimed.args.points) == (p, 600)
    assert logs(points, "Redeemed", redeemed)[0].args.points == 250
    assert token.functions.accruedPoints(p).call() == 0
    assert token.functions.unclaimedPoints().call() == unclaimed - 600
    assert points.functions.balanceOf(p).call() == 350
    assert points.functions.totalSupply().call() == supply - 250

    # Settling for someone else changes where the points are kept, not how many.
    chain.tx(payer, token.functions.transfer(payee.address, 100_00))
    chain.tx(payee, points.functions.settle(p))
    mine(suite)
    assert token.functions.accruedPoints(p).call() == 0
    assert points.functions.balanceOf(p).call() == 450


def test_account_rules_changes_reach_the_token_at_once(suite: Suite) -> None:
    """The token's copy of roles and tiers changes in the transaction that changes AccountRules:
    a payment in the same block, right after the admin group's approval, sees the change."""
    token, rules, chain = suite.token, suite.rules, suite.chain
    customer, payee = suite.take(ChainRole.CUSTOMER, 1), suite.take(ChainRole.CUSTOMER, 2)
    c, q = customer.address, payee.address
    assert rules.functions.listeners().call() == [token.address]
    assert token.functions.holderRole(c).call() == [ChainRole.CUSTOMER, 1]
    assert token.functions.holderRole(suite.escrow.address).call() == [ChainRole.SYSTEM, 0]
    top_up(suite, {c: 200_00})
    mine(suite)
    assert_reverts(token.functions.transfer(q, 60_00), c, "OverPaymentLimit", c, 60_00, 50_00)

    # Upgraded to tier 2: the next payment may be 60.00.
    propose(suite, rules.functions.setAccount(c, ChainRole.CUSTOMER, 2, ZERO32))
    chain.tx(customer, token.functions.transfer(q, 60_00))
    _, upgraded, paid = mine(suite)
    (synced,) = logs(token, "AccountSynced", upgraded)
    assert (synced.args.account, synced.args.role, synced.args.tier) == (c, ChainRole.CUSTOMER, 2)
    assert logs(token, "Transfer", paid)[0].args.value == 60_00
    assert token.functions.holderRole(c).call() == [ChainRole.CUSTOMER, 2]

    # Removed: it can neither pay nor be paid, and keeps its balance.
    propose(suite, rules.functions.removeAccount(c))
    mine(suite)
    assert token.functions.holderRole(c).call() == [ChainRole.NONE, 0]
    assert balance(suite, c) == 140_00
    assert_reverts(token.functions.transfer(q, 1_00), c, "AccountNotAllowed", c)
    assert_reverts(token.functions.transfer(c, 1_00), q, "AccountNotAllowed", c)
    assert_reverts(token.functions.requestWithdrawal(1_00, ZERO32), c, "AccountNotAllowed", c)

    # Frozen while removed, then re-listed as an enterprise: still frozen until unfrozen.
    chain.tx(suite.compliance, token.functions.freeze(c, Web3.keccak(text="case 9")))
    propose(suite, rules.functions.setAccount(c, ChainRole.ENTERPRISE, 3, ZERO32))
    mine(suite)
    assert token.functions.holderRole(c).call() == [ChainRole.ENTERPRISE, 3]
    assert_reverts(token.functions.transfer(q, 1_00), c, "AccountFrozen", c)
    chain.tx(suite.compliance, token.functions.unfreeze(c))
    chain.tx(customer, token.functions.transfer(q, 100_00))
    _, paid_as_enterprise = mine(suite)
    assert balance(suite, c) == 40_00
    assert not logs(token, "PointsEarned", paid_as_enterprise)  # enterprises earn none

    # Only AccountRules writes the copy.
    fn = token.functions.syncAccount(c, ChainRole.ISSUER, 3)
    for who in (c, suite.admins[0].address, suite.group.address):
        assert_reverts(fn, who, "NotAccountRules", who)


class GenesisChain:
    """The genesis bank contracts on an in-process chain whose block times a test chooses."""

    def __init__(self) -> None:
        self.chain = Chain(ChainStore(MemoryStore()), dev_genesis(VALIDATOR))
        self.calls = CallExecutor(self.chain, self.chain.genesis.gas_limit)
        self.nonces: dict[str, int] = {}

    def tx(self, account: LocalAccount, fn: str, types: list[str], args: list) -> Any:
        nonce = self.nonces.get(account.address, 0)
        self.nonces[account.address] = nonce + 1
        data = function_signature_to_4byte_selector(f"{fn}({','.join(types)})") + encode(
            types, args
        )
        raw = account.sign_transaction(
            {
                "nonce": nonce,
                "gas": 400_000,
                "gasPrice": 0,
                "to": TOKEN,
                "data": data,
                "chainId": 1337,
            }
        ).raw_transaction
        return decode_transaction(bytes(raw))

    def block(self, timestamp: int, txs: list) -> list[bool]:
        """Mine `txs` at `timestamp`; whether each succeeded."""
        pending = self.chain.build(txs, timestamp=timestamp, coinbase=VALIDATOR, extra_data=EXTRA)
        self.chain.commit(pending, pending.header)
        return [item.receipt.state_root == b"\x01" for item in pending.executed.transactions]

    def spent_today(self, account: str) -> int:
        data = function_signature_to_4byte_selector("spentToday(address)") + encode(
            ["address"], [account]
        )
        request = CallRequest(b"\0" * 20, WALLET_TOKEN, data, 0, None)
        return int.from_bytes(self.calls.call(request, self.chain.head).output, "big")


def test_the_daily_limit_starts_again_each_day() -> None:
    """Tier 1 of the genesis configuration: 1,000.00 a payment, 5,000.00 a day."""
    per_payment, daily = TIER_LIMITS_GENESIS[1]
    dev = dev_accounts()
    issuer, customer, payee = dev[1], dev[6], dev[7]
    g = GenesisChain()
    pay = ["address", "uint256"]
    mint = g.tx(
        issuer,
        "mint",
        ["address", "uint256", "bytes32"],
        [customer.address, 3 * daily, b"\x07" * 32],
    )
    payments = [g.tx(customer, "transfer", pay, [payee.address, per_payment]) for _ in range(5)]
    over = g.tx(customer, "transfer", pay, [payee.address, 1])
    assert g.block(DAY - 10, [mint, *payments, over]) == [True] * 6 + [False]
    assert g.spent_today(customer.address) == daily
    # A second later it is the next day (UTC, block time): the total starts from zero.
    assert g.block(DAY, [g.tx(customer, "transfer", pay, [payee.address, per_payment])]) == [True]
    assert g.spent_today(customer.address) == per_payment
    # Days later, the stale day's total is ignored too.
    late = [g.tx(customer, "transfer", pay, [payee.address, per_payment]) for _ in range(5)]
    assert g.block(10 * DAY + 5, late) == [True] * 5
    assert g.spent_today(customer.address) == daily
