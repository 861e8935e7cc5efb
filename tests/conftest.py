"""Shared fixtures: a real `tally dev` node process on free loopback ports, stopped after use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware

from node.ports import free_port

DEV_MNEMONIC = "test test test test test test test test test test test junk"
REPO = Path(__file__).resolve().parents[1]


@dataclass
class NodeProcess:
    """A `tally dev` node running as its own process over a LevelDB datadir; `admin_port`
    None runs it without the admin listener."""

    datadir: Path
    rpc_port: int
    ws_port: int
    block_period: int = 1
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    admin_port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def admin_token(self) -> str:
        return admin_token(self.datadir)

    def start(self, timeout: float = 30.0) -> NodeProcess:
        self.log_path = self.datadir.parent / f"{self.datadir.name}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "node.cli",
                "dev",
                "--datadir",
                str(self.datadir),
                "--rpc-port",
                str(self.rpc_port),
                "--ws-port",
                str(self.ws_port),
                "--block-period",
                str(self.block_period),
                "--admin-port",
                str(self.admin_port or 0),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited early:\n{self.log_text()}")
            try:
                if self.rpc("eth_chainId") is not None:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(f"node did not answer in {timeout}s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def rpc(self, method: str, params: list | None = None) -> Any:
        """One JSON-RPC call; returns the result or raises with the error object."""
        return rpc_call(self.url, method, params)

    def admin(self, method: str, params: list | None = None) -> Any:
        """One JSON-RPC call on the admin listener, with the node's admin token."""
        return rpc_call(self.admin_url, method, params, self.admin_token)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


def admin_token(datadir: Path) -> str:
    """The admin listener's bearer token, which the node writes into its datadir."""
    return (datadir / "admin-rpc.token").read_text().strip()


def rpc_call(url: str, method: str, params: list | None = None, token: str | None = None) -> Any:
    """One JSON-RPC call over HTTP (with a bearer token if given): the result, or RpcFailure."""
    response = httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
        headers={"Authorization": f"Bearer {token}"} if token else None,
        timeout=30,
    )
    body = response.json()
    if "error" in body:
        raise RpcFailure(body["error"])
    return body["result"]


class RpcFailure(Exception):
    def __init__(self, error: dict) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error
        self.code = error.get("code")
        self.message = error.get("message", "")


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """Start nodes on fresh datadirs (or given ones); every node is stopped at teardown."""
    started: list[NodeProcess] = []

    def start(
        datadir: Path | None = None, block_period: int = 1, extra_args: tuple[str, ...] = ()
    ) -> NodeProcess:
        node = NodeProcess(
            datadir or tmp_path / f"node{len(started)}",
            free_port(),
            free_port(),
            block_period,
            extra_args,
            admin_port=free_port(),
        )
        started.append(node)
        return node.start()

    yield start
    for node in started:
        if node.process is not None and node.process.poll() is None:
            node.stop()


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node for a whole test module (tests must not depend on each other's state)."""
    node = NodeProcess(
        tmp_path_factory.mktemp("shared") / "node", free_port(), free_port(), admin_port=free_port()
    )
    node.start()
    yield node
    node.stop()


def web3_for(url: str) -> Web3:
    """web3.py for a Tally node: QBFT headers carry validators and seals in extraData (as on
    Besu and GoQuorum), so web3.py needs its standard proof-of-authority middleware."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


@pytest.fixture(scope="module")
def w3(shared_node: NodeProcess) -> Web3:
    return web3_for(shared_node.url)


@pytest.fixture(scope="session")
def dev_accounts() -> list[LocalAccount]:
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(10)
    ]


def fresh_funded_account(w3: Web3, funder: LocalAccount, amount_wei: int = 10**20) -> LocalAccount:
    """A new account funded by `funder` (a dev account), so tests never share nonces."""
    account = Account.create()
    tx = funder.sign_transaction(
        {
            "to": account.address,
            "value": amount_wei,
            "gas": 21000,
            "gasPrice": 0,
            "nonce": w3.eth.get_transaction_count(funder.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
    )
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction), timeout=30)
    return account


os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
