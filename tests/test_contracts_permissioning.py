"""AdminGroup (M-of-N), AccountRules and NodeRules on a real `tally dev` node."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from tests.test_contracts_helpers import (
    FEES,
    TIER_LIMITS,
    Chain,
    ChainRole,
    Suite,
    assert_reverts,
    decode_error,
    load_artifact,
    logs,
    mine,
    new_accounts,
    propose,
    standard_suite,
)

ZERO32 = b"\0" * 32


@pytest.fixture(scope="module")
def suite(w3: Web3, dev_accounts: list[LocalAccount]) -> Suite:
    return standard_suite(w3, dev_accounts)


def test_group_change_needs_m_approvals_and_m_minus_1_does_not_apply(
    w3: Web3, dev_accounts: list[LocalAccount]
) -> None:
    chain = Chain(w3)
    a, b, c = dev_accounts[3:6]
    (newcomer,) = new_accounts(1)
    group = chain.deploy(a, "AdminGroup", [a.address, b.address, c.address], 2)
    add = group.functions.addAdmin(newcomer.address)._encode_transaction_data()
    chain.tx(a, group.functions.propose(group.address, add))
    (_, receipt) = chain.mine()
    assert group.functions.threshold().call() == 2
    assert group.functions.admins().call() == [a.address, b.address, c.address]

    # One approval of two (the proposer's): nothing changes.
    (created,) = logs(group, "ProposalCreated", receipt)
    pid = created.args.id
    assert logs(group, "ProposalApproved", receipt)[0].args.approvals == 1
    assert not logs(group, "ProposalExecuted", receipt)
    assert not group.functions.isAdmin(newcomer.address).call()
    assert group.functions.proposal(pid).call()[3:] == [False, False, 1]

    # Refusals while pending: a direct change, a second approval by the same admin, an
    # outsider, an early execute, a cancel by someone else, an unknown proposal.
    assert_reverts(group.functions.addAdmin(newcomer.address), a.address, "OnlyByProposal")
    assert_reverts(group.functions.approve(pid), a.address, "AlreadyApproved", pid, a.address)
    assert_reverts(group.functions.approve(pid), newcomer.address, "NotAdmin", newcomer.address)
    assert_reverts(group.functions.execute(pid), a.address, "NotEnoughApprovals", pid, 1, 2)
    assert_reverts(group.functions.cancel(pid), b.address, "NotProposer", pid, b.address)
    assert_reverts(group.functions.approve(99), b.address, "UnknownProposal", 99)

    # A revoked approval no longer counts: with b's approval alone it is still M-1.
    chain.tx(a, group.functions.revokeApproval(pid))
    chain.tx(b, group.functions.approve(pid))
    revoke, approve = chain.mine()
    assert logs(group, "ApprovalRevoked", revoke)[0].args.approvals == 0
    assert logs(group, "ProposalApproved", approve)[0].args.approvals == 1
    assert not logs(group, "ProposalExecuted", approve)
    assert not group.functions.isAdmin(newcomer.address).call()

    # The M-th approval applies it. Then: threshold to 3 (applies with 2 of 3 admins), removing
    # c with 2 approvals (M-1 of the new 3: does not apply), threshold to 5 (2 approvals).
    chain.tx(c, group.functions.approve(pid))
    changes = (
        group.functions.setThreshold(3),
        group.functions.removeAdmin(c.address),
        group.functions.setThreshold(5),
    )
    for next_id, change in enumerate(changes, start=pid + 1):
        chain.tx(a, group.functions.propose(group.address, change._encode_transaction_data()))
        chain.tx(b, group.functions.approve(next_id))
    receipts = chain.mine()
    assert logs(group, "ProposalExecuted", receipts[0])
    assert logs(group, "AdminAdded", receipts[0])[0].args.admin == newcomer.address
    assert group.functions.isAdmin(newcomer.address).call()
    assert_reverts(group.functions.approve(pid), a.address, "ProposalClosed", pid)
    assert group.functions.threshold().call() == 3
    assert group.functions.isAdmin(c.address).call()
    remove_id, raise_id = pid + 2, pid + 3
    assert group.functions.proposal(remove_id).call()[3:] == [False, False, 2]

    # A change that breaks the group's invariant fails on the approval that would apply it,
    # with the target's own error inside ProposalFailed.
    _, reason = assert_reverts(group.functions.approve(raise_id), c.address, "ProposalFailed")
    assert decode_error(reason) == ("InvalidThreshold", (5, 4))

    # The third approval removes c, and c's approvals stop counting at once.
    receipt = chain.run(newcomer, group.functions.approve(remove_id))
    assert logs(group, "AdminRemoved", receipt)[0].args.admin == c.address
    assert not group.functions.isAdmin(c.address).call()
    assert group.functions.approvals(raise_id).call() == 2  # a and b


def test_group_constructor_refuses_a_bad_threshold(
    w3: Web3, dev_accounts: list[LocalAccount]
) -> None:
    art = load_artifact("AdminGroup")
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    admins = [dev_accounts[0].address, dev_accounts[1].address]
    for threshold in (0, 3):
        data = factory.constructor(admins, threshold).data_in_transaction
        try:
            w3.eth.call({"from": admins[0], "data": data})
        except Exception as exc:  # web3 raises ContractCustomError carrying the revert data
            assert decode_error(exc.data) == ("InvalidThreshold", (threshold, 2))  # type: ignore[attr-defined]
        else:
            raise AssertionError("deployment with a bad threshold did not revert")


def test_account_rules_views_and_changes_only_through_the_group(suite: Suite) -> None:
    rules = suite.rules
    customer = suite.take(ChainRole.CUSTOMER, 2)
    (outsider,) = new_accounts(1)
    assert rules.functions.adminGroup().call() == suite.group.address
    assert rules.functions.isAllowed(customer.address).call()
    assert not rules.functions.isAllowed(outsider.address).call()
    assert rules.functions.roleOf(customer.address).call() == ChainRole.CUSTOMER
    assert rules.functions.tierOf(customer.address).call() == 2
    assert rules.functions.roleAndTier(suite.issuer.address).call() == [ChainRole.ISSUER, 3]
    listed = rules.functions.accounts().call()
    assert customer.address in listed and outsider.address not in listed
    assert rules.functions.accountCount().call() == len(listed)

    # Not even an admin of the group, alone, can change the rules.
    for who in (suite.admins[0].address, customer.address):
        fn = rules.functions.setAccount(outsider.address, ChainRole.CUSTOMER, 1, ZERO32)
        assert_reverts(fn, who, "NotAdminGroup", who)
        assert_reverts(rules.functions.removeAccount(customer.address), who, "NotAdminGroup", who)

    # Onboard (with a salted KYC hash), upgrade in a batch, remove: each a 2-of-3 proposal.
    kyc = Web3.keccak(text="salt|customer-record-42")
    propose(suite, rules.functions.setAccount(outsider.address, ChainRole.CUSTOMER, 1, kyc))
    upgrade = rules.functions.setAccounts([outsider.address], [ChainRole.ENTERPRISE], [3], [kyc])
    propose(suite, upgrade)
    propose(suite, rules.functions.removeAccount(outsider.address))
    receipts = mine(suite)
    onboarded = logs(rules, "AccountSet", receipts[1])[0].args
    assert (onboarded.account, onboarded.role, onboarded.tier) == (outsider.address, 6, 1)
    assert onboarded.kycRef == kyc
    upgraded = logs(rules, "AccountSet", receipts[3])[0].args
    assert (upgraded.role, upgraded.tier) == (ChainRole.ENTERPRISE, 3)
    assert logs(rules, "AccountRemoved", receipts[5])[0].args.account == outsider.address
    assert not rules.functions.isAllowed(outsider.address).call()
    assert rules.functions.accountOf(outsider.address).call() == [ChainRole.NONE, 0, ZERO32]
    assert outsider.address not in rules.functions.accounts().call()


def test_account_rules_refusals_inside_proposals(suite: Suite) -> None:
    """The group's own admins cannot be removed (it would lock the group out), `None` is not a
    role to assign, and an unknown account cannot be removed."""
    group, rules = suite.group, suite.rules
    (nobody,) = new_accounts(1)
    admin = suite.admins[2].address
    cases = [
        (rules.functions.removeAccount(admin), ("AccountIsGroupAdmin", (admin,))),
        (
            rules.functions.setAccount(nobody.address, ChainRole.NONE, 1, ZERO32),
            ("InvalidRole", (nobody.address,)),
        ),
        (rules.functions.removeAccount(nobody.address), ("AccountNotListed", (nobody.address,))),
    ]
    ids = [propose(suite, fn, approvers=0) for fn, _ in cases]
    mine(suite)
    approver = suite.admins[1].address
    for pid, (_, expected) in zip(ids, cases, strict=True):
        _, reason = assert_reverts(group.functions.approve(pid), approver, "ProposalFailed")
        assert decode_error(reason) == expected
    assert rules.functions.isAllowed(admin).call()


def test_node_rules_add_remove_and_last_node(
    suite: Suite, dev_accounts: list[LocalAccount]
) -> None:
    nodes, group = suite.node_rules, suite.group
    first = dev_accounts[0].address
    (node_b,) = new_accounts(1)
    assert nodes.functions.nodes().call() == [first]
    assert nodes.functions.isNodeAllowed(first).call()
    assert not nodes.functions.isNodeAllowed(node_b.address).call()
    assert_reverts(nodes.functions.addNode(node_b.address), first, "NotAdminGroup", first)
    assert_reverts(nodes.functions.removeNode(first), first, "NotAdminGroup", first)

    propose(suite, nodes.functions.addNode(node_b.address))
    propose(suite, nodes.functions.removeNode(first))
    # Removing the last node, or adding one twice, fails inside the proposal.
    last = propose(suite, nodes.functions.removeNode(node_b.address), approvers=0)
    twice = propose(suite, nodes.functions.addNode(node_b.address), approvers=0)
    receipts = mine(suite)
    assert logs(nodes, "NodeAdded", receipts[1])[0].args.node == node_b.address
    assert logs(nodes, "NodeRemoved", receipts[3])[0].args.node == first
    assert nodes.functions.nodes().call() == [node_b.address]
    assert nodes.functions.isNodeAllowed(node_b.address).call()
    assert not nodes.functions.isNodeAllowed(first).call()
    approver = suite.admins[1].address
    for pid, expected in ((last, "LastNode"), (twice, "NodeAlreadyAllowed")):
        _, reason = assert_reverts(group.functions.approve(pid), approver, "ProposalFailed")
        assert decode_error(reason) == (expected, (node_b.address,))


def test_account_rules_push_every_change_to_its_listeners(
    suite: Suite, dev_accounts: list[LocalAccount]
) -> None:
    """A token deployed later copies the list at deployment; what changed before the group adds
    it as a listener reaches it then (AccountRules sends it every account ever listed, removed
    ones as None), and every change after that as it happens, until the group removes it."""
    group, rules, chain = suite.group, suite.rules, suite.chain
    customer, leaver = suite.take(ChainRole.CUSTOMER, 1), suite.take(ChainRole.CUSTOMER, 1)
    c, gone = customer.address, leaver.address
    late = chain.deploy(
        dev_accounts[0],
        "WalletToken",
        "Late",
        "LATE",
        rules.address,
        suite.collector.address,
        "0x" + "00" * 20,
        0,
        TIER_LIMITS,
        FEES,
        [],
        0,
    )
    propose(suite, rules.functions.setAccount(c, ChainRole.CUSTOMER, 2, ZERO32))
    propose(suite, rules.functions.removeAccount(gone))
    mine(suite)
    assert rules.functions.listeners().call() == [suite.token.address]
    assert suite.token.functions.holderRole(c).call() == [ChainRole.CUSTOMER, 2]
    assert suite.token.functions.holderRole(gone).call() == [ChainRole.NONE, 0]
    # Not listening yet: its copy is as of its deployment.
    assert late.functions.holderRole(c).call() == [ChainRole.CUSTOMER, 1]
    assert late.functions.holderRole(gone).call() == [ChainRole.CUSTOMER, 1]

    for who in (suite.admins[0].address, c):
        assert_reverts(rules.functions.addListener(late.address), who, "NotAdminGroup", who)
        assert_reverts(rules.functions.removeListener(late.address), who, "NotAdminGroup", who)
    (eoa,) = new_accounts(1)
    cases = [
        (rules.functions.addListener(eoa.address), ("ListenerNotContract", (eoa.address,))),
        (rules.functions.addListener(suite.token.address), ("AlreadyListening", None)),
        (rules.functions.removeListener(late.address), ("NotListening", (late.address,))),
    ]
    ids = [propose(suite, fn, approvers=0) for fn, _ in cases]
    mine(suite)
    approver = suite.admins[1].address
    for pid, (_, (error, args)) in zip(ids, cases, strict=True):
        _, reason = assert_reverts(group.functions.approve(pid), approver, "ProposalFailed")
        assert decode_error(reason)[0] == error
        if args is not None:
            assert decode_error(reason)[1] == args

    # Added: it catches up with every account at once (one call per listed account).
    pid = propose(suite, rules.functions.addListener(late.address), approvers=0)
    chain.tx(suite.admins[1], group.functions.approve(pid), gas=8_000_000)
    added = mine(suite)[-1]
    assert logs(rules, "ListenerAdded", added)[0].args.listener == late.address
    assert rules.functions.listeners().call() == [suite.token.address, late.address]
    assert late.functions.holderRole(c).call() == [ChainRole.CUSTOMER, 2]
    assert late.functions.holderRole(gone).call() == [ChainRole.NONE, 0]
    assert late.functions.holderRole(suite.issuer.address).call() == [ChainRole.ISSUER, 3]

    # Then each change as it happens, until removed.
    propose(suite, rules.functions.removeAccount(c))
    propose(suite, rules.functions.removeListener(late.address))
    propose(suite, rules.functions.setAccount(c, ChainRole.ENTERPRISE, 3, ZERO32))
    receipts = mine(suite)
    assert logs(rules, "ListenerRemoved", receipts[3])[0].args.listener == late.address
    assert rules.functions.listeners().call() == [suite.token.address]
    assert late.functions.holderRole(c).call() == [ChainRole.NONE, 0]
    assert suite.token.functions.holderRole(c).call() == [ChainRole.ENTERPRISE, 3]
