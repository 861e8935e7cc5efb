"""The bank's contracts every Tally network starts with, deployed at genesis at fixed addresses.

Permissioning (AdminGroup, AccountRules, NodeRules at Besu's customary 0x…8888 / 0x…9999),
the wallet token, points and the settlement contracts. Their constructors take everything
they need (admins, roles, limits, fees), so genesis runs their init code (see
`node.chain.genesis.Deployment`) and every node derives the same state without keys.
No personal data goes in: accounts are addresses with a role and a KYC tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from eth_abi import encode
from eth_utils import to_checksum_address

from contracts import load_artifact
from node.chain.genesis import Deployment


def _fixed(suffix: str) -> bytes:
    return bytes.fromhex(suffix.rjust(40, "0"))


ADMIN_GROUP = _fixed("7777")
ACCOUNT_RULES = _fixed("8888")
NODE_RULES = _fixed("9999")
POINTS = _fixed("a001")
WALLET_TOKEN = _fixed("a002")
ESCROW = _fixed("a003")
BATCH_PAYOUT = _fixed("a004")
NETTING = _fixed("a005")


class ChainRole(IntEnum):
    """AccountRules.Role, in the contract's enum order."""

    NONE = 0
    ADMIN = 1
    ISSUER = 2
    COMPLIANCE = 3
    ENTERPRISE = 4
    AUDITOR = 5
    CUSTOMER = 6
    SYSTEM = 7


class FeeKind(StrEnum):
    """WalletToken.Kind, in the contract's enum order (`code`), named as the REST API, the
    indexes' rows and `genesis inspect` show it."""

    INTERNAL = "internal"
    EXTERNAL = "external"
    CROSS_BORDER = "cross_border"

    @property
    def code(self) -> int:
        """The contract's uint8 for this kind."""
        return list(FeeKind).index(self)

    @classmethod
    def name_of(cls, code: int) -> str:
        """The kind's name, or the number itself for a kind this node does not know."""
        kinds = list(cls)
        return kinds[code].value if 0 <= code < len(kinds) else str(code)


@dataclass(frozen=True, slots=True)
class Member:
    address: bytes
    role: ChainRole
    tier: int


# Per KYC tier, in cents (2 decimals): (per payment, per day). Tier 0 cannot pay.
TIER_LIMITS = ((0, 0), (100_000, 500_000), (1_000_000, 5_000_000), (100_000_000, 1_000_000_000))
# Per KYC tier, in cents: payments above are held for review (0: none, the default).
REVIEW_THRESHOLDS: tuple[int, ...] = ()
REVIEW_WINDOW_SECONDS = 72 * 3600
"""How long compliance has to review a held payment before its payer may cancel it."""
# Per FeeKind, in its order: (basis points, fixed cents, cap cents).
FEES = ((0, 0, 0), (50, 30, 2_000), (100, 100, 5_000))
POINTS_RATE_BPS = 100


def bank_deployments(
    admins: list[bytes],
    threshold: int,
    members: list[Member],
    nodes: list[bytes],
    fee_collector: bytes,
    token_name: str = "Tally Digital Euro",
    token_symbol: str = "TEUR",
    tier_limits: tuple[tuple[int, int], ...] = TIER_LIMITS,
    fees: tuple[tuple[int, int, int], ...] = FEES,
    points_rate_bps: int = POINTS_RATE_BPS,
    review_thresholds: tuple[int, ...] = REVIEW_THRESHOLDS,
    review_window_seconds: int = REVIEW_WINDOW_SECONDS,
) -> tuple[Deployment, ...]:
    """Init code for every bank contract, in dependency order, at the fixed addresses."""
    settlement = [
        Member(address, ChainRole.SYSTEM, 3) for address in (ESCROW, BATCH_PAYOUT, NETTING)
    ]
    everyone = [*members, *settlement]

    def create(name: str, address: bytes, types: list[str], values: list[object]) -> Deployment:
        code = bytes.fromhex(load_artifact(name)["bytecode"][2:])
        return Deployment(address, code + encode(types, values), name)

    def checksum(address: bytes) -> str:
        return to_checksum_address(address)

    return (
        create(
            "AdminGroup",
            ADMIN_GROUP,
            ["address[]", "uint256"],
            [[checksum(a) for a in admins], threshold],
        ),
        create(
            "AccountRules",
            ACCOUNT_RULES,
            ["address", "address[]", "uint8[]", "uint8[]", "address[]"],
            [
                checksum(ADMIN_GROUP),
                [checksum(m.address) for m in everyone],
                [int(m.role) for m in everyone],
                [m.tier for m in everyone],
                [checksum(WALLET_TOKEN)],  # keeps a copy of roles and tiers, pushed on change
            ],
        ),
        create(
            "NodeRules",
            NODE_RULES,
            ["address", "address[]"],
            [checksum(ADMIN_GROUP), [checksum(n) for n in nodes]],
        ),
        create(
            "Points",
            POINTS,
            ["address", "address"],
            [checksum(ACCOUNT_RULES), checksum(WALLET_TOKEN)],
        ),
        create(
            "WalletToken",
            WALLET_TOKEN,
            [
                "string",
                "string",
                "address",
                "address",
                "address",
                "uint16",
                "(uint96,uint96)[]",
                "(uint16,uint64,uint64)[]",
                "uint64[]",
                "uint64",
            ],
            [
                token_name,
                token_symbol,
                checksum(ACCOUNT_RULES),
                checksum(fee_collector),
                checksum(POINTS),
                points_rate_bps,
                list(tier_limits),
                list(fees),
                list(review_thresholds),
                review_window_seconds,
            ],
        ),
        create("Escrow", ESCROW, ["address"], [checksum(WALLET_TOKEN)]),
        create("BatchPayout", BATCH_PAYOUT, ["address"], [checksum(WALLET_TOKEN)]),
        create(
            "Netting",
            NETTING,
            ["address", "address"],
            [checksum(ACCOUNT_RULES), checksum(WALLET_TOKEN)],
        ),
    )


DEV_ROLES = (
    (ChainRole.ADMIN, 3),
    (ChainRole.ISSUER, 3),
    (ChainRole.COMPLIANCE, 3),
    (ChainRole.ENTERPRISE, 3),
    (ChainRole.ENTERPRISE, 3),
    (ChainRole.AUDITOR, 0),
    (ChainRole.CUSTOMER, 1),
    (ChainRole.CUSTOMER, 2),
    (ChainRole.CUSTOMER, 2),
    (ChainRole.CUSTOMER, 1),
)
"""Roles of the ten dev accounts, by index: 0 admin (and fee collector), 1 issuer,
2 compliance, 3-4 enterprises, 5 auditor, 6-9 customers. Accounts 0-2 form the admin
group with a 2-of-3 threshold."""


def dev_deployments(dev_addresses: list[bytes], nodes: list[bytes]) -> tuple[Deployment, ...]:
    members = [
        Member(address, role, tier)
        for address, (role, tier) in zip(dev_addresses, DEV_ROLES, strict=True)
    ]
    return bank_deployments(dev_addresses[:3], 2, members, nodes, fee_collector=dev_addresses[0])
