"""The pool survives kill -9 (issue 12 point 6), on real node processes and real datadirs.

A client that was given a hash by eth_sendRawTransaction must see that transaction pending
after the node is killed and restarted, and then mined, without sending it again: the pool
journals what it admits and answers only once that is on disk (`node.txpool.journal`). The
dev node runs with a 30 s block period, so what was sent is still pending when it is killed
(bar what the first block took, which may come at once).
A torn journal tail is dropped, and journaled transactions that are no longer valid are
refused at start like any others.

On a network: a member node that is behind its peers (syncing) takes a transaction whose
nonce is valid at the network's head though far ahead of its own state, instead of refusing
it with "nonce too high"; and a transaction a member answered for while it had no peer, then
restored from its journal after a kill -9, reaches the validator once they connect.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Address
from eth_utils import to_checksum_address

from node import localnet
from node.txpool.admission import AdmissionRules
from node.txpool.journal import (
    COMPACT_FLOOR,
    JOURNAL_FILE,
    TxJournal,
    decode_records,
    encode_record,
)
from node.txpool.pool import PoolConfig, TxPool
from tests.conftest import NodeProcess, RpcFailure

# Runs alone, after the parallel tests (scripts/test.sh): kill -9 and restarts of localnets.
pytestmark = pytest.mark.serial

CHAIN_ID = 1337
SINK = to_checksum_address("0x" + "5a" * 20)
NodeFactory = Callable[..., NodeProcess]


def transfer(
    account: LocalAccount, nonce: int, *, value: int = 1, chain_id: int = CHAIN_ID
) -> tuple[str, str]:
    """(hash, raw hex) of a zero-fee EIP-1559 transfer to `SINK`."""
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "to": SINK,
            "value": value,
            "gas": 21_000,
            "maxFeePerGas": 0,
            "maxPriorityFeePerGas": 0,
        }
    )
    return "0x" + signed.hash.hex().removeprefix("0x"), "0x" + signed.raw_transaction.hex()


def call(url: str, method: str, params: list) -> Any:
    answer = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=60
    ).json()
    if "error" in answer:
        raise RpcFailure(answer["error"])
    return answer["result"]


def batch(url: str, method: str, params_list: list[list]) -> list[Any]:
    """One JSON-RPC batch; every item must succeed. Results in order."""
    body = [
        {"jsonrpc": "2.0", "id": index, "method": method, "params": params}
        for index, params in enumerate(params_list)
    ]
    answers = sorted(httpx.post(url, json=body, timeout=60).json(), key=lambda a: a["id"])
    errors = [a["error"] for a in answers if "error" in a]
    assert not errors, errors[:3]
    return [a["result"] for a in answers]


def send_all(url: str, txs: list[tuple[str, str]]) -> None:
    """Send in batches of 200; every hash answered must be the transaction's own."""
    for start in range(0, len(txs), 200):
        chunk = txs[start : start + 200]
        answered = batch(url, "eth_sendRawTransaction", [[raw] for _, raw in chunk])
        assert answered == [tx_hash for tx_hash, _ in chunk]


def wait_mined(url: str, hashes: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        receipts = batch(url, "eth_getTransactionReceipt", [[h] for h in hashes])
        if all(receipts):
            return receipts
        assert time.monotonic() < deadline, f"{receipts.count(None)} transactions not mined"
        time.sleep(0.25)


def mined_now(url: str, hashes: list[str]) -> set[str]:
    """The hashes with a receipt. Read just before a kill: with a 30 s block period no block
    comes between, so every other answered transaction was pending when the node died (the
    first block may come at once, depending on the genesis time)."""
    receipts = batch(url, "eth_getTransactionReceipt", [[h] for h in hashes])
    return {h for h, receipt in zip(hashes, receipts, strict=True) if receipt}


def pending_state(url: str, hashes: list[str]) -> list[str]:
    """For each hash: "pending", "mined" or "unknown", as eth_getTransactionByHash says."""
    found = batch(url, "eth_getTransactionByHash", [[h] for h in hashes])
    return [
        "unknown" if tx is None else "pending" if tx["blockNumber"] is None else "mined"
        for tx in found
    ]


# --- the journal in process: group commit and compaction ----------------------------------------


def test_one_flush_per_batch_and_the_file_is_compacted_to_the_pool(
    tmp_path: Path, dev_accounts: list
) -> None:
    """Admissions of one event-loop turn share one write and fdatasync; once the file holds
    `COMPACT_FLOOR` records beyond twice the pool, a flush rewrites it with just the pool's
    transactions, which a new pool restores from it. Real signed transactions, py-evm state."""
    sender = dev_accounts[0]
    state = AccountDB(AtomicDB())
    address = Address(bytes.fromhex(sender.address[2:]))
    state.set_balance(address, 10**24)
    state.persist()
    rules = AdmissionRules(chain_id=CHAIN_ID, block_gas_limit=30_000_000)
    pool = TxPool(PoolConfig(), rules)
    path = tmp_path / JOURNAL_FILE
    journal = TxJournal(path, pool)
    assert journal.load(state).records == 0
    per_batch = 100
    batches = (COMPACT_FLOOR + 2 * per_batch) // per_batch + 1  # the last one passes the mark
    raws = [bytes.fromhex(transfer(sender, nonce)[1][2:]) for nonce in range(batches * per_batch)]
    sizes: list[int] = []

    async def admit_and_mine() -> None:
        for start in range(0, len(raws), per_batch):
            for raw in raws[start : start + per_batch]:
                pool.add(raw, state)
            await journal.wait_durable(journal.appended)
            sizes.append(len(decode_records(path.read_bytes())[0]))
            assert journal.flushes == start // per_batch + 1
            if start + per_batch < len(raws):  # mined: the pool keeps only the last batch
                state.set_nonce(address, start + per_batch)
                pool.on_new_block((), state, senders=[address])
        await journal.close()

    asyncio.run(admit_and_mine())
    assert sizes[: batches - 1] == [per_batch * (i + 1) for i in range(batches - 1)]
    assert sizes[-1] == per_batch, "the last flush rewrote the file with the pool's batch"
    records, end = decode_records(path.read_bytes())
    assert end == path.stat().st_size
    assert records == raws[-per_batch:] == [ptx.raw for ptx in pool.transactions()]

    restored_pool = TxPool(PoolConfig(), rules)
    reopened = TxJournal(path, restored_pool)
    restored = reopened.load(state)
    asyncio.run(reopened.close())
    assert (restored.records, restored.admitted, restored.dropped_bytes) == (
        per_batch,
        per_batch,
        0,
    )
    assert [ptx.raw for ptx in restored_pool.transactions()] == raws[-per_batch:]


# --- a single dev node --------------------------------------------------------------------------


def test_every_answered_transaction_is_pending_after_kill9_then_mined(
    node_factory: NodeFactory, dev_accounts: list
) -> None:
    """Hashes answered to single requests from concurrent clients and to batches, kill -9 the
    moment the last answer arrives: every one is pending after the restart, then mined.

    A 10 s block period: the first transaction gets block 1 at once, sending the rest takes a
    second or two, and the restarted node mines them at block 1's time + 10 s."""
    node = node_factory(block_period=10)
    singles = [[transfer(dev_accounts[i], nonce) for nonce in range(40)] for i in (1, 2, 3, 4)]
    batched = [transfer(dev_accounts[5], nonce) for nonce in range(400)]
    answered: list[str] = []
    lock = threading.Lock()

    def one_by_one(txs: list[tuple[str, str]]) -> None:
        with httpx.Client(base_url=node.url, timeout=30) as client:
            for tx_hash, raw in txs:
                body = {"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction"}
                result = client.post("/", json={**body, "params": [raw]}).json()["result"]
                assert result == tx_hash
                with lock:
                    answered.append(result)

    def in_batches() -> None:
        send_all(node.url, batched)
        with lock:
            answered.extend(tx_hash for tx_hash, _ in batched)

    clients = [threading.Thread(target=one_by_one, args=(txs,)) for txs in singles]
    clients.append(threading.Thread(target=in_batches))
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    mined = mined_now(node.url, answered)
    node.kill9()
    assert len(answered) == 560
    assert len(mined) < len(answered) / 2

    again = node_factory(datadir=node.datadir, block_period=10)
    assert pending_state(again.url, answered) == [
        "mined" if h in mined else "pending" for h in answered
    ]
    receipts = wait_mined(again.url, answered, timeout=45)
    assert {r["status"] for r in receipts} == {"0x1"}


def test_a_torn_journal_tail_is_dropped(node_factory: NodeFactory, dev_accounts: list) -> None:
    """Cut the journal mid-record, as a crash during a write would: the node starts, restores
    every whole record, and rewrites the journal without the torn one."""
    node = node_factory(block_period=30)
    warm_up = [transfer(dev_accounts[7], 0)]
    send_all(node.url, warm_up)  # block 1 may come at once; the next is 30 s after it
    wait_mined(node.url, [warm_up[0][0]], timeout=30)
    txs = [transfer(dev_accounts[6], nonce) for nonce in range(20)]
    send_all(node.url, txs)
    hashes = [tx_hash for tx_hash, _ in txs]
    mined = mined_now(node.url, hashes)
    node.kill9()
    assert hashes[-1] not in mined
    journal = node.datadir / JOURNAL_FILE
    size = journal.stat().st_size
    os.truncate(journal, size - 5)

    again = node_factory(datadir=node.datadir, block_period=30)
    assert pending_state(again.url, hashes) == [
        "mined" if h in mined else "pending" for h in hashes[:-1]
    ] + ["unknown"]
    records, end = decode_records(journal.read_bytes())
    assert end == journal.stat().st_size
    restored = [raw for tx_hash, raw in txs[:-1] if tx_hash not in mined]
    assert ["0x" + record.hex() for record in records] == restored


def test_journaled_transactions_no_longer_valid_are_refused_at_start(
    node_factory: NodeFactory, dev_accounts: list
) -> None:
    """A journal holding a mined transaction, one its sender cannot pay for and one signed for
    another chain, besides a valid one: only the valid one comes back, and the journal is
    rewritten with it alone."""
    node = node_factory(block_period=1)
    sender = dev_accounts[7]
    mined_hash, mined_raw = transfer(sender, 0)
    send_all(node.url, [(mined_hash, mined_raw)])
    (mined_receipt,) = wait_mined(node.url, [mined_hash], timeout=30)
    assert node.stop() == 0

    unfunded_hash, unfunded_raw = transfer(Account.create(), 0, value=10**18)
    foreign_hash, foreign_raw = transfer(sender, 1, chain_id=1)
    valid_hash, valid_raw = transfer(sender, 1)
    journal = node.datadir / JOURNAL_FILE
    journal.write_bytes(
        b"".join(
            encode_record(bytes.fromhex(raw[2:]))
            for raw in (mined_raw, unfunded_raw, foreign_raw, valid_raw)
        )
    )

    again = node_factory(datadir=node.datadir)
    records, _ = decode_records(journal.read_bytes())
    assert records == [bytes.fromhex(valid_raw[2:])]
    assert pending_state(again.url, [unfunded_hash, foreign_hash]) == ["unknown", "unknown"]
    assert call(again.url, "eth_getTransactionReceipt", [mined_hash]) == mined_receipt
    (valid_receipt,) = wait_mined(again.url, [valid_hash], timeout=30)
    assert valid_receipt["status"] == "0x1"


# --- a network: one validator, one member -------------------------------------------------------


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[Path, list[localnet.LocalNode]]]:
    """One validator and one member, created but not started; every started node is stopped."""
    directory = tmp_path / "net"
    nodes = localnet.create(directory, validators=1, members=1)
    try:
        yield directory, nodes
    finally:
        localnet.save(directory, nodes)
        localnet.down(directory)


def start(directory: Path, node: localnet.LocalNode, timeout: float = 30) -> None:
    localnet.start_node(directory, node)
    deadline = time.monotonic() + timeout
    while localnet.rpc(node, "eth_chainId") is None:
        assert localnet.is_running(node), (directory / node.name / "node.log").read_text()
        assert time.monotonic() < deadline, "node did not answer"
        time.sleep(0.1)


def test_a_syncing_member_takes_a_nonce_valid_at_the_networks_head(
    network: tuple[Path, list[localnet.LocalNode]], dev_accounts: list
) -> None:
    """The member starts after the chain holds ~3,000 transfers, the last 1,100 from one
    sender; while it is still importing the earlier blocks, that sender's next transaction
    (nonce 1,100: beyond the pool's nonce gap from the member's state nonce 0) is sent to it.
    It is accepted, forwarded to the validator before the member has caught up, and mined."""
    directory, (validator, member) = network
    start(directory, validator)
    gap = PoolConfig().max_nonce_gap
    sender = dev_accounts[9]
    filler = [transfer(dev_accounts[i], nonce) for i in range(1, 9) for nonce in range(250)]
    send_all(validator.url, filler)
    wait_mined(validator.url, [filler[-1][0]], timeout=30)
    ahead = [transfer(sender, nonce) for nonce in range(gap + 76)]
    for start_at in range(0, len(ahead), 550):  # within the pool's per-sender limit
        send_all(validator.url, ahead[start_at : start_at + 550])
        wait_mined(validator.url, [ahead[min(start_at + 549, len(ahead) - 1)][0]], timeout=30)
    head = int(call(validator.url, "eth_blockNumber", []), 16)

    start(directory, member)
    deadline = time.monotonic() + 20
    while not call(member.url, "eth_syncing", []):
        assert time.monotonic() < deadline, "the member never reported syncing"
        time.sleep(0.02)
    member_nonce = int(call(member.url, "eth_getTransactionCount", [sender.address, "latest"]), 16)
    assert len(ahead) - member_nonce > gap, "the member caught up too fast to show anything"
    tx_hash, raw = transfer(sender, len(ahead))
    assert call(member.url, "eth_sendRawTransaction", [raw]) == tx_hash

    # forwarded at once: the validator has it while the member's state is still behind
    deadline = time.monotonic() + 10
    while call(validator.url, "eth_getTransactionByHash", [tx_hash]) is None:
        assert time.monotonic() < deadline, "the member did not forward the transaction"
        time.sleep(0.02)
    member_nonce = int(call(member.url, "eth_getTransactionCount", [sender.address, "latest"]), 16)
    assert member_nonce < len(ahead), "the member caught up before the validator had the tx"

    (receipt,) = wait_mined(member.url, [tx_hash], timeout=45)
    assert receipt["status"] == "0x1"
    assert int(receipt["blockNumber"], 16) > head


def test_a_member_restores_and_delivers_what_it_answered_while_alone(
    network: tuple[Path, list[localnet.LocalNode]], dev_accounts: list
) -> None:
    """The validator is down; the member answers for transactions it can gossip to nobody,
    and is killed. Both restart: the member's journal restores them and it hands them to the
    validator when they connect, which mines them."""
    directory, (validator, member) = network
    start(directory, validator)
    start(directory, member)
    localnet.stop_node(validator)
    txs = [transfer(dev_accounts[8], nonce) for nonce in range(30)]
    send_all(member.url, txs)
    assert member.pid is not None
    os.kill(member.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while localnet.is_running(member):
        assert time.monotonic() < deadline
        time.sleep(0.05)

    start(directory, validator)
    start(directory, member)
    hashes = [tx_hash for tx_hash, _ in txs]
    receipts = wait_mined(validator.url, hashes, timeout=30)
    assert {r["status"] for r in receipts} == {"0x1"}
