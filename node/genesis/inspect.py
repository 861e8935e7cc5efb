"""What a genesis grants, read back from the genesis state itself: the sign-off sheet.

Not from the network description and not from the JSON's init code: block 0 is built (the
contracts' constructors run, as on every node) and its state is asked, through the contracts'
own view functions, who the admins are, who holds which AccountRules role and tier, the
token's terms and fee collector, and which nodes NodeRules allows; the validators are decoded
from block 0's extraData. What an institution signs off is what its node will run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import eth_abi
from eth_typing import Address
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from node.chain.calls import CallExecutor, CallRequest
from node.chain.chain import Chain
from node.chain.genesis import Genesis, GenesisBlock, GenesisError
from node.domain.contracts import (
    ACCOUNT_RULES,
    ADMIN_GROUP,
    BATCH_PAYOUT,
    ESCROW,
    NETTING,
    NODE_RULES,
    POINTS,
    WALLET_TOKEN,
    ChainRole,
    FeeKind,
)
from node.genesis.report import AccountRole, Allocation, GenesisReport, Token
from node.qbftheader.extra_data import QbftExtraData
from node.storage.chainstore import ChainStore
from node.storage.store import MemoryStore

CONTRACT_NAMES = {
    ADMIN_GROUP: "AdminGroup",
    ACCOUNT_RULES: "AccountRules",
    NODE_RULES: "NodeRules",
    POINTS: "Points",
    WALLET_TOKEN: "WalletToken",
    ESCROW: "Escrow",
    BATCH_PAYOUT: "BatchPayout",
    NETTING: "Netting",
}


def contract_names() -> dict[str, str]:
    """The bank's contracts by checksummed address, to label them on the sheet."""
    return {to_checksum_address(address): name for address, name in CONTRACT_NAMES.items()}


def inspect_genesis(genesis: Genesis, block_zero: GenesisBlock | None = None) -> GenesisReport:
    """Read what block 0 grants, built in memory unless `block_zero` is given (raises
    `GenesisError` if building fails)."""
    chain = Chain(ChainStore(MemoryStore()), genesis, block_zero=block_zero)
    reader = _Reader(CallExecutor(chain, genesis.gas_limit), chain)
    extra = QbftExtraData.decode(chain.head.extra_data)
    report = GenesisReport(
        genesis_hash="0x" + chain.head_hash.hex(),
        chain_id=genesis.chain_id,
        block_period=genesis.block_period_seconds,
        gas_limit=genesis.gas_limit,
        permissioned=bool(genesis.permissions),
        validators=[to_checksum_address(v) for v in extra.validators],
        allocations=[
            Allocation(
                to_checksum_address(address),
                entry.balance,
                entry.nonce,
                len(entry.code),
                len(entry.storage),
            )
            for address, entry in sorted(genesis.alloc.items())
        ],
    )
    if not reader.has_code(ADMIN_GROUP):
        return report  # a genesis without the bank's contracts grants no role
    accounts = reader.read(ACCOUNT_RULES, "accounts()", [], ["address[]"])[0]
    roles = []
    for account in accounts:
        role, tier = reader.read(
            ACCOUNT_RULES, "roleAndTier(address)", [("address", account)], ["uint8", "uint8"]
        )
        roles.append(AccountRole(to_checksum_address(account), ChainRole(role).name.lower(), tier))
    admins = reader.read(ADMIN_GROUP, "admins()", [], ["address[]"])[0]
    nodes = reader.read(NODE_RULES, "nodes()", [], ["address[]"])[0]
    return replace(
        report,
        admins=[to_checksum_address(a) for a in admins],
        threshold=reader.read(ADMIN_GROUP, "threshold()", [], ["uint256"])[0],
        roles=roles,
        token=_token(reader),
        nodes=[to_checksum_address(n) for n in nodes],
    )


def _token(reader: _Reader) -> Token:
    def one(signature: str, out: str) -> Any:
        return reader.read(WALLET_TOKEN, signature, [], [out])[0]

    limits = [
        tuple(reader.read(WALLET_TOKEN, "tierLimits(uint8)", [("uint8", t)], ["uint96", "uint96"]))
        for t in range(16)
    ]
    while len(limits) > 1 and limits[-1] == (0, 0):
        limits.pop()
    thresholds = [
        reader.read(WALLET_TOKEN, "reviewThreshold(uint8)", [("uint8", t)], ["uint64"])[0]
        for t in range(16)
    ]
    while thresholds and thresholds[-1] == 0:
        thresholds.pop()
    fees = {
        kind.value: tuple(
            reader.read(
                WALLET_TOKEN, "feeOf(uint8)", [("uint8", kind.code)], ["uint16", "uint64", "uint64"]
            )
        )
        for kind in FeeKind
    }
    return Token(
        name=one("name()", "string"),
        symbol=one("symbol()", "string"),
        decimals=one("decimals()", "uint8"),
        fee_collector=to_checksum_address(one("feeCollector()", "address")),
        points_rate_bps=one("pointsRateBps()", "uint16"),
        tier_limits=limits,
        fees=fees,
        review_thresholds=thresholds,
        review_window_seconds=one("reviewWindow()", "uint64"),
    )


class _Reader:
    """View calls against block 0's state."""

    def __init__(self, calls: CallExecutor, chain: Chain) -> None:
        self.calls = calls
        self.chain = chain

    def has_code(self, address: bytes) -> bool:
        return bool(self.chain.state_at(self.chain.head).get_code(Address(address)))

    def read(
        self, contract: bytes, signature: str, args: list[tuple[str, Any]], out: list[str]
    ) -> tuple[Any, ...]:
        data = function_signature_to_4byte_selector(signature) + eth_abi.encode(
            [kind for kind, _ in args], [value for _, value in args]
        )
        computation = self.calls.call(
            CallRequest(bytes(20), contract, data, 0, None), self.chain.head
        )
        if computation.is_error:
            name = CONTRACT_NAMES.get(contract, contract.hex())
            raise GenesisError(f"{name}.{signature} failed on block 0: {computation.error!r}")
        return tuple(eth_abi.decode(out, computation.output))
