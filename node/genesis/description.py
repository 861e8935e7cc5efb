"""The network description: one TOML file the institutions agree on before genesis.

It names everything a genesis grants: the chain's parameters, every node (institution,
address, p2p endpoint, whether it validates), the admin group, the bank's role holders, the
token's terms and any allocation (none by default). Nothing else gets a role or a balance, so
reading this file (or `tally genesis inspect` of what it built) is reading the whole grant.

Validated with pydantic; a refusal names the field and the line it is on
(`network.toml:14: roles.issuer: not an address`), from `toml_lines`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from node.chain.genesis import DEFAULT_GAS_LIMIT
from node.domain.contracts import (
    FEES,
    POINTS_RATE_BPS,
    REVIEW_THRESHOLDS,
    REVIEW_WINDOW_SECONDS,
    TIER_LIMITS,
)
from node.genesis.toml_lines import Path as KeyPath
from node.genesis.toml_lines import key_lines, line_of


class DescriptionError(ValueError):
    """A network description that cannot be used; the message is the one line to print."""


def _address(value: str) -> str:
    if not is_hex_address(value):
        raise ValueError(f"not an address: {value!r} (0x and 40 hex digits)")
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(value):
        raise ValueError(f"{value} has a wrong EIP-55 checksum (a mistyped address?)")
    return to_checksum_address(value)


def _wei(value: Any) -> Any:
    """Balances may be written as strings: TOML integers stop at 2**63, about 9.2 ETH in wei."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def _endpoint(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not host:port: {value!r}")
    return value


Address = Annotated[str, AfterValidator(_address)]
Wei = Annotated[int, BeforeValidator(_wei), Field(ge=0)]
Cents = Annotated[int, Field(ge=0, lt=2**96)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChainSection(_Section):
    id: int = Field(gt=0, lt=2**63)
    block_period: int = Field(default=1, ge=1, le=3600)
    gas_limit: int = Field(default=DEFAULT_GAS_LIMIT, ge=5_000, lt=2**63)
    permissioned: bool = True


class NodeEntry(_Section):
    institution: str = Field(min_length=1, max_length=64)
    address: Address
    endpoint: Annotated[str, AfterValidator(_endpoint)]
    validator: bool = True

    @property
    def host(self) -> str:
        return self.endpoint.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.endpoint.rpartition(":")[2])


class AdminGroupSection(_Section):
    members: list[Address] = Field(min_length=1, max_length=32)
    threshold: int = Field(ge=1)


class RolesSection(_Section):
    issuer: Address
    compliance: Address
    fee_collector: Address
    auditors: list[Address] = []


class FeesSection(_Section):
    """Per transfer kind: [basis points, fixed fee, cap], the amounts in cents."""

    internal: tuple[Annotated[int, Field(ge=0, le=1000)], Cents, Literal[0]] = FEES[0]  # type: ignore[assignment]
    external: tuple[Annotated[int, Field(ge=0, le=1000)], Cents, Cents] = FEES[1]
    cross_border: tuple[Annotated[int, Field(ge=0, le=1000)], Cents, Cents] = FEES[2]


class TokenSection(_Section):
    name: str = Field(default="Tally Digital Euro", min_length=1, max_length=64)
    symbol: str = Field(default="TEUR", min_length=1, max_length=11)
    decimals: Literal[2] = 2
    """WalletToken counts cents: 2 is the only value, written down so nobody assumes 18."""
    tier_limits: list[tuple[Cents, Cents]] = Field(
        default=list(TIER_LIMITS), min_length=1, max_length=256
    )
    """Per KYC tier from 0: [per payment, per day] in cents."""
    review_thresholds: list[Annotated[int, Field(ge=0, lt=2**64)]] = Field(
        default=list(REVIEW_THRESHOLDS), max_length=256
    )
    """Per KYC tier from 0, in cents: a payment above is held for review (0 or absent: never)."""
    review_window_seconds: int = Field(default=REVIEW_WINDOW_SECONDS, ge=1, lt=2**64)
    """How long compliance may review a held payment before its payer can cancel it."""
    fees: FeesSection = FeesSection()
    points_rate_bps: int = Field(default=POINTS_RATE_BPS, ge=0, le=10_000)


class Allocation(_Section):
    address: Address
    balance: Wei


class NetworkDescription(_Section):
    chain: ChainSection
    nodes: list[NodeEntry] = Field(min_length=1)
    admin_group: AdminGroupSection
    roles: RolesSection
    token: TokenSection = TokenSection()
    allocations: list[Allocation] = []

    @field_validator("nodes")
    @classmethod
    def _some_validator(cls, nodes: list[NodeEntry]) -> list[NodeEntry]:
        if not any(node.validator for node in nodes):
            raise ValueError("at least one node must be a validator")
        return nodes

    @property
    def validators(self) -> list[NodeEntry]:
        return [node for node in self.nodes if node.validator]


def load_description(path: Path) -> NetworkDescription:
    """Read and check `path`; every refusal is a `DescriptionError` naming field and line."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DescriptionError(f"cannot read {path}: {exc}") from exc
    return parse_description(text, str(path))


def parse_description(text: str, name: str = "network.toml") -> NetworkDescription:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DescriptionError(f"{name}: not valid TOML: {exc}") from exc
    lines = key_lines(text)
    try:
        description = NetworkDescription.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DescriptionError(_located(name, lines, first["loc"], first["msg"])) from exc
    problem = _conflict(description)
    if problem is not None:
        loc, message = problem
        raise DescriptionError(_located(name, lines, loc, message))
    return description


def _located(name: str, lines: dict[KeyPath, int], loc: KeyPath, message: str) -> str:
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    line = line_of(lines, loc)
    where = f"{name}:{line}" if line is not None else name
    return f"{where}: {field.lstrip('.') or 'file'}: {message.removeprefix('Value error, ')}"


def _conflict(description: NetworkDescription) -> tuple[KeyPath, str] | None:
    """The first rule spanning fields that the description breaks, with where it does."""
    seen_nodes: dict[str, int] = {}
    for index, node in enumerate(description.nodes):
        if node.address in seen_nodes:
            return ("nodes", index, "address"), f"{node.address} is listed twice"
        seen_nodes[node.address] = index
    group = description.admin_group
    if len(set(group.members)) != len(group.members):
        return ("admin_group", "members"), "an admin is listed twice"
    if group.threshold > len(group.members):
        return (
            ("admin_group", "threshold"),
            f"{group.threshold} approvals needed of {len(group.members)} members",
        )
    holders: dict[str, str] = {}
    roles = description.roles
    claims: list[tuple[KeyPath, str, str]] = [
        *((("admin_group", "members", i), a, "an admin") for i, a in enumerate(group.members)),
        (("roles", "issuer"), roles.issuer, "the issuer"),
        (("roles", "compliance"), roles.compliance, "compliance"),
        *((("roles", "auditors", i), a, "an auditor") for i, a in enumerate(roles.auditors)),
    ]
    for loc, address, role in claims:
        if address in holders:
            return loc, f"{address} is already {holders[address]}: one address, one role"
        holders[address] = role
    funded: set[str] = set()
    for index, allocation in enumerate(description.allocations):
        if allocation.address in funded:
            return ("allocations", index, "address"), f"{allocation.address} is allocated twice"
        funded.add(allocation.address)
    return None
