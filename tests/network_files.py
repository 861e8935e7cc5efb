"""Network descriptions (network.toml) for the tests that build a real network's genesis."""

from __future__ import annotations

import json

from eth_account import Account
from eth_keys.datatypes import PrivateKey

from tests.conftest import free_port


def _random_address() -> str:
    return str(Account.create().address)


def network_description(
    chain_id: int,
    validator: PrivateKey | None = None,
    *,
    nodes: list[tuple[str, str, str, bool]] | None = None,
    admins: list[str] | None = None,
    threshold: int = 2,
    issuer: str | None = None,
    compliance: str | None = None,
    fee_collector: str | None = None,
    auditors: tuple[str, ...] = (),
    allocations: tuple[tuple[str, int], ...] = (),
    permissioned: bool = True,
) -> str:
    """A network.toml: `nodes` as (institution, address, host:port, validator), or one
    validator of `validator`'s key; roles not given get fresh addresses nobody will use."""
    if nodes is None:
        assert validator is not None
        address: str = validator.public_key.to_checksum_address()
        nodes = [("Bank A", address, f"127.0.0.1:{free_port()}", True)]
    admins = admins or [_random_address() for _ in range(3)]
    lines = [
        "[chain]",
        f"id = {chain_id}",
        f"permissioned = {json.dumps(permissioned)}",
    ]
    for institution, address, endpoint, validates in nodes:
        lines += [
            "",
            "[[nodes]]",
            f'institution = "{institution}"',
            f'address = "{address}"',
            f'endpoint = "{endpoint}"',
            f"validator = {json.dumps(validates)}",
        ]
    lines += [
        "",
        "[admin_group]",
        f"members = {json.dumps(admins)}",
        f"threshold = {threshold}",
        "",
        "[roles]",
        f'issuer = "{issuer or _random_address()}"',
        f'compliance = "{compliance or _random_address()}"',
        f'fee_collector = "{fee_collector or _random_address()}"',
        f"auditors = {json.dumps(list(auditors))}",
    ]
    for address, balance in allocations:
        lines += ["", "[[allocations]]", f'address = "{address}"', f'balance = "{balance}"']
    return "\n".join(lines) + "\n"
