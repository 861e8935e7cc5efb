"""Stateless admission in worker processes (`node.txpool.prechecks`, `--txpool-workers`).

A JSON-RPC batch of raw transactions has its decoding and sender recovery done in other
processes, then is admitted in order on the loop. Nothing a client sees may change: the same
batch gets the same answers, item by item, from a node checking on its loop
(`--txpool-workers 0`, the old path) and from one using workers. The workers are real
processes here, and so are the nodes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
from eth_account import Account
from eth_hash.auto import keccak

from node.txpool.admission import AdmissionRules, decode_checked
from node.txpool.pool import PoolConfig, TxPool
from node.txpool.prechecks import Prechecks
from tests.conftest import NodeProcess, free_port
from tests.test_rpc_rejections import (
    CHAIN_ID,
    MAX_NONCE_GAP,
    flipped_r,
    legacy_transfer,
    transfer,
    with_signature,
)

WORKERS_UP = "transaction pre-check workers up"


class FundedState:
    """Every account holds 10**24 wei at nonce 0 (the pool's `AccountStateReader`)."""

    def get_nonce(self, address: bytes) -> int:
        return 0

    def get_balance(self, address: bytes) -> int:
        return 10**24

    def get_code(self, address: bytes) -> bytes:
        return b""


def mixed_raws(dev_accounts: list) -> list[bytes]:
    """Good transactions and every kind of stateless refusal, interleaved."""
    alice, bob = dev_accounts[0], dev_accounts[1]
    good = transfer(alice, 0)
    return [
        good,
        transfer(alice, 1),
        good,  # already known
        b"\x02\xc0",  # malformed
        with_signature(transfer(bob, 0), r=flipped_r(transfer(bob, 0), on_curve=False)),
        with_signature(transfer(bob, 0), r=flipped_r(transfer(bob, 0), on_curve=True)),
        transfer(bob, 0, chainId=CHAIN_ID + 1),
        legacy_transfer(bob, 0, chain_id=None),  # unprotected
        transfer(bob, 0, gas=20_000),  # intrinsic gas too low
        transfer(bob, 0, maxPriorityFeePerGas=2, maxFeePerGas=1),
        transfer(bob, 0),
        transfer(bob, 0, value=2),  # same nonce, no price bump: underpriced replacement
        transfer(bob, MAX_NONCE_GAP + 5),  # nonce too high
        legacy_transfer(alice, 2),
        transfer(Account.create(), 0, value=10),  # insufficient funds
    ]


def test_workers_answer_as_decode_checked(dev_accounts: list) -> None:
    """Each good transaction comes back as `decode_checked` makes it, sender already
    recovered; each refused one as None; and the pool admits both alike."""
    rules = AdmissionRules(chain_id=CHAIN_ID, block_gas_limit=60_000_000)
    raws = mixed_raws(dev_accounts)

    async def run() -> list[Any]:
        prechecks = Prechecks(workers=1, chunk=4)
        try:
            assert prechecks.check(raws, rules) is None  # not up yet: the caller checks
            await _until_ready(prechecks)
            started = prechecks.check(raws, rules)
            assert started is not None
            return [await precheck.result() for precheck in started]
        finally:
            prechecks.close()

    results = asyncio.run(run())
    for raw, checked in zip(raws, results, strict=True):
        try:
            expected = decode_checked(raw, rules)
        except Exception:
            assert checked is None
            continue
        assert checked is not None and checked.rules == rules
        assert "sender" in checked.ptx.tx.__dict__  # recovered in the worker, cached
        assert checked.ptx == expected

    inline = TxPool(PoolConfig(), rules)
    prechecked = TxPool(PoolConfig(), rules)
    for raw, checked in zip(raws, results, strict=True):
        assert _outcome(inline, raw, None) == _outcome(prechecked, raw, checked)
    assert list(inline.transactions()) == list(prechecked.transactions())


def _is_worker(process: psutil.Process) -> bool:
    """A live multiprocessing worker; an earlier test's exited child (a zombie not yet reaped
    by this process) has no command line to read."""
    try:
        return "spawn_main" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def test_a_dead_worker_is_replaced(dev_accounts: list) -> None:
    """A worker killed under the node costs nothing but time: its chunks are checked on the
    loop (their answers are None), and the next batch finds a new worker."""
    rules = AdmissionRules(chain_id=CHAIN_ID, block_gas_limit=60_000_000)
    raws = [transfer(dev_accounts[0], nonce) for nonce in range(3)]

    async def run() -> list[Any]:
        prechecks = Prechecks(workers=1)
        try:
            prechecks.start()
            await _until_ready(prechecks)
            workers = [child for child in psutil.Process().children() if _is_worker(child)]
            assert len(workers) == 1
            workers[0].kill()
            workers[0].wait(10)
            deadline = time.monotonic() + 60
            while True:
                assert time.monotonic() < deadline, "no new worker"
                started = prechecks.check(raws, rules)
                if started is not None:
                    results = [await precheck.result() for precheck in started]
                    if all(result is not None for result in results):
                        return results
                    assert all(result is None for result in results)
                await asyncio.sleep(0.1)
        finally:
            prechecks.close()

    results = asyncio.run(run())
    assert [result.ptx for result in results] == [decode_checked(raw, rules) for raw in raws]


async def _until_ready(prechecks: Prechecks) -> None:
    deadline = time.monotonic() + 60
    while not prechecks.ready:
        assert time.monotonic() < deadline, "workers did not start"
        await asyncio.sleep(0.05)


def _outcome(pool: TxPool, raw: bytes, checked: Any) -> str:
    try:
        return pool.add(raw, FundedState(), checked=checked).hash.hex()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture
def frozen_pair(tmp_path: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """Two dev nodes with hour-long blocks (so at most block 1, at once, as genesis is dated 0):
    one checks transactions on its loop, the other in one worker process. The first also runs
    with the smallest LevelDB cache `--db-cache-mib` allows, which must change no answer."""
    nodes = [
        NodeProcess(tmp_path / name, free_port(), free_port(), block_period=3600, extra_args=args)
        for name, args in (
            ("loop", ("--txpool-workers", "0", "--db-cache-mib", "8")),
            ("workers", ("--txpool-workers", "1")),
        )
    ]
    try:
        for node in nodes:
            node.start()
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            if node.process is not None:
                node.stop()


def batch(url: str, items: list[Any]) -> list[Any]:
    body = [
        {"jsonrpc": "2.0", "id": index, "method": "eth_sendRawTransaction", "params": params}
        for index, params in enumerate(items)
    ]
    answer = httpx.post(url, json=body, timeout=30).json()
    assert isinstance(answer, list)
    return answer


def test_batch_gets_the_same_answers_with_workers(
    frozen_pair: tuple[NodeProcess, NodeProcess], dev_accounts: list
) -> None:
    loop_node, worker_node = frozen_pair
    warm_up = [["0x00"], ["0x01"]]  # refused alike; starts the workers
    assert batch(loop_node.url, warm_up) == batch(worker_node.url, warm_up)
    deadline = time.monotonic() + 60
    while WORKERS_UP not in worker_node.log_text():
        assert time.monotonic() < deadline, worker_node.log_text()[-2000:]
        time.sleep(0.1)
    assert WORKERS_UP not in loop_node.log_text()

    raws = mixed_raws(dev_accounts)
    items: list[Any] = [["0x" + raw.hex()] for raw in raws]
    items.insert(3, [])  # missing param
    items.insert(5, ["0x" + raws[0].hex(), "extra"])  # too many params
    answers = batch(worker_node.url, items)
    assert answers == batch(loop_node.url, items)

    assert answers[0]["result"] == "0x" + keccak(raws[0]).hex()
    assert answers[2]["error"] == {"code": -32000, "message": "already known"}
    accepted = [answer["result"] for answer in answers if "result" in answer]
    assert len(accepted) == 4  # alice 0, 1, 2 and bob 0
    for tx_hash in accepted:
        found = [
            httpx.post(
                node.url,
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "eth_getTransactionByHash",
                    "params": [tx_hash],
                },
                timeout=30,
            ).json()["result"]
            for node in frozen_pair
        ]
        fields = ("hash", "from", "nonce", "to", "value", "input", "r", "s")
        loop_tx, worker_tx = ({f: tx[f] for f in fields} for tx in found)
        assert loop_tx == worker_tx and loop_tx["hash"] == tx_hash
    assert "pre-check worker failed" not in worker_node.log_text()


def test_workers_end_with_the_node(frozen_pair: tuple[NodeProcess, NodeProcess]) -> None:
    """Workers of a node killed with SIGKILL do not outlive it."""
    _, worker_node = frozen_pair
    assert worker_node.process is not None
    batch(worker_node.url, [["0x00"], ["0x01"]])  # a batch starts the workers
    deadline = time.monotonic() + 60
    while WORKERS_UP not in worker_node.log_text():
        assert time.monotonic() < deadline, worker_node.log_text()[-2000:]
        time.sleep(0.1)
    children = psutil.Process(worker_node.process.pid).children(recursive=True)
    assert children
    worker_node.kill9()
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, alive
