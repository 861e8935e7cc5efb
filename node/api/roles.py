"""The REST API's roles and the on-chain roles they come from."""

from __future__ import annotations

from enum import StrEnum

from node.chain.bank_contracts import Role as ChainRole


class Role(StrEnum):
    """admin: everything; auditor: read everything, write nothing; enterprise: chain-wide
    blocks and transactions, its own accounts and settlements, relay from its addresses;
    customer: its own addresses only, relay of its own transactions."""

    ADMIN = "admin"
    AUDITOR = "auditor"
    ENTERPRISE = "enterprise"
    CUSTOMER = "customer"


CHAIN_ROLES: dict[ChainRole, Role] = {
    ChainRole.ADMIN: Role.ADMIN,
    ChainRole.ISSUER: Role.ADMIN,
    ChainRole.COMPLIANCE: Role.ADMIN,
    ChainRole.ENTERPRISE: Role.ENTERPRISE,
    ChainRole.AUDITOR: Role.AUDITOR,
    ChainRole.CUSTOMER: Role.CUSTOMER,
}
"""AccountRules roles a wallet may sign in with. The bank's staff roles (issuer, compliance)
administer; SYSTEM marks the settlement contracts, which cannot sign."""
