"""The pieces behind issue 12's bounds, in process: the jump-analysis cache is bounded in
bytes and agrees with py-evm, a client call's deadline covers a whole gas estimate, client
calls pause while the chain does block work, and subscriptions share a bounded budget.

The node-level behaviour (timeouts over HTTP, blocks during call floods, RSS) is in
`tests/test_rpc_bounds.py`.
"""

from __future__ import annotations

import gc
import random
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from eth.db.account import AccountDB
from eth.vm.code_stream import CodeStream
from eth_typing import Address

from node.chain.calls import AccountOverride, CallExecutor, CallLimits, CallRequest
from node.chain.chain import _HEAD_STATE_READS
from node.chain.deadline import Deadline, ExecutionTimeout
from node.chain.evm.interpreter import (
    AnalysedCodeStream,
    AnalysisCache,
    analysis_cost,
    instruction_starts,
)
from node.chain.evm.state_db import TallyAccountDB
from node.chain.notifications import ChainEvents
from node.domain.contracts import WALLET_TOKEN
from node.rpc.errors import LimitExceeded
from node.rpc.logquery import parse_criteria
from node.rpc.subscriptions import SubscriptionsApi
from tests.test_chain import new_chain

TARGET = b"\xaa" * 20
CALLER = b"\x00" * 20


def test_instruction_starts_agree_with_py_evm() -> None:
    generator = random.Random(12)
    for _ in range(50):
        # Skewed towards PUSH opcodes, so that PUSH data and truncated PUSHes are common.
        code = bytes(
            generator.choice((0x5B, 0x60, 0x61, 0x7F, generator.randrange(256)))
            for _ in range(generator.randrange(1, 300))
        )
        starts = instruction_starts(code)
        ours, theirs = AnalysedCodeStream(code), CodeStream(code)
        for position in range(len(code) + 40):
            expected = theirs.is_valid_opcode(position)
            assert ours.is_valid_opcode(position) == expected, (code.hex(), position)
            if position < len(code):
                assert bool(starts[position]) == expected


def test_analysis_cache_is_bounded_in_bytes_least_recently_used_out() -> None:
    cache = AnalysisCache(max_bytes=1024 * 1024)
    codes = [n.to_bytes(4, "big") + b"\x60" * (48 * 1024) for n in range(40)]
    for code in codes:
        assert cache.starts(code) == instruction_starts(code)
        assert cache.entries.size <= cache.entries.max_bytes
    fits = cache.entries.max_bytes // analysis_cost(codes[0])
    assert len(cache.entries) == fits
    assert cache.entries.size == fits * analysis_cost(codes[0])
    oldest_kept = codes[-fits]
    cache.starts(oldest_kept)  # used again: now the newest
    cache.starts(b"\xff" + codes[0])  # pushes out the least recently used instead
    assert oldest_kept in cache.entries and codes[-fits + 1] not in cache.entries
    huge = b"\x5b" * (cache.entries.max_bytes // 8)
    assert cache.starts(huge) == b"\x01" * len(huge)
    assert huge not in cache.entries  # more than an eighth of the budget: not kept


def test_analysis_cache_accounting_bounds_the_memory_it_holds() -> None:
    """What the cache says it holds is at least what it really holds (code and maps)."""
    cache = AnalysisCache(max_bytes=4 * 1024 * 1024)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for n in range(200):  # only the cache keeps the codes it has not evicted
            cache.starts(n.to_bytes(4, "big") + bytes(random.Random(n).randbytes(30_000)))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache.entries.size <= cache.entries.max_bytes
    assert cache.entries.size / 2 <= held <= cache.entries.size


def test_code_is_read_from_the_store_once_by_its_hash(tmp_path: Path) -> None:
    """A contract's code read again, by another state object, is the same bytes object (so
    the analysis cache finds it without hashing 20 KB again), and py-evm's code. (LevelDB
    returns a new object for every read; a dict in memory would not tell.)"""
    chain = new_chain(tmp_path)
    root = chain.head.state_root
    token = Address(WALLET_TOKEN)  # the contract's fixed address, as py-evm types it
    first = TallyAccountDB(chain.store.store, root).get_code(token)
    again = TallyAccountDB(chain.store.store, root).get_code(token)
    assert len(first) > 1000 and first == AccountDB(chain.store.store, root).get_code(token)
    assert again is first
    assert TallyAccountDB(chain.store.store, root).get_code(Address(b"\x42" * 20)) == b""


# A countdown of N turns: PUSH2 N; JUMPDEST; PUSH1 1; SWAP1; SUB; DUP1; PUSH1 3; JUMPI; STOP
def countdown(turns: int) -> bytes:
    return bytes.fromhex("61" + turns.to_bytes(2, "big").hex() + "5b600190038060035700")


def test_a_deadline_covers_the_whole_gas_estimate() -> None:
    chain = new_chain()
    calls = CallExecutor(chain, chain.genesis.gas_limit)
    request = CallRequest(CALLER, TARGET, b"", 0, None)
    overrides = {TARGET: AccountOverride(code=countdown(3_000))}
    started = time.perf_counter()
    single = calls.call(request, chain.head, overrides, limits=CallLimits(10**7, Deadline(60)))
    one_run = time.perf_counter() - started
    assert not single.is_error
    # The search runs the call some twenty times; four runs' worth of time cannot finish it.
    with pytest.raises(ExecutionTimeout, match=r"execution aborted \(timeout = "):
        calls.estimate_gas(
            request, chain.head, overrides, limits=CallLimits(10**7, Deadline(4 * one_run))
        )
    assert isinstance(
        calls.estimate_gas(request, chain.head, overrides, limits=CallLimits(10**7, Deadline(60))),
        int,
    )


def test_an_aborted_deadline_ends_the_call_at_once() -> None:
    chain = new_chain()
    calls = CallExecutor(chain, chain.genesis.gas_limit)
    deadline = Deadline(600)
    deadline.abort()
    with pytest.raises(ExecutionTimeout, match="the node is stopping"):
        calls.call(
            CallRequest(CALLER, TARGET, b"", 0, None),
            chain.head,
            {TARGET: AccountOverride(code=bytes.fromhex("5b5f56"))},
            limits=CallLimits(10**9, deadline),
        )


@pytest.mark.parametrize("loop", ["5b5f56", "5b60016000575f56"])  # JUMP; JUMPI then JUMP
def test_a_deadline_stops_a_loop_of_jumps_inside_one_frame(loop: str) -> None:
    """The interpreter runs JUMP and JUMPI itself in blocks, but under a deadline they stay
    the checked ones: a loop inside one frame ends at the deadline, long before its gas (25
    million: over a million turns) runs out."""
    chain = new_chain()
    calls = CallExecutor(chain, chain.genesis.gas_limit)
    started = time.perf_counter()
    with pytest.raises(ExecutionTimeout):
        calls.call(
            CallRequest(CALLER, TARGET, b"", 0, None),
            chain.head,
            {TARGET: AccountOverride(code=bytes.fromhex(loop))},
            limits=CallLimits(25_000_000, Deadline(0.2)),
        )
    assert time.perf_counter() - started < 2


def endless_call_cpu_seconds(block_work_held: bool) -> float:
    """CPU time an endless call's thread used in its 1 s, with or without block work held."""
    chain = new_chain()
    calls = CallExecutor(chain, chain.genesis.gas_limit)
    used: list[float] = []
    started = threading.Event()

    def run() -> None:
        cpu = time.thread_time()
        started.set()
        with pytest.raises(ExecutionTimeout):
            calls.call(
                CallRequest(CALLER, TARGET, b"", 0, None),
                chain.head,
                {TARGET: AccountOverride(code=bytes.fromhex("5b5f56"))},
                limits=CallLimits(10**9, Deadline(1.0, chain.block_work)),
            )
        used.append(time.thread_time() - cpu)

    thread = threading.Thread(target=run)
    if block_work_held:
        with chain.block_work.running():
            thread.start()
            started.wait()
            thread.join()
    else:
        thread.start()
        thread.join()
    return used[0]


def test_client_calls_pause_while_the_chain_does_block_work() -> None:
    running = endless_call_cpu_seconds(block_work_held=False)
    paused = endless_call_cpu_seconds(block_work_held=True)
    assert paused < running / 4, (paused, running)


class FakeConnection:
    def __init__(self) -> None:
        self.subscriptions: dict = {}
        self.closed = False

    def notify(self, payload: bytes) -> None:
        pass


def test_subscriptions_share_a_bounded_budget_of_addresses_and_topics() -> None:
    table = SubscriptionsApi(None, ChainEvents(), max_criteria=1_500, max_subscriptions=3)  # type: ignore[arg-type]
    wide = {"address": ["0x" + n.to_bytes(20, "big").hex() for n in range(1_000)]}
    first, second = FakeConnection(), FakeConnection()
    kept = table.subscribe(first, "logs", wide)
    with pytest.raises(LimitExceeded, match="max 1500 in all"):
        table.subscribe(second, "logs", wide)
    assert table.criteria.used == parse_criteria(wide).size == 1_000
    table.drop_connection(first)
    assert table.criteria.used == 0 and kept not in table._subscriptions
    table.subscribe(second, "logs", wide)
    table.subscribe(second, "newHeads", None)
    table.subscribe(first, "newPendingTransactions", None)
    with pytest.raises(LimitExceeded, match=r"too many subscriptions \(max 3\)"):
        table.subscribe(first, "newHeads", None)


def test_the_head_state_is_renewed_before_its_caches_grow_without_bound() -> None:
    """py-evm's account database remembers every account read; on an idle chain the head
    (and so its cached state object) never changes, so the object is replaced now and then."""
    chain = new_chain()
    first = chain.state_at(chain.head)
    reads = [chain.state_at(chain.head) for _ in range(_HEAD_STATE_READS)]
    assert all(state is first for state in reads)
    renewed = chain.state_at(chain.head)
    assert renewed is not first
    assert renewed.state_root == first.state_root
