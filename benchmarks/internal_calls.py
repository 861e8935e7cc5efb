"""What indexing internal transactions costs block production: ERC-20 transfers per second
with the collector (`node.chain.internal_calls.collect`) against the same build with it
replaced by a no-op, in the same process, in alternating rounds.

Why this shape: the collector runs after every transaction of every block, inside
`BlockExecutor.execute`, and its index rows are written in the block's batch at commit, so
the question is what it adds to building and committing a block. Both variants build and
commit 500-transfer blocks of a plain OpenZeppelin ERC-20 (DevToken) on one in-memory chain,
with pre-signed transactions whose senders are recovered before the clock starts; a second
workload sends the value through a forwarding contract (one internal transaction each), to
show what the rows cost where there are some. Medians over the rounds. On a machine shared
with other work the two throughputs move by more than the difference between them, so the
collector's and the index writer's own time is also measured, as a share of the blocks'
build-and-commit time in the same rounds (an upper bound: it includes the timer's cost).

    python benchmarks/internal_calls.py                  # 8 rounds x 500 transfers per variant
    python benchmarks/internal_calls.py --rounds 12 --block 1000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.inprocess import DevChain, admitted, pay, token_deployment
from node.chain import executor
from node.storage.store import MemoryStore

FORWARDER = bytes.fromhex(
    "6018 600c 6000 39 6018 6000 f3"  # init code: CODECOPY the 24-byte runtime, RETURN it
    "6000 6000 6020 36 03 80 6020 6000 37 6000 34 6000 35 5a f1 50 00"
)
"""Forwards the call's value to the address in calldata word 0 (as in the API tests)."""


class Bench:
    def __init__(self) -> None:
        self.dev_chain = DevChain(MemoryStore())
        self.chain = self.dev_chain.chain
        self.token = self.block([self.dev_chain.sign(None, token_deployment(), 3_000_000)])[0]
        self.forwarder = self.block([self.dev_chain.sign(None, FORWARDER, 200_000)])[0]

    def block(self, raws: list[bytes]) -> list[bytes]:
        """Build and commit one block; the contracts it created."""
        return [item.contract_address for item in self.dev_chain.commit(admitted(raws))]

    def transfers(self, count: int) -> list[bytes]:
        return [
            self.dev_chain.sign(self.token, pay(Account.create().address, 1)) for _ in range(count)
        ]

    def forwards(self, count: int) -> list[bytes]:
        return [
            self.dev_chain.sign(
                self.forwarder,
                bytes(12) + bytes.fromhex(Account.create().address[2:]),
                100_000,
                value=1,
            )
            for _ in range(count)
        ]

    def timed(self, raws: list[bytes]) -> float:
        """Transactions per second building and committing `raws` as one block."""
        txs = admitted(raws)
        started = time.perf_counter()
        self.dev_chain.commit(txs)
        return len(raws) / (time.perf_counter() - started)


def _no_internal_calls(computation: Any) -> tuple[()]:
    return ()


P = ParamSpec("P")
R = TypeVar("R")


class Timed(Generic[P, R]):
    """A function that adds up the time spent in it."""

    def __init__(self, function: Callable[P, R]) -> None:
        self.function = function
        self.seconds = 0.0

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def measure(bench: Bench, make: Callable[[int], list[bytes]], rounds: int, size: int) -> None:
    collect = executor.collect
    indexer = bench.chain.indexer
    write = indexer.index_internal_calls
    rates: dict[str, list[float]] = {"with collector": [], "without": []}
    shares: list[float] = []
    for round_ in range(rounds):
        order = ("with collector", "without") if round_ % 2 == 0 else ("without", "with collector")
        for variant in order:
            raws = make(size)
            timed_collect, timed_write = Timed(collect), Timed(write)
            # The indexer's method is patched on this instance and put back below: mypy's
            # method-assign flags any assignment to a method, however well typed.
            if variant == "with collector":
                executor.collect = timed_collect
                indexer.index_internal_calls = timed_write  # type: ignore[method-assign]
            else:
                executor.collect = _no_internal_calls
            try:
                rate = bench.timed(raws)
            finally:
                executor.collect = collect
                indexer.index_internal_calls = write  # type: ignore[method-assign]
            rates[variant].append(rate)
            if variant == "with collector":
                shares.append((timed_collect.seconds + timed_write.seconds) * rate / size)
    with_, without = (statistics.median(rates[k]) for k in ("with collector", "without"))
    print(
        f"  with collector {with_:8.1f} tx/s   without {without:8.1f} tx/s   "
        f"ratio {with_ / without:.3f}   collector + index rows: "
        f"{100 * statistics.median(shares):.2f}% of block time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--block", type=int, default=500)
    args = parser.parse_args()
    bench = Bench()
    print(f"ERC-20 transfers, {args.block}-tx blocks, median of {args.rounds} rounds:")
    measure(bench, bench.transfers, args.rounds, args.block)
    print(f"value forwarded through a contract (one internal tx each), {args.block}-tx blocks:")
    measure(bench, bench.forwards, args.rounds, args.block)


if __name__ == "__main__":
    main()
