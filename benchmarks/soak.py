"""Soak: a node at half its measured peak load for a long time, its memory sampled throughout.

First the peak is measured on the same node: `--peak-count` transfers are pre-signed and
posted in batches as fast as the node takes them, and the peak is how many a second became
final. Then benchmarks/load.py offers half of that for `--duration` seconds (hours in real use)
while each node process's resident memory (psutil) is sampled every `--interval` seconds. The
report gives RSS at start (after the first minute: caches fill), peak and end, and the growth
per hour from a least-squares line through the samples after that first minute, so one
garbage-collector swing does not read as a leak. Every transaction given a hash must be final
at the end.

    python benchmarks/soak.py --duration 14400           # 4 hours, one `tally dev` node
    python benchmarks/soak.py --duration 900 --validators 4   # a 4-validator localnet
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.load import Sender, Watcher, dev_accounts, rpc
from benchmarks.peers import free_port, wait_for_rpc
from node import localnet

WARMUP = 60.0


def start_dev(directory: Path) -> tuple[list[str], list[int], list[subprocess.Popen[bytes]]]:
    port = free_port()
    log = open(directory / "node.log", "wb")  # noqa: SIM115 - the child's
    process = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "dev", "--datadir", str(directory / "data"),
         "--rpc-port", str(port), "--ws-port", str(free_port()), "--admin-port", "0"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for_rpc(url, timeout=60, proc=process)
    return [url], [process.pid], [process]


def measure_peak(url: str, count: int) -> float:
    """Transfers a second from first post to the last one final, pre-signed, batches of 200."""
    accounts = dev_accounts()
    with httpx.Client(timeout=60) as client:
        nonces = [
            int(rpc(client, url, "eth_getTransactionCount", [a.address, "pending"]), 16)
            for a in accounts
        ]
        raws = []
        for index in range(count):
            slot = index % len(accounts)
            signed = accounts[slot].sign_transaction(
                {"chainId": 1337, "nonce": nonces[slot], "gasPrice": 0, "gas": 21000,
                 "to": accounts[(slot + 1) % len(accounts)].address, "value": 1}
            )  # fmt: skip
            nonces[slot] += 1
            raws.append("0x" + signed.raw_transaction.hex())
        started = time.monotonic()
        for first in range(0, count, 200):
            body = [
                {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw]}
                for i, raw in enumerate(raws[first : first + 200])
            ]
            client.post(url, json=body).raise_for_status()
        last = accounts[(count - 1) % len(accounts)].address
        target = nonces[(count - 1) % len(accounts)]
        while int(rpc(client, url, "eth_getTransactionCount", [last, "latest"]), 16) < target:
            time.sleep(0.1)
        return count / (time.monotonic() - started)


def growth_per_hour(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time, in bytes per hour."""
    times = [t for t, _ in samples]
    values = [float(v) for _, v in samples]
    if len(samples) < 2 or max(times) == min(times):
        return 0.0
    slope = statistics.linear_regression(times, values).slope
    return slope * 3600


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds at half load")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--validators", type=int, default=0, help="0: one `tally dev` node")
    parser.add_argument("--peak-count", type=int, default=3000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tally-soak-") as tmp:
        directory = Path(tmp)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            if args.validators:
                nodes = localnet.up(directory / "net", args.validators, 0)
                urls, pids = [n.url for n in nodes], [n.pid or 0 for n in nodes]
                time.sleep(5)
            else:
                urls, pids, processes = start_dev(directory)
            peak = measure_peak(urls[0], args.peak_count)
            rate = peak / 2
            print(f"peak {peak:.0f} transfers/s; soaking at {rate:.0f}/s for {args.duration:.0f} s")
            sender = Sender(lambda: urls, rate, batch=100)
            with httpx.Client(timeout=10) as client:
                sender.start_nonces(client, urls[0])
            watcher = Watcher(lambda: urls, interval=0.5)
            watcher.start()
            sender.start()
            started = time.monotonic()
            samples: dict[int, list[tuple[float, int]]] = {pid: [] for pid in pids}
            while time.monotonic() - started < args.duration:
                now = time.monotonic() - started
                for pid in pids:
                    samples[pid].append((now, psutil.Process(pid).memory_info().rss))
                time.sleep(args.interval)
            sender.stop_event.set()
            sender.join(timeout=30)
            given = sender.hashes()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not set(given) <= watcher.included:
                time.sleep(1)
            watcher.stop_event.set()
            final = len(set(given) & watcher.included)
            print(
                f"{len(given)} transfers given hashes ({len(given) / args.duration:.0f}/s), "
                f"{final} final, {len(given) - final} missing, {len(sender.refused)} refused"
            )
            mib = 1024 * 1024
            print(
                f"{'process':>8} {'start MiB':>10} {'peak MiB':>9} {'end MiB':>8} {'MiB/hour':>9}"
            )
            for pid, rows in samples.items():
                settled = [(t, v) for t, v in rows if t >= min(WARMUP, args.duration / 4)]
                print(
                    f"{pid:>8} {settled[0][1] / mib:>10.0f} {max(v for _, v in rows) / mib:>9.0f} "
                    f"{rows[-1][1] / mib:>8.0f} {growth_per_hour(settled) / mib:>9.1f}"
                )
            return 0 if final == len(given) else 1
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
            if args.validators:
                localnet.down(directory / "net")


if __name__ == "__main__":
    sys.exit(main())
