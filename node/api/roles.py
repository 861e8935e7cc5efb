"""The REST API's roles and the on-chain roles they come from."""

from __future__ import annotations

from enum import StrEnum

from node.domain.contracts import ChainRole


class ApiRole(StrEnum):
    """admin: everything; auditor: read everything, write nothing; enterprise: chain-wide
    blocks and transactions, its own accounts and settlements, relay from its addresses;
    customer: its own addresses only, relay of its own transactions."""

    ADMIN = "admin"
    AUDITOR = "auditor"
    ENTERPRISE = "enterprise"
    CUSTOMER = "customer"


CHAIN_ROLES: dict[ChainRole, ApiRole] = {
    ChainRole.ADMIN: ApiRole.ADMIN,
    ChainRole.ISSUER: ApiRole.ADMIN,
    ChainRole.COMPLIANCE: ApiRole.ADMIN,
    ChainRole.ENTERPRISE: ApiRole.ENTERPRISE,
    ChainRole.AUDITOR: ApiRole.AUDITOR,
    ChainRole.CUSTOMER: ApiRole.CUSTOMER,
}
"""AccountRules roles a wallet may sign in with. The bank's staff roles (issuer, compliance)
administer; SYSTEM marks the settlement contracts, which cannot sign."""
