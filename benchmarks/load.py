"""A steady load of signed transfers from the dev accounts, and a watcher of the chain's blocks.

Shared by `chaos.py` and `soak.py`. The sender is a client as a wallet gateway would be: it
signs transfers (legacy EIP-155, gas price 0, value 1 wei to a fresh address) from the ten dev
accounts in turn, keeps each account's nonce itself, and posts them in JSON-RPC batches to
whichever node of its list answers. A transaction counts as "given a hash" only when a node
answered with its hash; one no node answered is retried unchanged (same raw bytes) on the next
node, as a client does, so nonces never gap. It never resubmits a transaction once a hash was
given: whether the network keeps it is what is measured.

The watcher polls the nodes' heads and records, for every block it sees, when it first saw it
and which transactions it carried, so a run can say which hashes were receipted, the longest
wall-clock gap without a new block, and the time from an event to the next block.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

DEV_MNEMONIC = "test test test test test test test test test test test junk"
CHAIN_ID = 1337

Account.enable_unaudited_hdwallet_features()


def dev_accounts(count: int = 10) -> list[LocalAccount]:
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        for index in range(count)
    ]


def rpc(client: httpx.Client, url: str, method: str, params: list[Any] | None = None) -> Any:
    """One call; None when the node does not answer or answers an error."""
    try:
        body = client.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        ).json()
    except (httpx.HTTPError, ValueError):
        return None
    return body.get("result") if isinstance(body, dict) else None


class Sender(threading.Thread):
    """Signs and sends `rate` transfers a second until stopped (see the module docstring).

    `targets()` gives the node URLs to use right now, in preference order."""

    def __init__(self, targets: Callable[[], Sequence[str]], rate: float, batch: int = 50) -> None:
        super().__init__(daemon=True)
        self.targets = targets
        self.rate = rate
        self.batch = batch
        self.accounts = dev_accounts()
        self.nonces: dict[str, int] = {}
        self.recipient = Account.create().address
        self.given: dict[str, float] = {}
        """tx hash -> when a node answered with it."""
        self.refused: list[str] = []
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._turn = itertools.cycle(range(len(self.accounts)))
        self._pending: list[tuple[str, str]] = []

    def start_nonces(self, client: httpx.Client, url: str) -> None:
        for account in self.accounts:
            count = rpc(client, url, "eth_getTransactionCount", [account.address, "pending"])
            self.nonces[account.address] = int(count, 16)

    def _sign(self) -> tuple[str, str]:
        account = self.accounts[next(self._turn)]
        nonce = self.nonces[account.address]
        self.nonces[account.address] = nonce + 1
        signed = account.sign_transaction(
            {
                "chainId": CHAIN_ID,
                "nonce": nonce,
                "gasPrice": 0,
                "gas": 21000,
                "to": self.recipient,
                "value": 1,
            }
        )
        return "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()

    def hashes(self) -> dict[str, float]:
        with self._lock:
            return dict(self.given)

    def run(self) -> None:
        client = httpx.Client(timeout=30)
        started = time.monotonic()
        made = 0
        while not self.stop_event.is_set():
            due = int((time.monotonic() - started) * self.rate) - made
            if due <= 0 and not self._pending:
                time.sleep(0.02)
                continue
            while due > 0 and len(self._pending) < self.batch * 4:
                self._pending.append(self._sign())
                made += 1
                due -= 1
            if not self._send(client):
                time.sleep(0.2)  # nobody answered: wait, then the same bytes again
        client.close()

    def _send(self, client: httpx.Client) -> bool:
        """Send the pending transactions in batches; False if no node took the first one."""
        while self._pending:
            chunk = self._pending[: self.batch]
            answers = None
            for url in self.targets():
                answers = self._post(client, url, chunk)
                if answers is not None:
                    break
            if answers is None:
                return False
            del self._pending[: len(chunk)]
            now = time.monotonic()
            with self._lock:
                for (_, tx_hash), answer in zip(chunk, answers, strict=True):
                    if "result" in answer:
                        self.given[answer["result"]] = now
                    elif "already known" in str(answer.get("error")):
                        # an earlier post of these bytes reached a node after all (the
                        # client gave up waiting): the node holds it, as if it had answered
                        self.given.setdefault(tx_hash, now)
                    else:
                        self.refused.append(f"{tx_hash}: {answer.get('error')}")
        return True

    @staticmethod
    def _post(
        client: httpx.Client, url: str, chunk: list[tuple[str, str]]
    ) -> list[dict[str, Any]] | None:
        body = [
            {"jsonrpc": "2.0", "id": index, "method": "eth_sendRawTransaction", "params": [raw]}
            for index, (raw, _) in enumerate(chunk)
        ]
        try:
            answers = client.post(url, json=body).json()
        except (httpx.HTTPError, ValueError):
            return None
        if not isinstance(answers, list) or len(answers) != len(chunk):
            return None
        return sorted(answers, key=lambda answer: answer.get("id", 0))


@dataclass(eq=False)
class Watcher(threading.Thread):
    """Records when each block was first seen on any node and what it carried."""

    targets: Callable[[], Sequence[str]]
    interval: float = 0.1
    seen_at: dict[int, float] = field(default_factory=dict)
    included: set[str] = field(default_factory=set)
    stop_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    @property
    def height(self) -> int:
        return max(self.seen_at, default=0)

    def run(self) -> None:
        client = httpx.Client(timeout=3)
        while not self.stop_event.is_set():
            for url in self.targets():
                head = rpc(client, url, "eth_blockNumber")
                if head is None:
                    continue
                for number in range(self.height + 1, int(head, 16) + 1):
                    block = rpc(client, url, "eth_getBlockByNumber", [hex(number), False])
                    if block is None:
                        break
                    self.included.update(block["transactions"])
                    self.seen_at[number] = time.monotonic()
                break
            time.sleep(self.interval)
        client.close()

    def first_block_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first block seen after it (None: none yet)."""
        later = [seen for seen in self.seen_at.values() if seen > moment]
        return min(later) - moment if later else None

    def max_stall(self, start: float, end: float) -> float:
        """The longest wall-clock gap without a new block within [start, end]."""
        moments = sorted([start, end, *(t for t in self.seen_at.values() if start < t < end)])
        return max(b - a for a, b in itertools.pairwise(moments))
