"""Shared pieces for the contract tests: sign and batch real transactions, deploy the suite,
decode custom errors (no tests here).

Why batches: the dev node seals a block a second after transactions arrive, so a test that
waits for each transaction in turn spends a second per step. Transactions are signed with
locally tracked nonces, contract addresses are derived from those nonces before anything is
mined, and a whole step (deployments, top-ups, approvals) is sent at once and mined together.
Within a block the node orders zero-price transactions by arrival (the pool's documented
tie-break), so a proposal and its approval by another admin can go in the same batch.
Refusals are checked with `eth_call` from the refused account: the same code runs, and web3.py
raises with the revert data, decoded here against every artifact's ABI.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import eth_abi
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from contracts import artifact_names, load_artifact
from node.domain.contracts import ChainRole

GAS = 1_500_000  # per call; the dev block holds 60M
DEPLOY_GAS = 20_000_000
UNLIMITED = 2**96 - 1
DAY = 86_400


class Kind(IntEnum):
    INTERNAL = 0
    EXTERNAL = 1
    CROSS_BORDER = 2


def _signature(item: dict[str, Any]) -> str:
    def typ(p: dict[str, Any]) -> str:
        if p["type"].startswith("tuple"):
            return "(" + ",".join(typ(c) for c in p["components"]) + ")" + p["type"][5:]
        return p["type"]

    return f"{item['name']}({','.join(typ(p) for p in item['inputs'])})"


def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    table: dict[bytes, tuple[str, list[str]]] = {}
    for name in artifact_names():
        for item in load_artifact(name)["abi"]:
            if item["type"] == "error":
                sig = _signature(item)
                types = sig[len(item["name"]) + 1 : -1]
                table[function_signature_to_4byte_selector(sig)] = (
                    item["name"],
                    [t for t in _split_types(types)],
                )
    # Solidity's built-ins: require(false, "...") and panics.
    table[function_signature_to_4byte_selector("Error(string)")] = ("Error", ["string"])
    table[function_signature_to_4byte_selector("Panic(uint256)")] = ("Panic", ["uint256"])
    return table


def _split_types(types: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in types:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    return [*out, cur] if cur else out


ERRORS = _error_table()


def decode_error(data: str | bytes) -> tuple[str, tuple[Any, ...]]:
    """(name, args) of revert data, e.g. ("OverPaymentLimit", (payer, amount, limit))."""
    raw = HexBytes(data)
    name, types = ERRORS[bytes(raw[:4])]
    args = eth_abi.decode(types, bytes(raw[4:]))
    return name, tuple(to_checksum_address(a) if isinstance(a, str) else a for a in args)


def create_address(sender: str, nonce: int) -> ChecksumAddress:
    from rlp import encode as rlp_encode

    return to_checksum_address(keccak(rlp_encode([bytes.fromhex(sender[2:]), nonce]))[12:])


@dataclass
class Chain:
    """Signs, batches and mines transactions for one node."""

    w3: Web3
    chain_id: int = 0
    nonces: dict[str, int] = field(default_factory=dict)
    pending: list[HexBytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.chain_id = self.w3.eth.chain_id

    def next_nonce(self, acct: LocalAccount) -> int:
        if acct.address not in self.nonces:
            self.nonces[acct.address] = self.w3.eth.get_transaction_count(acct.address, "pending")
        n = self.nonces[acct.address]
        self.nonces[acct.address] = n + 1
        return n

    def send(self, acct: LocalAccount, to: str | None, data: bytes, gas: int = GAS) -> HexBytes:
        tx: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": self.next_nonce(acct),
            "gasPrice": 0,
            "gas": gas,
            "value": 0,
            "data": data,
        }
        if to is not None:
            tx["to"] = to
        signed = acct.sign_transaction(tx)
        h = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        self.pending.append(h)
        return h

    def tx(self, acct: LocalAccount, fn: Any, gas: int = GAS) -> HexBytes:
        """Send a bound contract function call (e.g. `token.functions.mint(a, 1, ref)`)."""
        return self.send(acct, fn.address, HexBytes(fn._encode_transaction_data()), gas)

    def deploy(self, acct: LocalAccount, name: str, *args: Any) -> Contract:
        """Send a deployment; the contract's address is known before it is mined."""
        art = load_artifact(name)
        ctor = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        data = HexBytes(ctor.constructor(*args).data_in_transaction)
        if acct.address not in self.nonces:
            self.next_nonce(acct)
            self.nonces[acct.address] -= 1
        address = create_address(acct.address, self.nonces[acct.address])
        self.send(acct, None, data, gas=DEPLOY_GAS)
        return self.w3.eth.contract(address=address, abi=art["abi"])

    def mine(self, expect_success: bool = True) -> list[Any]:
        """Wait for every pending transaction; by default each must have succeeded."""
        hashes, self.pending = self.pending, []
        receipts = [self.w3.eth.wait_for_transaction_receipt(h, timeout=60) for h in hashes]
        if expect_success:
            failed = [r for r in receipts if r["status"] != 1]
            if failed:
                raise AssertionError(f"{len(failed)} transaction(s) failed: {failed[0]}")
        return receipts

    def run(self, acct: LocalAccount, fn: Any) -> Any:
        """One call, mined; its receipt."""
        self.tx(acct, fn)
        return self.mine()[-1]


def revert_of(fn: Any, sender: str) -> tuple[str, tuple[Any, ...]]:
    """Run `fn` with `eth_call` from `sender`; it must revert: return the decoded error."""
    try:
        fn.call({"from": sender, "gas": GAS})
    except ContractCustomError as exc:
        return decode_error(exc.data)  # type: ignore[arg-type]
    except ContractLogicError as exc:
        if exc.data:
            return decode_error(exc.data)  # type: ignore[arg-type]
        raise
    raise AssertionError(f"{fn.fn_name} did not revert")


def assert_reverts(fn: Any, sender: str, error: str, *args: Any) -> tuple[Any, ...]:
    """`fn` from `sender` reverts with custom error `error` (and `args`, if given)."""
    name, got = revert_of(fn, sender)
    assert name == error, f"expected {error}, got {name}{got}"
    if args:
        assert got == args, f"{error}: expected args {args}, got {got}"
    return got


def logs(contract: Contract, event: str, receipt: Any) -> list[Any]:
    """Decoded events `event` of `contract` in a receipt."""
    from web3.logs import DISCARD

    return list(getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD))


def new_accounts(n: int) -> list[LocalAccount]:
    """Fresh keys: at gas price zero they can send transactions without any ether."""
    return [Account.create() for _ in range(n)]


# Tier 1: a basic customer; tier 2: verified; tier 3: enterprise.
TIER_LIMITS = [
    (0, 0),  # tier 0: unverified, may receive but not pay
    (50_00, 100_00),  # 50.00 per payment, 100.00 a day
    (1_000_00, 2_000_00),
    (UNLIMITED, UNLIMITED),
]
# (bps, fixed, cap) for Internal (free), External, CrossBorder.
FEES = [(0, 0, 0), (50, 10, 5_00), (150, 50, 20_00)]
POINTS_RATE_BPS = 100  # customers earn 1 point per 1.00 paid


@dataclass
class Suite:
    """A deployed contract suite and the accounts holding its roles."""

    chain: Chain
    admins: list[LocalAccount]
    issuer: LocalAccount
    compliance: LocalAccount
    collector: LocalAccount
    group: Contract
    rules: Contract
    node_rules: Contract
    token: Contract
    points: Contract
    escrow: Contract
    payout: Contract
    netting: Contract
    spare: list[tuple[LocalAccount, ChainRole, int]]
    queued_proposals: int = 0
    proposals_before_queue: int = 0

    def take(self, role: ChainRole, tier: int) -> LocalAccount:
        """A pre-registered account no other test has used."""
        for i, (acct, r, t) in enumerate(self.spare):
            if r == role and t == tier:
                del self.spare[i]
                return acct
        raise LookupError(f"no spare account with role {role.name} and tier {tier}")


def deploy_suite(
    w3: Web3,
    deployer: LocalAccount,
    admins: Sequence[LocalAccount],
    threshold: int,
    spare: Iterable[tuple[ChainRole, int, int]] = (),
    nodes: Sequence[str] = (),
) -> Suite:
    """Deploy every contract in one block (addresses derived from the deployer's nonces), as
    genesis would, with `spare` = [(role, tier, count)] fresh accounts pre-registered."""
    chain = Chain(w3)
    issuer, compliance, collector = new_accounts(3)
    start = chain.w3.eth.get_transaction_count(deployer.address, "pending")
    addr = [create_address(deployer.address, start + i) for i in range(8)]
    group_a, rules_a, _nr, token_a, points_a, escrow_a, _bp, netting_a = addr
    spares = [(a, r, t) for r, t, n in spare for a in new_accounts(n)]
    accounts = [
        *((a.address, ChainRole.ADMIN, 3) for a in admins),
        (issuer.address, ChainRole.ISSUER, 3),
        (compliance.address, ChainRole.COMPLIANCE, 0),
        (collector.address, ChainRole.ENTERPRISE, 3),
        (escrow_a, ChainRole.SYSTEM, 0),
        (netting_a, ChainRole.SYSTEM, 0),
        *((a.address, r, t) for a, r, t in spares),
    ]
    group = chain.deploy(deployer, "AdminGroup", [a.address for a in admins], threshold)
    rules = chain.deploy(
        deployer,
        "AccountRules",
        group_a,
        [a for a, _, _ in accounts],
        [int(r) for _, r, _ in accounts],
        [t for _, _, t in accounts],
        [token_a],  # the token keeps a copy of roles and tiers
    )
    node_rules = chain.deploy(deployer, "NodeRules", group_a, list(nodes) or [deployer.address])
    token = chain.deploy(
        deployer,
        "WalletToken",
        "Tally Euro",
        "TEUR",
        rules_a,
        collector.address,
        points_a,
        POINTS_RATE_BPS,
        TIER_LIMITS,
        FEES,
        [],  # no review thresholds: nothing is held unless a test sets one
        0,  # the default review window (72 hours)
    )
    points = chain.deploy(deployer, "Points", rules_a, token_a)
    escrow = chain.deploy(deployer, "Escrow", token_a)
    payout = chain.deploy(deployer, "BatchPayout", token_a)
    netting = chain.deploy(deployer, "Netting", rules_a, token_a)
    assert [
        c.address for c in (group, rules, node_rules, token, points, escrow, payout, netting)
    ] == addr
    chain.mine()
    assert escrow.address == escrow_a and netting.address == netting_a
    return Suite(
        chain,
        list(admins),
        issuer,
        compliance,
        collector,
        group,
        rules,
        node_rules,
        token,
        points,
        escrow,
        payout,
        netting,
        spares,
    )


_refs = itertools.count()


def top_up_ref() -> bytes:
    """A top-up reference never used before (a card payment id, in production)."""
    return keccak(text=f"top-up {next(_refs)} {id(_refs)}")


def propose(suite: Suite, fn_call: Any, approvers: int = 1) -> int:
    """Queue a proposal of `fn_call` (a bound call on any contract) by the first admin and its
    approval by the next `approvers` admins; return the proposal id it will get."""
    group = suite.group
    # The count is read only while none of ours is queued: one of them mined between two
    # `propose` calls (a block can land at any moment) would otherwise be counted twice.
    if suite.queued_proposals == 0:
        suite.proposals_before_queue = group.functions.proposalCount().call()
    suite.queued_proposals += 1
    pid = suite.proposals_before_queue + suite.queued_proposals
    data = HexBytes(fn_call._encode_transaction_data())
    suite.chain.tx(suite.admins[0], group.functions.propose(fn_call.address, data))
    for admin in suite.admins[1 : 1 + approvers]:
        suite.chain.tx(admin, group.functions.approve(pid))
    return pid


def mine(suite: Suite, expect_success: bool = True) -> list[Any]:
    """Mine what is queued (and forget queued proposal ids: they now exist)."""
    suite.queued_proposals = 0
    return suite.chain.mine(expect_success)


def top_up(suite: Suite, amounts: dict[str, int]) -> None:
    """Queue one mint per account (mined with the caller's next `mine`)."""
    for who, amount in amounts.items():
        suite.chain.tx(suite.issuer, suite.token.functions.mint(who, amount, top_up_ref()))


def standard_suite(w3: Web3, dev_accounts: list[LocalAccount]) -> Suite:
    """The suite a test module shares: admins are dev accounts 0-2 (2 of 3), and spare
    accounts per role and tier that each test takes for itself."""
    return deploy_suite(
        w3,
        dev_accounts[0],
        dev_accounts[:3],
        2,
        spare=[
            (ChainRole.CUSTOMER, 1, 12),
            (ChainRole.CUSTOMER, 2, 20),
            (ChainRole.CUSTOMER, 0, 2),
            (ChainRole.ENTERPRISE, 3, 24),
            (ChainRole.AUDITOR, 0, 2),
        ],
    )
