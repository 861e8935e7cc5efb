"""Does a flood of expensive `eth_call`s delay blocks? Measured against real node processes.

Issue 12 point 2: calls ran on the event loop that runs consensus, so one long call stopped
the node. This starts a node (`dev`: one validator; `qbft`: a four-validator localnet, the
flood aimed at two of them), keeps `--calls` infinite-loop calls in flight (a code override
`JUMPDEST PUSH0 JUMP`, so each runs until the gas cap or the node's EVM timeout stops it),
and meanwhile sends one transfer every `--tx-interval` seconds (0.5). It reports how long the
node took to answer `eth_blockNumber` (the loop's responsiveness), each transfer's
submit-to-receipt time, the blocks produced, and (qbft) the round changes the validators
counted.

    python benchmarks/call_flood.py dev --calls 4 --duration 30
    python benchmarks/call_flood.py qbft --calls 2 --duration 30
    python benchmarks/call_flood.py dev --calls 0            # the same load without the flood
    python benchmarks/call_flood.py dev --calls 2 --tx-interval 0.005   # ~150 transfers/s
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.peers import DEV_MNEMONIC, free_port, wait_for_rpc
from node import localnet

LOOP_CODE = "0x5b5f56"
"""JUMPDEST PUSH0 JUMP: an endless loop, 11 gas a turn."""
TARGET = "0x00000000000000000000000000000000000000aa"
RECIPIENT = "0x00000000000000000000000000000000000000bb"


@dataclass
class Report:
    rtt: list[float] = field(default_factory=list)
    inclusion: list[float] = field(default_factory=list)
    call_times: list[float] = field(default_factory=list)
    call_errors: dict[str, int] = field(default_factory=dict)
    blocks: int = 0
    round_changes: float = 0.0

    def print(self, label: str) -> None:
        def summary(values: list[float]) -> str:
            if not values:
                return "none"
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
            return (
                f"n={len(values)} median={statistics.median(values) * 1000:.0f} ms "
                f"p95={p95 * 1000:.0f} ms max={max(values) * 1000:.0f} ms"
            )

        print(f"== {label}")
        print(f"eth_blockNumber round trip: {summary(self.rtt)}")
        print(f"transfer submit->receipt:  {summary(self.inclusion)}")
        print(f"flood calls finished:      {summary(self.call_times)} {self.call_errors}")
        print(f"blocks produced: {self.blocks}; round changes: {self.round_changes:.0f}")


async def rpc(client: httpx.AsyncClient, url: str, method: str, params: list) -> dict:
    response = await client.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    )
    return response.json()


async def flood(client: httpx.AsyncClient, url: str, stop: float, report: Report) -> None:
    call = [{"to": TARGET}, "latest", {TARGET: {"code": LOOP_CODE}}]
    while time.monotonic() < stop:
        started = time.monotonic()
        try:
            body = await rpc(client, url, "eth_call", call)
            outcome = body.get("error", {}).get("message", "ok")[:40]
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        report.call_times.append(time.monotonic() - started)
        report.call_errors[outcome] = report.call_errors.get(outcome, 0) + 1


async def probe(client: httpx.AsyncClient, url: str, stop: float, report: Report) -> None:
    while time.monotonic() < stop:
        started = time.monotonic()
        await rpc(client, url, "eth_blockNumber", [])
        report.rtt.append(time.monotonic() - started)
        await asyncio.sleep(0.2)


async def transfers(
    client: httpx.AsyncClient, url: str, stop: float, interval: float, report: Report
) -> None:
    Account.enable_unaudited_hdwallet_features()
    sender = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0")
    chain_id = int((await rpc(client, url, "eth_chainId", []))["result"], 16)
    nonce_hex = (await rpc(client, url, "eth_getTransactionCount", [sender.address, "pending"]))[
        "result"
    ]
    nonce = int(nonce_hex, 16)
    waits: list[asyncio.Task] = []

    async def until_mined(tx_hash: str, sent: float) -> None:
        while time.monotonic() < stop + 60:
            body = await rpc(client, url, "eth_getTransactionReceipt", [tx_hash])
            if body.get("result"):
                report.inclusion.append(time.monotonic() - sent)
                return
            await asyncio.sleep(0.1)

    while time.monotonic() < stop:
        signed = sender.sign_transaction(
            {
                "to": RECIPIENT,
                "value": 1,
                "gas": 21_000,
                "gasPrice": 10**9,
                "nonce": nonce,
                "chainId": chain_id,
            }
        )
        nonce += 1
        sent = time.monotonic()
        body = await rpc(
            client, url, "eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()]
        )
        waits.append(asyncio.create_task(until_mined(body["result"], sent)))
        await asyncio.sleep(interval)
    await asyncio.gather(*waits)


async def round_changes(client: httpx.AsyncClient, urls: list[str]) -> float:
    total = 0.0
    for url in urls:
        text = (await client.get(url + "/metrics")).text
        for line in text.splitlines():
            if line.startswith("tally_consensus_round_changes_total"):
                total += float(line.split()[-1])
    return total


async def measure(
    urls: list[str], flood_urls: list[str], calls: int, duration: float, interval: float
) -> Report:
    report = Report()
    limits = httpx.Limits(max_connections=calls * len(flood_urls) + 10)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        first_height = int((await rpc(client, urls[0], "eth_blockNumber", []))["result"], 16)
        before = await round_changes(client, urls)
        stop = time.monotonic() + duration
        tasks = [flood(client, url, stop, report) for url in flood_urls for _ in range(calls)]
        await asyncio.gather(
            *tasks,
            probe(client, urls[0], stop, report),
            transfers(client, urls[0], stop, interval, report),
        )
        last_height = int((await rpc(client, urls[0], "eth_blockNumber", []))["result"], 16)
        report.blocks = last_height - first_height
        report.round_changes = await round_changes(client, urls) - before
    return report


def run_dev(calls: int, duration: float, interval: float, extra: list[str]) -> Report:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        command = [sys.executable, "-m", "node.cli", "dev", "--datadir", f"{tmp}/dev"]
        command += ["--rpc-port", str(port), "--ws-port", str(free_port()), *extra]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_rpc(url, proc=process)
            return asyncio.run(measure([url], [url], calls, duration, interval))
        finally:
            process.terminate()
            process.wait(30)


def run_qbft(calls: int, duration: float, interval: float) -> Report:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        nodes = localnet.up(directory, validators=4, members=0)
        try:
            urls = [node.url for node in nodes]
            time.sleep(5)  # let the validators connect and settle into rounds of height
            return asyncio.run(measure(urls, urls[2:], calls, duration, interval))
        finally:
            localnet.down(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("dev", "qbft"))
    parser.add_argument("--calls", type=int, default=4, help="calls in flight per flooded node")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--tx-interval", type=float, default=0.5, help="seconds between transfers")
    parser.add_argument("extra", nargs="*", help="dev: more `tally dev` options (after --)")
    args = parser.parse_args()
    if args.mode == "dev":
        report = run_dev(args.calls, args.duration, args.tx_interval, args.extra)
    else:
        report = run_qbft(args.calls, args.duration, args.tx_interval)
    report.print(f"{args.mode}: {args.calls} endless calls in flight for {args.duration:.0f} s")


if __name__ == "__main__":
    main()
