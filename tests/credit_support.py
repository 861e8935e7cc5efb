"""What the credit and catalog tests share: a gateway on PostgreSQL that reads the node's REST
API with an auditor key, and SDK bindings for dev accounts from a file key store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from client import FileKeyStore
from client.points import Points
from client.tokens import WalletToken
from client.wallet import Wallet
from tests.bank_support import (
    PASSWORD,
    SCRYPT_N,
    TOKEN,
    PostgresCluster,
    Service,
    gateway,
    make_key,
    node_api_key,
    simulator,
    write_keys,
)
from tests.conftest import NodeProcess, free_port

#: Dev accounts by role (node.domain.contracts.DEV_ROLES).
LABELS = {1: "issuer", 2: "compliance", 3: "merchant", 4: "employer", 6: "c6", 7: "c7", 8: "c8",
          9: "c9"}  # fmt: skip


@dataclass
class CreditStack:
    node: NodeProcess
    gateway: Service
    db: str
    store: FileKeyStore

    def wallet(self, index: int) -> Wallet:
        return Wallet(self.store, LABELS[index], self.node.url)

    def token(self, index: int) -> WalletToken:
        return self.wallet(index).wallet_token(TOKEN)

    def points(self, index: int) -> Points:
        return Points(self.wallet(index))

    def key(self, role: str, account: str | None = None) -> str:
        return make_key(self.db, role, account)

    def request(self, method: str, path: str, key: str, body: object = None) -> httpx.Response:
        return httpx.request(
            method,
            self.gateway.url + path,
            json=body,
            headers={"authorization": f"Bearer {key}"},
            timeout=60,
        )


@contextlib.contextmanager
def credit_stack(
    tmp: Path, node: NodeProcess, dev_accounts: list, gateway_args: tuple[str, ...] = ()
) -> Iterator[CreditStack]:
    """The card simulator and a gateway on a throwaway PostgreSQL cluster, for `node`."""
    postgres = PostgresCluster().start()
    port = free_port()
    sim = simulator(tmp, port).start()
    keys = write_keys(tmp / "keys", dev_accounts, LABELS)
    db = postgres.create_database()
    gw = gateway(tmp, port, node.url, sim.url, keys, db, node_api_key(node.url, node.datadir))
    gw.args += list(gateway_args)
    try:
        gw.start()
        yield CreditStack(node, gw, db, FileKeyStore(keys, PASSWORD, scrypt_n=SCRYPT_N))
    finally:
        gw.stop()
        sim.stop()
        postgres.stop()
