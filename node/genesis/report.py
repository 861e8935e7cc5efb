"""The sign-off sheet of a genesis: what `tally genesis inspect` prints, as data and as text.

Plain text in 80 columns (an address is 42 characters; every line holds one and its label),
the same facts as JSON with `--json`. Filled in by `node.genesis.inspect`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from node.qbftheader.quorum import quorum


@dataclass(frozen=True)
class AccountRole:
    address: str
    role: str
    tier: int


@dataclass(frozen=True)
class Token:
    name: str
    symbol: str
    decimals: int
    fee_collector: str
    points_rate_bps: int
    tier_limits: list[tuple[int, int]]
    """Per KYC tier from 0, [per payment, per day] in cents; tiers past the list pay nothing."""
    fees: dict[str, tuple[int, int, int]]
    """Per kind: (basis points, fixed cents, cap cents)."""
    review_thresholds: list[int]
    """Per KYC tier from 0, cents: payments above are held for review (0: never)."""
    review_window_seconds: int


@dataclass(frozen=True)
class Allocation:
    address: str
    balance: int
    nonce: int
    code_bytes: int
    storage_slots: int


@dataclass(frozen=True)
class GenesisReport:
    """Everything block 0 grants, addresses checksummed; `names` labels known addresses."""

    genesis_hash: str
    chain_id: int
    block_period: int
    gas_limit: int
    permissioned: bool
    validators: list[str]
    admins: list[str] = field(default_factory=list)
    threshold: int = 0
    roles: list[AccountRole] = field(default_factory=list)
    token: Token | None = None
    nodes: list[str] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def grants(self) -> list[tuple[str, str]]:
        """Every (address, what it gets) pair: the list the dev-key check walks."""
        pairs = [(v, "validator") for v in self.validators]
        pairs += [(a, "admin group member") for a in self.admins]
        pairs += [(r.address, f"AccountRules role {r.role}") for r in self.roles]
        if self.token is not None:
            pairs.append((self.token.fee_collector, "WalletToken fee collector"))
        pairs += [(n, "allowed node (NodeRules)") for n in self.nodes]
        pairs += [(a.address, f"funded with {_ether(a.balance)} ETH") for a in self.allocations]
        return pairs

    def lines(self, names: dict[str, str] | None = None) -> list[str]:
        """The sheet as text, 80 columns; `names` labels addresses (institutions, contracts)."""
        names = names or {}

        def row(address: str, *details: str) -> str:
            text = "  ".join(["", address, *details, names.get(address, "")]).rstrip()
            return text if len(text) <= WIDTH else text[: WIDTH - 1] + "~"

        rules = "on: AccountRules and NodeRules enforced" if self.permissioned else "off"
        out = [
            f"Genesis hash {self.genesis_hash}",
            f"Chain id {self.chain_id}, a block every {self.block_period} s, "
            f"gas limit {self.gas_limit:,}",
            f"Permissioning {rules}",
            "",
            f"Validators ({len(self.validators)}, from extraData; "
            f"a block needs {quorum(len(self.validators))} commit seals)",
            *(row(v) for v in self.validators),
        ]
        if self.token is None:
            out += ["", "The bank's contracts are not deployed: no roles."]
        else:
            token = self.token
            out += [
                "",
                "Allowed nodes (NodeRules)",
                *(row(n) for n in self.nodes),
                "",
                f"Admin group (AdminGroup): {self.threshold} of {len(self.admins)} approve",
                *(row(a) for a in self.admins),
                "",
                "Roles (AccountRules: address, role, KYC tier)",
                *(row(r.address, f"{r.role:<11}", f"tier {r.tier}") for r in self.roles),
                "",
                f"WalletToken {token.name} ({token.symbol}), {token.decimals} decimals",
                row(token.fee_collector, "fee collector"),
                f"  points rate {token.points_rate_bps} bps of each payment",
                "  tier limits, in cents: per payment / per day",
                *(
                    f"    tier {tier:<3} {per:,} / {daily:,}"
                    for tier, (per, daily) in enumerate(token.tier_limits)
                ),
                f"    tier {len(token.tier_limits)}+  cannot pay",
                "  review: payments above are held (per tier, cents; 0 never), "
                f"window {token.review_window_seconds:,} s",
                *(
                    f"    tier {tier:<3} {threshold:,}"
                    for tier, threshold in enumerate(token.review_thresholds)
                ),
                "  fees: basis points / fixed cents / cap cents",
                *(
                    f"    {kind:<13} {bps} / {fixed:,} / {cap:,}"
                    for kind, (bps, fixed, cap) in token.fees.items()
                ),
            ]
        out += ["", f"Allocations ({len(self.allocations) or 'none'})"]
        for item in self.allocations:
            extra = f", code {item.code_bytes} bytes" if item.code_bytes else ""
            extra += f", {item.storage_slots} storage slots" if item.storage_slots else ""
            extra += f", nonce {item.nonce}" if item.nonce else ""
            out.append(row(item.address, f"{_ether(item.balance)} ETH{extra}"))
        return out


WIDTH = 80


def _ether(wei: int) -> str:
    """Wei as ETH, exact: 10000000000000000001 wei is 10.000000000000000001."""
    whole, fraction = divmod(wei, 10**18)
    return f"{whole:,}" + (f".{fraction:018d}".rstrip("0") if fraction else "")
