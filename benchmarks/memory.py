"""A node's resident memory as transactions accumulate: does it level off?

Why this shape: issue 16 asks that a node's RSS after 1,000,000 transactions stay under a
stated figure and stop growing with the number of transactions once its caches are full. One
validator is started as a `tally run` process of a `node.localnet` dev network, and
`benchmarks/throughput.py`'s workload (pre-signed plain and ERC-20 transfers from fresh
senders, submitted in `eth_sendRawTransaction` batches, each window waited on to its receipts
and its balances checked) is run in windows of `--every` transactions, plain and ERC-20 windows
alternating, always to the same `--recipients` accounts, so that the state stays the same size
and only the history grows. After each window the node process's VmRSS, VmHWM and RssFile
(file pages: shared libraries, and LevelDB's tables it maps to read them) are read from
/proc/PID/status. The table gives transactions against RSS, and the growth is the
least-squares slope over the second half of the run, in MiB per 100,000 transactions (the
first half's slope beside it shows the caches filling), of RSS, of its file pages and of the
rest, what the node itself holds. `--db-cache-mib` and `--db-open-files` are handed to the
node. Ctrl-C or SIGTERM stops early and still prints what was measured (also when started in
the background, where a shell leaves SIGINT ignored).

    python benchmarks/memory.py                      # 200,000 transactions
    python benchmarks/memory.py --count 1000000      # the issue's figure
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.peers import wait_for_rpc
from benchmarks.throughput import BenchError, Rpc, Setup, run_workload
from node import localnet
from node.txpool.pool import PoolConfig

MIB = 1024 * 1024
POOL_ROOM = PoolConfig().max_transactions - 192
"""A window is submitted at once, so it must fit the node's transaction pool (8,192 by default;
one more is refused "txpool is full"), with room left for anything else in it."""


@dataclass(frozen=True)
class Sample:
    """The node's memory after `transactions` of the run's transactions were final."""

    transactions: int
    rss: int
    """VmRSS, bytes."""
    peak: int
    """VmHWM (the largest RSS so far), bytes."""
    file: int
    """RssFile, bytes: the part of RSS that is file pages (shared libraries, and LevelDB's
    tables, which it maps into memory to read them), which the kernel can drop and read again."""
    seconds: float
    """Since the first transaction was submitted."""


def memory(pid: int) -> tuple[int, int, int]:
    """(VmRSS, VmHWM, RssFile) of process `pid` in bytes, from /proc/PID/status."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssFile"):
            fields[name] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"], fields["RssFile"]


def slope(samples: Sequence[Sample], part: Callable[[Sample], int]) -> float | None:
    """Least-squares growth of `part` of the memory over `samples`, in MiB per 100,000
    transactions."""
    if len(samples) < 2:
        return None
    xs = [s.transactions for s in samples]
    if len(set(xs)) < 2:
        return None
    ys = [part(s) / MIB for s in samples]
    return statistics.linear_regression(xs, ys).slope * 100_000


def _rss(sample: Sample) -> int:
    return sample.rss


def _file(sample: Sample) -> int:
    return sample.file


def _rest(sample: Sample) -> int:
    """What the node itself holds: RSS less the file pages."""
    return sample.rss - sample.file


def report(samples: Sequence[Sample], rows: int = 20) -> None:
    """The table (about `rows` of the samples, the last always) and the growth figures."""
    print(
        f"\n{'transactions':>12}  {'RSS MiB':>8}  {'peak MiB':>8}  {'file MiB':>8}  "
        f"{'elapsed s':>9}"
    )
    step = max(1, len(samples) // rows)
    for s in [*samples[:-1:step], samples[-1]] if samples else []:
        print(
            f"{s.transactions:>12,}  {s.rss / MIB:>8.1f}  {s.peak / MIB:>8.1f}  "
            f"{s.file / MIB:>8.1f}  {s.seconds:>9.0f}"
        )
    if len(samples) < 3:
        return
    end = samples[-1].transactions
    first = [s for s in samples if s.transactions <= end / 2]
    second = [s for s in samples if s.transactions >= end / 2]
    print(
        f"RSS after {end:,} transactions: {samples[-1].rss / MIB:.0f} MiB "
        f"(peak {samples[-1].peak / MIB:.0f} MiB), file pages {samples[-1].file / MIB:.0f} MiB"
    )
    for name, half in (("first half: ", first), ("second half:", second)):
        growth = [slope(half, part) for part in (_rss, _file, _rest)]
        if None not in growth:
            rss, file, rest = growth
            print(
                f"growth over the {name} RSS {rss:+.1f}, file pages {file:+.1f}, "
                f"the rest {rest:+.1f} MiB per 100,000 transactions"
            )


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=200_000, help="transactions in all")
    ap.add_argument(
        "--every",
        type=int,
        default=5_000,
        help=f"transactions between samples (a window must fit the pool: <= {POOL_ROOM:,})",
    )
    ap.add_argument("--senders", type=int, default=100, help="fresh sender accounts")
    ap.add_argument("--recipients", type=int, default=1000, help="accounts paid, the same ones")
    ap.add_argument("--batch", type=int, default=200, help="transactions per JSON-RPC batch")
    ap.add_argument("--block-period", type=int, default=1, help="seconds between blocks")
    ap.add_argument("--timeout", type=float, default=600.0, help="per-window receipt timeout")
    ap.add_argument("--db-cache-mib", type=int, help="the node's LevelDB block cache (MiB)")
    ap.add_argument("--db-open-files", type=int, help="files the node's LevelDB keeps open")
    ap.add_argument("--keep", type=Path, help="keep the network under this directory")
    args = ap.parse_args(argv)
    if args.count < 1 or not 0 < args.every <= min(args.count, POOL_ROOM):
        ap.error(f"need --count >= 1 and 0 < --every <= min(--count, {POOL_ROOM:,})")
    samples: list[Sample] = []
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with tempfile.TemporaryDirectory(prefix="tally-memory-") as tmp:
        directory = (args.keep or Path(tmp)) / "net"
        shutil.rmtree(directory, ignore_errors=True)  # a kept network of an earlier run
        (node,) = localnet.create(directory, 1, 0, args.block_period)
        options = [
            *([] if args.db_cache_mib is None else ["--db-cache-mib", str(args.db_cache_mib)]),
            *([] if args.db_open_files is None else ["--db-open-files", str(args.db_open_files)]),
        ]
        localnet.start_node(directory, node, options)
        localnet.save(directory, [node])  # `down` stops what the state file names
        pid = node.pid
        if pid is None:
            raise BenchError("the node was not started")
        rpc = Rpc(node.url)
        try:
            wait_for_rpc(node.url, timeout=120)
            setup = Setup(rpc, args.senders, args.count, args.timeout)
            recipients = [Account.create().address for _ in range(args.recipients)]
            print(f"node pid {pid} at {node.url}; {args.count:,} transactions", flush=True)
            t0 = time.monotonic()
            samples.append(Sample(0, *memory(pid), 0.0))
            done = 0
            while done < args.count:
                size = min(args.every, args.count - done)
                workload = "eth" if len(samples) % 2 else "erc20"
                result = run_workload(
                    node.url,
                    setup,
                    workload,
                    size,
                    args.batch,
                    0.05,
                    args.timeout,
                    "tally",
                    recipients=recipients,
                )
                done += size
                samples.append(Sample(done, *memory(pid), time.monotonic() - t0))
                print(
                    f"  {done:>9,} tx  RSS {samples[-1].rss / MIB:7.1f} MiB  "
                    f"(file pages {samples[-1].file / MIB:5.1f})  "
                    f"({workload} window {result.tx_per_s:.0f} tx/s)",
                    flush=True,
                )
        except KeyboardInterrupt:
            print("stopped: reporting what was measured", file=sys.stderr)
        except (BenchError, httpx.HTTPError, OSError, TimeoutError, RuntimeError) as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            report(samples)
            return 1
        finally:
            rpc.close()
            localnet.down(directory)
    report(samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
