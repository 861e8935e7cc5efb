"""Durability of a real node's LevelDB datadir across clean stops, kill -9 and wrong genesis.

A block is committed as one atomic LevelDB batch (header, body, receipts, state and the new
`HEAD`), so whatever a client has seen — a receipt — must survive any crash, and a restarted
node must carry on from exactly the head it had committed. The pool is journaled
(`node.txpool.journal`): a transaction a client was answered for is mined after a crash
without being sent again (tests/test_txpool_journal.py has the journal's own tests).
"""

from __future__ import annotations

import itertools
import math
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_typing import HexStr
from eth_utils import to_checksum_address

from contracts import load_artifact
from node.chain.genesis import dev_genesis
from tests.conftest import REPO, NodeProcess, RpcFailure, free_port

CHAIN_ID = 1337
DEV_BALANCE = 10_000 * 10**18
NodeFactory = Callable[..., NodeProcess]


class Rpc:
    """JSON-RPC over one kept-alive HTTP connection; `batch` sends many calls in one POST."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout)

    def __call__(self, method: str, params: list | None = None) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        answer = self.http.post("/", json=body).json()
        if "error" in answer:
            raise RpcFailure(answer["error"])
        return answer["result"]

    def batch(self, method: str, params_list: list[list]) -> list[Any]:
        """Results in order; an error item is returned as an `RpcFailure` instead of raised."""
        if not params_list:
            return []
        body = [
            {"jsonrpc": "2.0", "id": index, "method": method, "params": params}
            for index, params in enumerate(params_list)
        ]
        answers = sorted(self.http.post("/", json=body).json(), key=lambda a: a["id"])
        assert [a["id"] for a in answers] == list(range(len(params_list)))
        return [RpcFailure(a["error"]) if "error" in a else a["result"] for a in answers]

    def close(self) -> None:
        self.http.close()


def signed_transfer(account: LocalAccount, nonce: int, to: str, value: int) -> tuple[str, str]:
    """(hash, raw hex) of an EIP-1559 transfer at zero fees."""
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": nonce,
            "to": HexStr(to),
            "value": value,
            "gas": 21_000,
            "maxFeePerGas": 0,
            "maxPriorityFeePerGas": 0,
        }
    )
    return "0x" + signed.hash.hex().removeprefix("0x"), "0x" + signed.raw_transaction.hex()


def wait_receipts(rpc: Rpc, hashes: list[str], timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        receipts = rpc.batch("eth_getTransactionReceipt", [[h] for h in hashes])
        if all(isinstance(r, dict) for r in receipts):
            return receipts
        assert time.monotonic() < deadline, "transactions did not mine"
        time.sleep(0.1)


def block(rpc: Rpc, number: int | str) -> dict:
    tag = hex(number) if isinstance(number, int) else number
    found = rpc("eth_getBlockByNumber", [tag, False])
    assert isinstance(found, dict), f"no block {tag}"
    return found


def assert_linked_chain(rpc: Rpc, head: dict) -> list[dict]:
    """Blocks 0..head by number, each the parent of the next; returns them."""
    blocks = rpc.batch(
        "eth_getBlockByNumber", [[hex(n), False] for n in range(int(head["number"], 16) + 1)]
    )
    assert blocks[-1]["hash"] == head["hash"]
    for parent, child in itertools.pairwise(blocks):
        assert child["parentHash"] == parent["hash"]
        assert int(child["number"], 16) == int(parent["number"], 16) + 1
    return blocks


def restart(node_factory: NodeFactory, old: NodeProcess) -> NodeProcess:
    """A new node process on the same datadir (fresh ports)."""
    return node_factory(datadir=old.datadir)


# --- clean stop ---------------------------------------------------------------------------------


def test_clean_stop_and_restart_keeps_the_chain(
    node_factory: NodeFactory, dev_accounts: list
) -> None:
    node = node_factory()
    rpc = Rpc(node.url)
    alice, bob = dev_accounts[1], dev_accounts[2]
    sinks = [to_checksum_address(f"0x{index:02x}" + "ab" * 19) for index in range(3)]

    # a contract with storage and logs, then two blocks of transfers
    artifact = load_artifact("Probe")
    deploy = alice.sign_transaction(
        {
            "chainId": CHAIN_ID,
            "nonce": 0,
            "gas": 2_000_000,
            "gasPrice": 0,
            "data": artifact["bytecode"],
        }
    )
    (deployed,) = wait_receipts(
        rpc, [rpc("eth_sendRawTransaction", ["0x" + deploy.raw_transaction.hex()])]
    )
    probe = to_checksum_address(deployed["contractAddress"])
    poke = alice.sign_transaction(
        {
            "chainId": CHAIN_ID,
            "nonce": 1,
            "gas": 100_000,
            "gasPrice": 0,
            "to": probe,
            "data": _poke_input(77),
        }
    )
    hashes = [rpc("eth_sendRawTransaction", ["0x" + poke.raw_transaction.hex()])]
    for nonce in range(4):
        tx_hash, raw = signed_transfer(bob, nonce, sinks[nonce % 3], 10**18 + nonce)
        assert rpc("eth_sendRawTransaction", [raw]) == tx_hash
        hashes.append(tx_hash)
    wait_receipts(rpc, hashes)
    for nonce in range(2, 4):
        tx_hash, raw = signed_transfer(alice, nonce, sinks[nonce % 3], 5 * 10**17)
        assert rpc("eth_sendRawTransaction", [raw]) == tx_hash
        hashes.append(tx_hash)
    hashes.insert(0, deployed["transactionHash"])
    receipts = wait_receipts(rpc, hashes)
    assert all(r["status"] == "0x1" for r in receipts)
    assert receipts[1]["logs"], "poke emits Poked"

    head = block(rpc, "latest")
    assert int(head["number"], 16) >= 3
    blocks = assert_linked_chain(rpc, head)
    addresses = [alice.address, bob.address, probe, *sinks]
    balances = rpc.batch("eth_getBalance", [[a, "latest"] for a in addresses])
    nonces = rpc.batch("eth_getTransactionCount", [[a, "latest"] for a in addresses])
    transactions = rpc.batch("eth_getTransactionByHash", [[h] for h in hashes])
    stored = rpc("eth_getStorageAt", [probe, "0x0", "latest"])
    assert int(stored, 16) == 77
    rpc.close()

    assert node.stop() == 0
    assert "stopped cleanly" in node.log_text()

    again = restart(node_factory, node)
    rpc = Rpc(again.url)
    assert block(rpc, "latest") == head
    assert rpc.batch("eth_getBlockByNumber", [[b["number"], False] for b in blocks]) == blocks
    assert rpc.batch("eth_getBalance", [[a, "latest"] for a in addresses]) == balances
    assert rpc.batch("eth_getTransactionCount", [[a, "latest"] for a in addresses]) == nonces
    assert rpc.batch("eth_getTransactionReceipt", [[h] for h in hashes]) == receipts
    assert rpc.batch("eth_getTransactionByHash", [[h] for h in hashes]) == transactions
    assert rpc("eth_getStorageAt", [probe, "0x0", "latest"]) == stored
    assert rpc("eth_getCode", [probe, "latest"]) == artifact["deployedBytecode"]

    # the chain continues from the same head
    tx_hash, raw = signed_transfer(bob, 4, sinks[0], 1)
    assert rpc("eth_sendRawTransaction", [raw]) == tx_hash
    (receipt,) = wait_receipts(rpc, [tx_hash])
    assert int(receipt["blockNumber"], 16) == int(head["number"], 16) + 1
    assert block(rpc, receipt["blockNumber"])["parentHash"] == head["hash"]
    rpc.close()


def _poke_input(value: int) -> str:
    return "0x" + keccak(b"poke(uint256)")[:4].hex() + value.to_bytes(32, "big").hex()


# --- kill -9 (and SIGTERM) while transactions stream in -------------------------------------


@dataclass
class Stream:
    """A client thread sending pre-signed transfers at a steady pace and polling receipts.

    `seen` holds every receipt the client has observed (by tx hash); it stops at the first
    transport error, which is how it notices the node has died.
    """

    url: str
    txs: list[tuple[str, str]]  # (hash, raw) in send order
    per_tick: int = 6
    tick: float = 0.1
    sent: list[str] = field(default_factory=list)
    seen: dict[str, dict] = field(default_factory=dict)
    finished_sending: bool = False
    failure: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rpc = Rpc(self.url, timeout=10)
        try:
            position = 0
            while not self.stop.is_set():
                chunk = self.txs[position : position + self.per_tick]
                results = rpc.batch("eth_sendRawTransaction", [[raw] for _, raw in chunk])
                for (tx_hash, _), outcome in zip(chunk, results, strict=True):
                    assert outcome == tx_hash, outcome
                    self.sent.append(tx_hash)
                position += len(chunk)
                self.finished_sending = position >= len(self.txs)
                waiting = [h for h in self.sent if h not in self.seen]
                receipts = rpc.batch("eth_getTransactionReceipt", [[h] for h in waiting])
                for tx_hash, receipt in zip(waiting, receipts, strict=True):
                    if isinstance(receipt, dict):
                        self.seen[tx_hash] = receipt
                time.sleep(self.tick)
        except (httpx.HTTPError, ValueError):
            pass  # the node is gone (ValueError: a cut-off body that is not JSON)
        except BaseException as exc:  # reported by the test
            self.failure = exc
        finally:
            rpc.close()


@pytest.mark.parametrize(
    ("after_receipts", "phase", "stop_signal"),
    [
        pytest.param(1, 0.5, signal.SIGKILL, id="kill9-idle-with-pooled-txs"),
        pytest.param(60, 0.01, signal.SIGKILL, id="kill9-while-executing"),
        pytest.param(120, 0.035, signal.SIGKILL, id="kill9-around-commit"),
        pytest.param(60, 0.01, signal.SIGTERM, id="sigterm-while-executing"),
    ],
)
def test_stop_during_stream_keeps_every_seen_receipt(
    node_factory: NodeFactory,
    dev_accounts: list,
    after_receipts: int,
    phase: float,
    stop_signal: signal.Signals,
) -> None:
    """Stop once `after_receipts` receipts were seen, at `phase` seconds into a wall-clock second.

    Block timestamps are whole seconds and a block is due one period after its parent's, so
    the engine starts building right at a second boundary and seals ~30-50 ms later (for the
    ~60 transfers a block holds here): phase 0.01 lands in execution, 0.035 around the commit,
    0.5 between blocks while transactions wait in the pool. SIGTERM there must let the block
    in progress finish and exit 0; SIGKILL leaves whatever the last atomic batch left.
    """
    senders = dev_accounts[1:7]
    per_sender = 50
    sinks = [to_checksum_address(f"0x{index + 1:02x}" + "cd" * 19) for index in range(len(senders))]
    value_of: dict[str, int] = {}
    plan: dict[str, tuple[int, int]] = {}  # hash -> (sender index, nonce)
    txs = []
    for nonce in range(per_sender):
        for index, sender in enumerate(senders):
            value = 10**15 * (index + 1) + nonce
            tx_hash, raw = signed_transfer(sender, nonce, sinks[index], value)
            txs.append((tx_hash, raw))
            value_of[tx_hash] = value
            plan[tx_hash] = (index, nonce)

    node = node_factory()
    stream = Stream(node.url, txs)
    client = threading.Thread(target=stream.run, daemon=True)
    client.start()
    deadline = time.monotonic() + 30
    while len(stream.seen) < after_receipts:
        assert stream.failure is None, stream.failure
        assert client.is_alive(), "the stream ended before the kill"
        assert time.monotonic() < deadline, f"only {len(stream.seen)} receipts seen"
        time.sleep(0.01)
    now = time.time()
    time.sleep(math.floor(now) + 1 + phase - now)
    returncode = node.stop(stop_signal)
    assert returncode == (0 if stop_signal == signal.SIGTERM else -signal.SIGKILL), node.log_text()
    client.join(timeout=20)
    stream.stop.set()
    assert not client.is_alive()
    assert stream.failure is None, stream.failure
    seen = dict(stream.seen)
    assert len(seen) >= after_receipts
    assert len(seen) < len(stream.sent) or not stream.finished_sending, "killed after the stream"

    again = restart(node_factory, node)
    rpc = Rpc(again.url)
    try:
        # every transaction the client was answered for is mined without being sent again:
        # those the stop left in the pool came back from its journal; then the pool is empty
        wait_receipts(rpc, stream.sent)
        wait_until_pool_empty(rpc, senders)
        head = block(rpc, "latest")
        head_number = int(head["number"], 16)
        blocks = assert_linked_chain(rpc, head)

        # everything a client saw is still there, byte for byte
        hashes = list(seen)
        assert rpc.batch("eth_getTransactionReceipt", [[h] for h in hashes]) == [
            seen[h] for h in hashes
        ]
        for receipt in seen.values():
            assert int(receipt["blockNumber"], 16) <= head_number
            assert blocks[int(receipt["blockNumber"], 16)]["hash"] == receipt["blockHash"]

        # what is mined is a nonce prefix per sender, listed by the blocks, and paid for
        all_hashes = [h for h, _ in txs]
        receipts = dict(
            zip(
                all_hashes,
                rpc.batch("eth_getTransactionReceipt", [[h] for h in all_hashes]),
                strict=True,
            )
        )
        mined = {h for h, r in receipts.items() if isinstance(r, dict)}
        assert set(seen) <= mined
        in_blocks = [h for b in blocks for h in b["transactions"]]
        assert sorted(in_blocks) == sorted(mined)
        for h in mined:
            assert receipts[h]["status"] == "0x1"
        mined_nonces = [
            sorted(plan[h][1] for h in mined if plan[h][0] == i) for i in range(len(senders))
        ]
        for nonces in mined_nonces:
            assert nonces == list(range(len(nonces)))
        counts = rpc.batch("eth_getTransactionCount", [[s.address, "latest"] for s in senders])
        assert counts == [hex(len(n)) for n in mined_nonces]
        pooled = rpc.batch("eth_getTransactionByHash", [[h] for h in all_hashes if h not in mined])
        assert pooled == [None] * (len(all_hashes) - len(mined)), "unmined yet still pooled"
        _assert_balances(rpc, senders, sinks, {h: value_of[h] for h in mined}, plan)

        # the chain continues on top of the recovered head ...
        unmined = [(h, raw) for h, raw in txs if h not in mined]
        assert unmined, "the kill came after every transaction was mined"
        first_hash, first_raw = unmined[0]
        assert rpc("eth_sendRawTransaction", [first_raw]) == first_hash
        (receipt,) = wait_receipts(rpc, [first_hash])
        assert int(receipt["blockNumber"], 16) == head_number + 1
        assert block(rpc, receipt["blockNumber"])["parentHash"] == head["hash"]

        # ... and every transaction never answered can be sent, after which all 300 count
        rest = unmined[1:]
        outcomes = rpc.batch("eth_sendRawTransaction", [[raw] for _, raw in rest])
        assert outcomes == [h for h, _ in rest]
        wait_receipts(rpc, [h for h, _ in rest])
        _assert_balances(rpc, senders, sinks, value_of, plan)
    finally:
        rpc.close()


def wait_until_pool_empty(rpc: Rpc, senders: list[LocalAccount], timeout: float = 30) -> None:
    """Until every sender's pending nonce is its mined one: nothing of theirs is pooled."""
    deadline = time.monotonic() + timeout
    while True:
        pending = rpc.batch("eth_getTransactionCount", [[s.address, "pending"] for s in senders])
        latest = rpc.batch("eth_getTransactionCount", [[s.address, "latest"] for s in senders])
        if pending == latest:
            return
        assert time.monotonic() < deadline, "the pool did not drain"
        time.sleep(0.1)


def _assert_balances(
    rpc: Rpc,
    senders: list[LocalAccount],
    sinks: Sequence[str],
    mined_values: dict[str, int],
    plan: dict[str, tuple[int, int]],
) -> None:
    """At zero gas price a sender loses, and its sink gains, exactly the mined values."""
    paid = [0] * len(senders)
    for tx_hash, value in mined_values.items():
        paid[plan[tx_hash][0]] += value
    sender_balances = rpc.batch("eth_getBalance", [[s.address, "latest"] for s in senders])
    sink_balances = rpc.batch("eth_getBalance", [[s, "latest"] for s in sinks])
    assert [int(b, 16) for b in sender_balances] == [DEV_BALANCE - p for p in paid]
    assert [int(b, 16) for b in sink_balances] == paid


# --- another chain's genesis --------------------------------------------------------------------


@pytest.mark.parametrize("chain_id", [999, CHAIN_ID])
def test_datadir_of_another_genesis_is_refused(
    node_factory: NodeFactory, dev_accounts: list, tmp_path: Path, chain_id: int
) -> None:
    """`run --genesis` on a datadir holding another chain exits non-zero and changes nothing.

    With chain id 1337 the other genesis differs from the dev chain only in its validator.
    """
    node = node_factory()
    rpc = Rpc(node.url)
    tx_hash, raw = signed_transfer(dev_accounts[1], 0, dev_accounts[2].address, 1)
    rpc("eth_sendRawTransaction", [raw])
    wait_receipts(rpc, [tx_hash])
    head = block(rpc, "latest")
    rpc.close()
    assert node.stop() == 0

    other = tmp_path / "other-genesis.json"
    other.write_text(dev_genesis(b"\x22" * 20, chain_id=chain_id).dated_now().dumps())
    refused = subprocess.run(
        [sys.executable, "-m", "node.cli", "run", "--genesis", str(other),
         "--datadir", str(node.datadir), "--rpc-port", str(free_port()),
         "--ws-port", str(free_port()), "--allow-dev-keys",
         "--allow-unpermissioned", "--insecure-plaintext-key"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "the datadir holds a different chain than --genesis describes" in refused.stderr, (
        refused.stderr[-2000:]
    )

    again = restart(node_factory, node)
    rpc = Rpc(again.url)
    assert block(rpc, "latest") == head
    assert rpc("eth_chainId") == hex(CHAIN_ID)
    rpc.close()
