"""Shared pieces for the REST API tests (no tests here): an HTTP client with credentials, API
keys made through the admin API, sign-in with Ethereum, and batches of real signed
transactions sent over JSON-RPC and waited for."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from node.domain.contracts import BATCH_PAYOUT, ESCROW, WALLET_TOKEN
from tests.conftest import NodeProcess, free_port

CHAIN_ID = 1337
TOKEN = "0x" + WALLET_TOKEN.hex()
ESCROW_ADDRESS = "0x" + ESCROW.hex()
BATCH_ADDRESS = "0x" + BATCH_PAYOUT.hex()


UNLIMITED = (
    "--api-rate-limit",
    "1000000/minute",
    "--api-address-rate-limit",
    "1000000/minute",
    "--api-auth-failure-limit",
    "1000000/minute",
)
"""Options for a node every test client (all on 127.0.0.1) may hammer and fail to sign in to."""


def start_node(directory: Path, *extra_args: str) -> NodeProcess:
    """A dev node whose REST API lets tests hammer it (pages of 7 over thousands of rows, the
    role matrix's garbage credentials); the limits themselves are tested on their own nodes."""
    node = NodeProcess(
        directory / "node", free_port(), free_port(), extra_args=(*UNLIMITED, *extra_args)
    )
    return node.start()


def admin_key(node: NodeProcess) -> str:
    return (node.datadir / "api-admin.key").read_text().strip()


class Api:
    """httpx against a node's REST API, with one credential (or none), from 127.0.0.1 or from
    another loopback address (`source`, e.g. 127.0.0.2: Linux routes all of 127/8 to lo), so
    one machine's tests can be several clients to the node's per-address limits."""

    def __init__(
        self, node: NodeProcess, credential: str | None = None, source: str | None = None
    ) -> None:
        self.node = node
        self.credential = credential
        self.source = source
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        transport = httpx.HTTPTransport(local_address=source) if source else None
        self.http = httpx.Client(
            base_url=node.url, headers=headers, timeout=60, transport=transport
        )

    def as_(self, credential: str | None) -> Api:
        """The same client with another credential."""
        return Api(self.node, credential, self.source)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get("/api/v1" + path, params=params)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post("/api/v1" + path, json=body)

    def put(self, path: str, body: Any) -> httpx.Response:
        return self.http.put("/api/v1" + path, json=body)

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete("/api/v1" + path)

    def ok(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def all_pages(self, path: str, limit: int = 100, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            extra: dict[str, Any] = {"cursor": cursor} if cursor else {}
            body = self.ok(path, limit=limit, **params, **extra)
            items += body["items"]
            cursor = body["next_cursor"]
            if cursor is None:
                return items

    def new_key(self, role: str, addresses: Sequence[str] = (), label: str = "test") -> str:
        response = self.post(
            "/admin/api-keys", {"role": role, "label": label, "addresses": list(addresses)}
        )
        assert response.status_code == 201, response.text
        return response.json()["key"]


def sign_in(api: Api, account: LocalAccount) -> dict[str, Any]:
    """Sign in with Ethereum end to end; the token answer."""
    challenge = api.post("/auth/challenge", {"address": account.address})
    assert challenge.status_code == 200, challenge.text
    message = challenge.json()["message"]
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    response = api.post("/auth/token", {"message": message, "signature": "0x" + signature})
    assert response.status_code == 200, response.text
    return response.json()


def selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


def call_data(signature: str, types: list[str], values: list[Any]) -> bytes:
    return selector(signature) + encode(types, values)


class Sender:
    """Signs transactions with locally tracked nonces and sends them in JSON-RPC batches."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.nonces: dict[str, int] = {}
        self.http = httpx.Client(timeout=120)

    def nonce(self, account: LocalAccount) -> int:
        if account.address not in self.nonces:
            self.nonces[account.address] = int(
                str(self.node.rpc("eth_getTransactionCount", [account.address, "pending"])), 16
            )
        value = self.nonces[account.address]
        self.nonces[account.address] = value + 1
        return value

    def sign(
        self,
        account: LocalAccount,
        to: str,
        value: int = 0,
        data: bytes = b"",
        gas: int = 21_000,
    ) -> bytes:
        tx: dict[str, Any] = {
            "chainId": CHAIN_ID,
            "nonce": self.nonce(account),
            "gasPrice": 0,
            "gas": gas,
            "to": to_checksum_address(to),
            "value": value,
            "data": data,
        }
        return bytes(account.sign_transaction(tx).raw_transaction)

    def call(self, account: LocalAccount, to: str, data: bytes, gas: int = 1_500_000) -> bytes:
        return self.sign(account, to, 0, data, gas)

    def send(self, raws: Iterable[bytes], batch: int = 500) -> list[str]:
        """Send raw transactions in batches; their hashes, in order."""
        raws = list(raws)
        hashes: list[str] = []
        for start in range(0, len(raws), batch):
            part = raws[start : start + batch]
            body = [
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "eth_sendRawTransaction",
                    "params": ["0x" + raw.hex()],
                }
                for i, raw in enumerate(part)
            ]
            answers = sorted(self.http.post(self.node.url, json=body).json(), key=lambda a: a["id"])
            for answer in answers:
                assert "result" in answer, answer
                hashes.append(answer["result"])
        return hashes

    def wait(self, hashes: Sequence[str], timeout: float = 120) -> list[dict[str, Any]]:
        """Receipts of every hash (each must have succeeded)."""
        receipts: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(receipts) < len(hashes):
            assert time.monotonic() < deadline, f"{len(hashes) - len(receipts)} not mined"
            missing = [h for h in hashes if h not in receipts][:1000]
            body = [
                {"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionReceipt", "params": [h]}
                for i, h in enumerate(missing)
            ]
            for answer in self.http.post(self.node.url, json=body).json():
                if answer.get("result"):
                    receipts[missing[answer["id"]]] = answer["result"]
            if len(receipts) < len(hashes):
                time.sleep(0.3)
        ordered = [receipts[h] for h in hashes]
        failed = [r for r in ordered if r["status"] != "0x1"]
        assert not failed, failed[0]
        return ordered

    def run(self, raws: Iterable[bytes]) -> list[dict[str, Any]]:
        return self.wait(self.send(raws))


def fund(sender: Sender, funder: LocalAccount, count: int, value: int = 10**21) -> list:
    """`count` fresh accounts, each funded by `funder` (mined)."""
    accounts = [Account.create() for _ in range(count)]
    sender.run(sender.sign(funder, a.address, value) for a in accounts)
    return accounts


def ref(n: int) -> bytes:
    return n.to_bytes(32, "big")


def mint(sender: Sender, issuer: LocalAccount, to: str, amount: int, n: int) -> bytes:
    return sender.call(
        issuer,
        TOKEN,
        call_data(
            "mint(address,uint256,bytes32)", ["address", "uint256", "bytes32"], [to, amount, ref(n)]
        ),
    )


def token_transfer(sender: Sender, payer: LocalAccount, to: str, amount: int) -> bytes:
    data = call_data("transfer(address,uint256)", ["address", "uint256"], [to, amount])
    return sender.call(payer, TOKEN, data, gas=300_000)


def token_transfer_external(
    sender: Sender, payer: LocalAccount, to: str, amount: int, kind: int = 1
) -> bytes:
    data = call_data(
        "transferExternal(address,uint256,uint8)",
        ["address", "uint256", "uint8"],
        [to, amount, kind],
    )
    return sender.call(payer, TOKEN, data, gas=300_000)


def approve(sender: Sender, owner: LocalAccount, spender: str, amount: int) -> bytes:
    data = call_data("approve(address,uint256)", ["address", "uint256"], [spender, amount])
    return sender.call(owner, TOKEN, data, gas=300_000)


def open_escrow(
    sender: Sender,
    payer: LocalAccount,
    payee: str,
    arbiter: str,
    milestones: list[int],
    deadline: int,
    n: int,
) -> bytes:
    data = call_data(
        "open(address,address,uint256[],uint64,bytes32)",
        ["address", "address", "uint256[]", "uint64", "bytes32"],
        [payee, arbiter, milestones, deadline, ref(n)],
    )
    return sender.call(payer, ESCROW_ADDRESS, data)


def release(sender: Sender, payer: LocalAccount, deal: int, index: int) -> bytes:
    data = call_data("release(uint256,uint256)", ["uint256", "uint256"], [deal, index])
    return sender.call(payer, ESCROW_ADDRESS, data)


def batch_pay(
    sender: Sender, payer: LocalAccount, payees: list[str], amounts: list[int], n: int
) -> bytes:
    data = call_data(
        "pay(address[],uint256[],bytes32)",
        ["address[]", "uint256[]", "bytes32"],
        [payees, amounts, ref(n)],
    )
    return sender.call(payer, BATCH_ADDRESS, data)
