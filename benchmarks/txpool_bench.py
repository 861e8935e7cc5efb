"""Transaction pool micro benchmark: admission rate and block selection time.

Run: `python benchmarks/txpool_bench.py` (set ETH_HASH_BACKEND=pysha3 to match the node).
Prints figures only; nothing here is asserted. Signing the transactions beforehand takes a
few seconds and is not measured.

`--journal` adds, in the same run, admission with and without the pool's journal
(`node.txpool.journal`) as the node does it: requests of `--batch` transactions from
`--clients` concurrent clients on one event loop, each answered through `JournalGate`, so an
answer waits for the fdatasync that covers its transactions (group commit). The journal is
written under `--journal-dir` (default: the system temp dir; use the datadir's disk: tmpfs
makes fsync free). It prints both rates and their ratio, for the AccountDB state.

Figures, for 5,000 EIP-1559 transfers:
- decode + recover: py-evm's cost alone, the floor for any admission;
- add (dict state): the pool over a dict of nonces and balances, so `add - decode` is the
  pool's own overhead (hashing, checks, bookkeeping);
- add (py-evm AccountDB): the same against py-evm's account database, state reads included;
- select and on_new_block for 5,000 pending transactions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth_account import Account
from eth_hash.auto import keccak
from eth_typing import Address
from starlette.types import Message, Receive, Scope, Send

from node.chain.vm import decode_transaction
from node.txpool.admission import AccountStateReader, AdmissionRules
from node.txpool.errors import AlreadyKnown
from node.txpool.journal import JOURNAL_FILE, JournalGate, TxJournal
from node.txpool.pool import PoolConfig, TxPool

CHAIN_ID = 1337
TOTAL = 5_000
TO = "0x" + "22" * 20


class DictState:
    """Nonces and balances in dicts: isolates the pool's cost from state access."""

    def __init__(self) -> None:
        self.nonces: dict[bytes, int] = {}
        self.balances: dict[bytes, int] = {}

    def get_nonce(self, address: bytes) -> int:
        return self.nonces.get(address, 0)

    def get_balance(self, address: bytes) -> int:
        return self.balances.get(address, 0)

    def get_code(self, address: bytes) -> bytes:
        return b""  # plain accounts: no EIP-7702 delegation


class EvmState:
    """py-evm's AccountDB, persisted, as the node's head state would be."""

    def __init__(self, addresses: list[bytes]) -> None:
        self.db = AccountDB(AtomicDB())
        for address in addresses:
            self.db.set_balance(Address(address), 10**24)
        self.db.persist()

    def get_nonce(self, address: bytes) -> int:
        return self.db.get_nonce(Address(address))

    def get_balance(self, address: bytes) -> int:
        return self.db.get_balance(Address(address))

    def get_code(self, address: bytes) -> bytes:
        return self.db.get_code(Address(address))


def make_transactions(senders: int, per_sender: int) -> tuple[list[bytes], list[bytes]]:
    """Signed transfers, interleaved across senders in nonce order, and the sender addresses."""
    rng = random.Random(7)
    accounts = [Account.create() for _ in range(senders)]
    raws: list[bytes] = []
    for nonce in range(per_sender):
        for account in accounts:
            tip = rng.randrange(0, 50)
            tx: dict[str, Any] = {
                "type": 2,
                "chainId": CHAIN_ID,
                "nonce": nonce,
                "maxFeePerGas": tip + rng.randrange(0, 50),
                "maxPriorityFeePerGas": tip,
                "gas": 21_000,
                "to": TO,
                "value": 1,
            }
            raws.append(bytes(account.sign_transaction(tx).raw_transaction))
    return raws, [bytes.fromhex(a.address[2:]) for a in accounts]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(runs: int, fn: Callable[[], object]) -> float:
    return min(timed(fn) for _ in range(runs))


def run(label: str, senders: int, per_sender: int) -> None:
    raws, addresses = make_transactions(senders, per_sender)
    n = len(raws)
    rules = AdmissionRules(chain_id=CHAIN_ID, block_gas_limit=30_000_000)
    config = PoolConfig(max_transactions=2 * n)

    # Best of three fresh runs each; decoded objects are kept alive in every case, so the
    # garbage collector's share is comparable and `add - decode` is the pool's own work.
    decode = best_of(3, lambda: [_recovered(decode_transaction(raw)) for raw in raws])

    dict_state = DictState()
    dict_state.balances = dict.fromkeys(addresses, 10**24)
    pools = [TxPool(config, rules) for _ in range(3)]
    add_dict = min(timed(partial(add_all, p, raws, dict_state)) for p in pools)
    pool = pools[0]

    evm_state = EvmState(addresses)
    evm_pools = [TxPool(config, rules) for _ in range(3)]
    add_evm = min(timed(partial(add_all, p, raws, evm_state)) for p in evm_pools)

    known = timed(lambda: [_known(pool, raw, dict_state) for raw in raws])

    all_gas = 21_000 * n
    select_all = best_of(5, lambda: pool.select(all_gas, 0))
    select_block = best_of(5, lambda: pool.select(30_000_000, 0))
    chosen = pool.select(all_gas, 0)
    assert len(chosen) == n, len(chosen)

    included = [p.hash for p in chosen]
    for address in addresses:
        dict_state.nonces[address] = per_sender
    update = timed(lambda: pool.on_new_block(included, dict_state))
    assert len(pool) == 0

    us = 1e6 / n
    print(f"\n{label}: {n} txs, {senders} senders x {per_sender} nonces")
    print(f"  decode + recover alone      {decode * us:7.1f} us/tx   {n / decode:8.0f} tx/s")
    print(f"  add, dict state             {add_dict * us:7.1f} us/tx   {n / add_dict:8.0f} tx/s")
    print(f"    pool overhead             {(add_dict - decode) * us:7.1f} us/tx")
    print(f"  add, py-evm AccountDB       {add_evm * us:7.1f} us/tx   {n / add_evm:8.0f} tx/s")
    print(f"  re-add (already known)      {known * us:7.1f} us/tx")
    print(f"  select all {n}             {select_all * 1e3:7.2f} ms")
    print(f"  select 30M gas ({30_000_000 // 21_000} txs)   {select_block * 1e3:7.2f} ms")
    print(f"  on_new_block ({n} included) {update * 1e3:7.2f} ms")


def _recovered(tx: Any) -> Any:
    tx.sender  # noqa: B018 - recover and cache, as admission does
    return tx


def add_all(pool: TxPool, raws: list[bytes], state: AccountStateReader) -> None:
    for raw in raws:
        pool.add(raw, state)


def _known(pool: TxPool, raw: bytes, state: DictState) -> bool:
    try:
        pool.add(raw, state)
    except AlreadyKnown:
        return True
    raise AssertionError("accepted a duplicate")


async def _requests(
    pool: TxPool,
    raws: list[bytes],
    state: AccountStateReader,
    batch: int,
    clients: int,
    journal: TxJournal | None,
) -> None:
    """`clients` concurrent clients, each sending requests of `batch` transactions in turn
    and waiting for the answer; with a journal, answers pass through `JournalGate`."""

    async def admit(scope: Scope, receive: Receive, send: Send) -> None:
        for raw in scope["raws"]:
            pool.add(raw, state)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = admit if journal is None else JournalGate(admit, journal)
    chunks = [raws[i : i + batch] for i in range(0, len(raws), batch)]

    async def answered(message: Message) -> None:
        await asyncio.sleep(0)  # the client's turn: other requests run meanwhile

    async def nothing() -> Message:
        return {"type": "http.request"}

    async def client() -> None:
        while chunks:
            await app({"type": "http", "raws": chunks.pop()}, nothing, answered)

    await asyncio.gather(*(client() for _ in range(clients)))


def run_journal(batch: int, clients: int, directory: Path) -> None:
    """Admission rate with and without the journal: three fresh pools each, interleaved."""
    raws, addresses = make_transactions(TOTAL, 1)
    without: list[float] = []
    journaled: list[float] = []
    flushes: list[int] = []
    for attempt in range(3):
        without.append(_timed_requests(raws, addresses, batch, clients, None))
        path = directory / f"{attempt}-{JOURNAL_FILE}"
        journaled.append(_timed_requests(raws, addresses, batch, clients, path, flushes))
        path.unlink()
    n = len(raws)
    plain, durable = min(without), min(journaled)
    print(f"\njournal: {n} txs, {clients} clients x requests of {batch}, written in {directory}")
    print(f"  admission, no journal       {n / plain:8.0f} tx/s")
    print(f"  admission, journal          {n / durable:8.0f} tx/s   {min(flushes)} fdatasyncs")
    print(f"  throughput journal / none   {plain / durable:8.2f}")


def _timed_requests(
    raws: list[bytes],
    addresses: list[bytes],
    batch: int,
    clients: int,
    journal_path: Path | None,
    flushes: list[int] | None = None,
) -> float:
    """Seconds to admit `raws` into a fresh pool (journaled at `journal_path`, if given)."""
    rules = AdmissionRules(chain_id=CHAIN_ID, block_gas_limit=30_000_000)
    pool = TxPool(PoolConfig(max_transactions=2 * len(raws)), rules)
    state = EvmState(addresses)
    journal = None
    if journal_path is not None:
        journal = TxJournal(journal_path, pool)
        journal.load(state)

    async def admit_all() -> None:
        await _requests(pool, raws, state, batch, clients, journal)
        if journal is not None:
            await journal.close()

    elapsed = timed(lambda: asyncio.run(admit_all()))
    if journal is not None and flushes is not None:
        flushes.append(journal.flushes)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--journal", action="store_true", help="also measure the journal")
    parser.add_argument("--batch", type=int, default=100, help="transactions per request")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--journal-dir", type=Path, default=None, help="where to write it")
    args = parser.parse_args()
    backend = os.environ.get("ETH_HASH_BACKEND", "auto")
    keccak(b"")  # load the backend before timing
    print(f"keccak backend: {backend}; best of three runs, single core")
    run("many senders", senders=TOTAL, per_sender=1)
    run("nonce chains", senders=TOTAL // 5, per_sender=5)
    if args.journal:
        with tempfile.TemporaryDirectory(dir=args.journal_dir) as directory:
            for batch in sorted({1, args.batch}):
                run_journal(batch, args.clients, Path(directory))


if __name__ == "__main__":
    main()
