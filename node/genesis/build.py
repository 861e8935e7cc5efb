"""From a network description to what every node starts from: genesis.json and network.json.

The bank's contracts are deployed at genesis with the description's role holders (never the
dev accounts): admins, issuer and compliance at KYC tier 3, auditors at tier 0 (they read, they
do not pay), and the fee collector, unless it holds a role already, as an enterprise at tier 3
(it must be an allowed account to receive fees). NodeRules lists every node of the
description; only the validators go into extraData.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_utils import to_canonical_address

from node.chain.genesis import AllocEntry, Genesis
from node.domain.contracts import ACCOUNT_RULES, NODE_RULES, ChainRole, Member, bank_deployments
from node.genesis.description import NetworkDescription

GENESIS_FILE = "genesis.json"
NETWORK_FILE = "network.json"


def _raw(address: str) -> bytes:
    return to_canonical_address(address)


def members(description: NetworkDescription) -> list[Member]:
    """AccountRules' initial accounts: each role holder with its role and KYC tier."""
    roles = description.roles
    listed = [
        *(Member(_raw(a), ChainRole.ADMIN, 3) for a in description.admin_group.members),
        Member(_raw(roles.issuer), ChainRole.ISSUER, 3),
        Member(_raw(roles.compliance), ChainRole.COMPLIANCE, 3),
        *(Member(_raw(a), ChainRole.AUDITOR, 0) for a in roles.auditors),
    ]
    if all(member.address != _raw(roles.fee_collector) for member in listed):
        listed.append(Member(_raw(roles.fee_collector), ChainRole.ENTERPRISE, 3))
    return listed


def build_genesis(description: NetworkDescription) -> Genesis:
    """The genesis the description asks for, dated now (block 0 shows when the network began)."""
    chain, token = description.chain, description.token
    genesis = Genesis(
        chain_id=chain.id,
        validators=tuple(sorted(_raw(node.address) for node in description.validators)),
        alloc={_raw(a.address): AllocEntry(balance=a.balance) for a in description.allocations},
        gas_limit=chain.gas_limit,
        block_period_seconds=chain.block_period,
        request_timeout_seconds=max(2, 2 * chain.block_period),
        deployments=bank_deployments(
            [_raw(a) for a in description.admin_group.members],
            description.admin_group.threshold,
            members(description),
            [_raw(node.address) for node in description.nodes],
            fee_collector=_raw(description.roles.fee_collector),
            token_name=token.name,
            token_symbol=token.symbol,
            tier_limits=tuple(token.tier_limits),
            fees=(token.fees.internal, token.fees.external, token.fees.cross_border),
            points_rate_bps=token.points_rate_bps,
            review_thresholds=tuple(token.review_thresholds),
            review_window_seconds=token.review_window_seconds,
        ),
        permissions=(
            {"accountRules": ACCOUNT_RULES, "nodeRules": NODE_RULES} if chain.permissioned else {}
        ),
    ).dated_now()
    genesis.check()
    return genesis


def network_document(description: NetworkDescription) -> dict[str, Any]:
    """network.json as `node.p2p.network.NetworkConfig` reads it: every node and its endpoint."""
    return {
        "nodes": [
            {
                "name": node.institution,
                "address": node.address,
                "host": node.host,
                "p2pPort": node.port,
            }
            for node in description.nodes
        ]
    }


def write_network(
    description: NetworkDescription, genesis: Genesis, out: Path
) -> tuple[Path, Path]:
    """Write `genesis` (built once: `build_genesis` dates it) and the description's
    network.json into `out` (created); both paths."""
    out.mkdir(parents=True, exist_ok=True)
    genesis_path, network_path = out / GENESIS_FILE, out / NETWORK_FILE
    genesis_path.write_text(genesis.dumps())
    network_path.write_text(json.dumps(network_document(description), indent=2) + "\n")
    return genesis_path, network_path
