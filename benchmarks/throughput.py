"""Submit-to-receipt throughput and latency over JSON-RPC: Tally against anvil.

Why this shape: the number that matters to a wallet is how fast a node turns signed
transactions into receipts, so everything a client does before submitting (key derivation,
signing, nonce bookkeeping) happens before the clock starts. Transactions go in as raw
``eth_sendRawTransaction`` JSON-RPC batches, which is what a busy gateway does, and a second
thread watches for them to become final, so submitting and observing overlap: by default it
reads each new block's transaction hashes (then fetches each receipt once, to check it);
``--observe receipts`` instead polls every outstanding receipt on each new block, which puts
tens of thousands of lookups on the node under test during a run.

Configured alike, or the ratio means nothing: every timed target seals blocks on the same
period (anvil ``--block-time``, Tally ``--block-period``, ``--block-period`` here, 1 s by
default), so latency includes waiting for the next block on each, and anvil is started with
Tally's block gas limit (60M; anvil's own default of 30M caps it at ~1,430 transfers a block,
which once made Tally look faster than it is). Each target's gas limit is read back from its
latest block and printed beside its figures. ``anvil-auto`` (anvil's automine, a block per
transaction) is a second reference: the fastest anvil can take transactions in.

    python benchmarks/throughput.py --count 2000
    python benchmarks/throughput.py --targets anvil,anvil-auto,tally --count 4000
    python benchmarks/throughput.py --targets anvil,tally,qbft4 --count 6000
    python benchmarks/throughput.py --targets qbft4 --workloads erc20 --rate 200
    python benchmarks/throughput.py --targets anvil --count 500
    python benchmarks/throughput.py --targets tally --tally-url http://127.0.0.1:8545
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.peers import (
    DEV_MNEMONIC,
    free_port,
    run_anvil,
    stop_process,
    wait_for_rpc,
)
from contracts import load_artifact
from node import localnet
from node.chain.genesis import DEFAULT_GAS_LIMIT

Account.enable_unaudited_hdwallet_features()

TOKEN_SUPPLY = 10**9 * 10**18
ETH_VALUE = 10**12  # wei per plain transfer
TOKEN_VALUE = 10**18  # token units per ERC-20 transfer
GAS_ETH = 21_000
GAS_ERC20 = 60_000
TRANSFER_SELECTOR = function_signature_to_4byte_selector("transfer(address,uint256)")
BALANCE_OF_SELECTOR = function_signature_to_4byte_selector("balanceOf(address)")


class BenchError(RuntimeError):
    """A check failed: the run's figures must not be trusted."""


class Rpc:
    """Minimal JSON-RPC over HTTP with batching; one per thread (httpx.Client is not shared)."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url
        self.client = httpx.Client(timeout=timeout)
        self._id = 0

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return self.batch([(method, params)])[0]

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Send calls as one batch; return results in order, raising on any JSON-RPC error."""
        body = []
        for method, params in calls:
            self._id += 1
            body.append(
                {"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)}
            )
        resp = self.client.post(self.url, json=body)
        resp.raise_for_status()
        answers = resp.json()
        if not isinstance(answers, list):
            raise BenchError(f"batch answered with a non-list: {str(answers)[:300]}")
        by_id = {a.get("id"): a for a in answers}
        out = []
        for req in body:
            ans = by_id.get(req["id"])
            if ans is None:
                raise BenchError(f"no answer for {req['method']} (id {req['id']})")
            if "error" in ans:
                raise BenchError(f"{req['method']} failed: {ans['error']}")
            out.append(ans.get("result"))
        return out


@dataclass
class Result:
    """One target x workload measurement."""

    target: str
    workload: str
    count: int
    tx_per_s: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    submit_s: float
    blocks: int
    gas_limit: int
    """The block gas limit the target reported: the same on every target, or unfair."""


@dataclass
class Chain:
    """What the signer needs to know about the node it signs for."""

    chain_id: int
    gas_price: int


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def sign(
    acct: LocalAccount, chain: Chain, nonce: int, to: str | None, value: int, data: bytes, gas: int
) -> tuple[str, str]:
    """Sign a legacy EIP-155 transaction; return (raw hex, tx hash hex).

    Legacy rather than EIP-1559 because a private chain at gas price zero has no fee market to
    express, and every node accepts legacy transactions.
    """
    tx: dict[str, Any] = {
        "chainId": chain.chain_id,
        "nonce": nonce,
        "gasPrice": chain.gas_price,
        "gas": gas,
        "value": value,
        "data": data,
    }
    if to is not None:
        tx["to"] = to
    signed = acct.sign_transaction(tx)
    return "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()


def wait_receipts(rpc: Rpc, hashes: Sequence[str], timeout: float) -> list[dict[str, Any]]:
    """Wait (bounded) for all receipts during setup; fail on a missing or failed one."""
    deadline = time.monotonic() + timeout
    receipts: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        pending = [h for h in hashes if h not in receipts]
        if not pending:
            break
        for part in chunks(pending, 500):
            for h, r in zip(
                part, rpc.batch([("eth_getTransactionReceipt", [h]) for h in part]), strict=True
            ):
                if r is not None:
                    receipts[h] = r
        time.sleep(0.2)
    missing = [h for h in hashes if h not in receipts]
    if missing:
        raise BenchError(f"{len(missing)} setup receipts missing after {timeout}s: {missing[:3]}")
    failed = [h for h in hashes if int(receipts[h]["status"], 16) != 1]
    if failed:
        raise BenchError(f"setup transactions failed (status 0): {failed[:3]}")
    return [receipts[h] for h in hashes]


def erc20_transfer_data(to: str, amount: int) -> bytes:
    return TRANSFER_SELECTOR + encode(["address", "uint256"], [to, amount])


def balances(rpc: Rpc, token: str | None, addrs: Sequence[str]) -> list[int]:
    """ETH balances (token None) or token balances of ``addrs``, batched."""
    out: list[int] = []
    for part in chunks(addrs, 200):
        if token is None:
            calls = [("eth_getBalance", [a, "latest"]) for a in part]
        else:
            calls = [
                (
                    "eth_call",
                    [
                        {
                            "to": token,
                            "data": "0x" + (BALANCE_OF_SELECTOR + encode(["address"], [a])).hex(),
                        },
                        "latest",
                    ],
                )
                for a in part
            ]
        out += [int(r, 16) for r in rpc.batch(calls)]
    return out


class Setup:
    """Deploys DevToken and funds fresh senders with ETH and tokens (before any clock starts)."""

    def __init__(self, rpc: Rpc, senders: int, count: int, timeout: float) -> None:
        self.rpc = rpc
        self.dev: LocalAccount = Account.from_mnemonic(
            DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0"
        )
        gas_price = int(rpc.call("eth_gasPrice"), 16)
        # Headroom: full 1 s blocks push an EIP-1559 base fee up 12.5% a block while we submit.
        self.chain = Chain(int(rpc.call("eth_chainId"), 16), gas_price * 3)
        self.senders: list[LocalAccount] = [Account.create() for _ in range(senders)]
        per_sender = -(-count // senders)
        nonce = int(rpc.call("eth_getTransactionCount", [self.dev.address, "pending"]), 16)

        raw, txh = sign(
            self.dev,
            self.chain,
            nonce,
            None,
            0,
            bytes.fromhex(load_artifact("DevToken")["bytecode"][2:])
            + encode(["uint256"], [TOKEN_SUPPLY]),
            3_000_000,
        )
        rpc.call("eth_sendRawTransaction", [raw])
        self.token = to_checksum_address(wait_receipts(rpc, [txh], timeout)[0]["contractAddress"])
        nonce += 1

        eth_each = per_sender * (ETH_VALUE + GAS_ERC20 * self.chain.gas_price) * 2 + 10**16
        tok_each = per_sender * TOKEN_VALUE
        raws: list[str] = []
        hashes: list[str] = []
        for s in self.senders:
            for to, value, data, gas in (
                (s.address, eth_each, b"", GAS_ETH),
                (self.token, 0, erc20_transfer_data(s.address, tok_each), GAS_ERC20),
            ):
                r, h = sign(self.dev, self.chain, nonce, to, value, data, gas)
                nonce += 1
                raws.append(r)
                hashes.append(h)
        for part in chunks(raws, 200):
            rpc.batch([("eth_sendRawTransaction", [r]) for r in part])
        wait_receipts(rpc, hashes, timeout)


def run_workload(
    url: str,
    setup: Setup,
    workload: str,
    count: int,
    batch: int,
    poll: float,
    timeout: float,
    target: str,
    rate: float | None = None,
    observe: str = "blocks",
    recipients: Sequence[str] | None = None,
    token_value: int = TOKEN_VALUE,
) -> Result:
    """Pre-sign ``count`` transfers, submit in batches, and time each until its receipt.

    With ``rate`` (tx/s) the batches are paced to that offered load instead of sent at once,
    which is how finality latency is measured below saturation.

    ``observe`` is how finality is noticed. "blocks" reads each new block's transaction
    hashes (a transaction is final, its receipt readable, from the block that holds it) and
    fetches each receipt once, to check it. "receipts" asks for every outstanding receipt on
    every new block, as a naive wallet would; with thousands outstanding that is tens of
    thousands of lookups per transfer run, all on the node under test, which then measures
    the poller as much as the node (on a 4-validator localnet it is one validator's load).

    ``recipients`` (default: 200 fresh accounts) and ``token_value`` let a token that pays
    only known holders, in limited amounts (WalletToken), run the same workload; balances are
    checked as changes from before the run, so recipients may hold something already.
    """
    rpc = setup.rpc
    if recipients is None:
        recipients = [Account.create().address for _ in range(min(count, 200))]
    nonces = [
        int(n, 16)
        for n in rpc.batch(
            [("eth_getTransactionCount", [s.address, "pending"]) for s in setup.senders]
        )
    ]
    raws: list[str] = []
    hashes: list[str] = []
    expected: dict[str, int] = {}
    for i in range(count):
        k = i % len(setup.senders)
        rcpt = recipients[i % len(recipients)]
        if workload == "eth":
            r, h = sign(setup.senders[k], setup.chain, nonces[k], rcpt, ETH_VALUE, b"", GAS_ETH)
            expected[rcpt] = expected.get(rcpt, 0) + ETH_VALUE
        else:
            r, h = sign(
                setup.senders[k],
                setup.chain,
                nonces[k],
                setup.token,
                0,
                erc20_transfer_data(rcpt, token_value),
                GAS_ERC20,
            )
            expected[rcpt] = expected.get(rcpt, 0) + token_value
        nonces[k] += 1
        raws.append(r)
        hashes.append(h)

    submitted: dict[str, float] = {}  # tx hash -> submit time of its batch
    seen: dict[str, float] = {}  # tx hash -> time its receipt was first seen
    receipts: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    done = threading.Event()
    poll_error: list[BaseException] = []

    def poller() -> None:
        prpc = Rpc(url)
        try:
            if observe == "blocks":
                watch_blocks(prpc)
            else:
                sweep_receipts(prpc)
        except BaseException as exc:  # reported by the main thread
            poll_error.append(exc)
        finally:
            prpc.close()

    def watch_blocks(prpc: Rpc) -> None:
        """On each new block, read its transaction hashes: ours in it are final from then."""
        ours = set(hashes)
        last_block = start_block
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done.is_set():
            head = int(prpc.call("eth_blockNumber"), 16)
            if head > last_block:
                numbers = range(last_block + 1, head + 1)
                blocks = prpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
                t = time.monotonic()
                new = [h.lower() for b in blocks for h in b["transactions"] if h.lower() in ours]
                with lock:
                    for h in new:
                        seen.setdefault(h, t)
                for part in chunks(new, 500):
                    res = prpc.batch([("eth_getTransactionReceipt", [h]) for h in part])
                    with lock:
                        receipts.update(zip(part, res, strict=True))
                last_block = head
                with lock:
                    if len(seen) == count:
                        return
            time.sleep(poll)

    def sweep_receipts(prpc: Rpc) -> None:
        """Ask for every outstanding receipt whenever a block appears (or every 2 s)."""
        last_block = -1
        last_sweep = 0.0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done.is_set():
            block = int(prpc.call("eth_blockNumber"), 16)
            now = time.monotonic()
            if block != last_block or now - last_sweep > 2.0:
                last_block, last_sweep = block, now
                with lock:
                    pending = [h for h in submitted if h not in seen]
                for part in chunks(pending, 500):
                    res = prpc.batch([("eth_getTransactionReceipt", [h]) for h in part])
                    t = time.monotonic()
                    with lock:
                        for h, r in zip(part, res, strict=True):
                            if r is not None:
                                seen[h] = t
                                receipts[h] = r
                with lock:
                    if len(seen) == count:
                        return
            time.sleep(poll)

    token = None if workload == "eth" else setup.token
    before = balances(rpc, token, list(expected))
    holders = [setup.dev.address] + [s.address for s in setup.senders] + list(expected)
    supply_before = sum(balances(rpc, setup.token, holders)) if token else 0
    start_block = int(rpc.call("eth_blockNumber"), 16)  # before anything is submitted
    thread = threading.Thread(target=poller, daemon=True)
    thread.start()
    t0 = time.monotonic()
    try:
        sent = 0
        for part_raw, part_hash in zip(chunks(raws, batch), chunks(hashes, batch), strict=True):
            if rate:
                ahead = sent / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
            sent += len(part_raw)
            t = time.monotonic()
            res = rpc.batch([("eth_sendRawTransaction", [r]) for r in part_raw])
            for want, got in zip(part_hash, res, strict=True):
                if str(got).lower() != want:
                    raise BenchError(f"node returned tx hash {got}, expected {want}")
            with lock:
                submitted.update((h, t) for h in part_hash)
        t_submitted = time.monotonic() - t0
        thread.join(timeout + 10)
    finally:
        done.set()
    if poll_error:
        raise BenchError(f"receipt poller failed: {poll_error[0]!r}")
    if len(seen) != count:
        raise BenchError(
            f"{target}/{workload}: only {len(seen)}/{count} receipts within {timeout}s"
        )
    missing = [h for h in hashes if receipts.get(h) is None]
    if missing:
        raise BenchError(f"{target}/{workload}: no receipt for included {missing[:3]}")
    failed = [h for h in hashes if int(receipts[h]["status"], 16) != 1]
    if failed:
        raise BenchError(f"{target}/{workload}: {len(failed)} receipts with status 0: {failed[:3]}")

    got = balances(rpc, token, list(expected))
    for (addr, want), had, have in zip(expected.items(), before, got, strict=True):
        if had + want != have:
            raise BenchError(
                f"{target}/{workload}: balance of {addr} is {have}, expected {had + want}"
            )
    if token:
        total = sum(balances(rpc, token, holders))
        if total != supply_before:
            raise BenchError(f"{target}: token balances sum to {total}, were {supply_before}")

    lat = sorted((seen[h] - submitted[h]) * 1000 for h in hashes)
    blocks = {int(receipts[h]["blockNumber"], 16) for h in hashes}
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
    return Result(
        target=target,
        workload=workload,
        count=count,
        tx_per_s=count / (max(seen.values()) - t0),
        p50_ms=q[49],
        p95_ms=q[94],
        max_ms=lat[-1],
        submit_s=t_submitted,
        blocks=len(blocks),
        gas_limit=int(rpc.call("eth_getBlockByNumber", ["latest", False])["gasLimit"], 16),
    )


@contextmanager
def run_tally(workdir: Path, block_period: int = 1) -> Iterator[str]:
    """Start ``tally dev`` on loopback ports in a temporary datadir; stop it on exit."""
    rpc_port, ws_port = free_port(), free_port()
    cmd = [
        sys.executable,
        "-m",
        "tally_cli",
        "dev",
        "--datadir",
        str(workdir / "data"),
        "--rpc-port",
        str(rpc_port),
        "--ws-port",
        str(ws_port),
        "--block-period",
        str(block_period),
        "--admin-port",
        "0",
    ]
    log_path = workdir / "tally.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{rpc_port}"
            try:
                wait_for_rpc(url, timeout=60, proc=proc)
            except (RuntimeError, TimeoutError) as exc:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise BenchError(
                    f"tally did not start: {exc}\n--- tally.log tail ---\n{tail}"
                ) from exc
            yield url
        finally:
            stop_process(proc)


@contextmanager
def workdir(keep: Path | None, target: str) -> Iterator[str]:
    """A fresh directory for a target's nodes: temporary, or `keep/target` kept afterwards."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix=f"tally-{target}-") as tmp:
            yield tmp
        return
    path = keep / target
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    yield str(path)


@contextmanager
def nudging(url: str, every: float = 0.25) -> Iterator[None]:
    """Ask anvil's automine for a block every `every` seconds while the body runs.

    Automine mines when a transaction arrives; one that arrives ahead of its sender's nonce
    waits, and if nothing arrives after the gap is filled it waits for good (two of every
    three transactions of a batched run were left so). `evm_mine` takes the waiting ones.
    """
    stop = threading.Event()

    def nudge() -> None:
        rpc = Rpc(url)
        try:
            while not stop.wait(every):
                rpc.call("evm_mine")
        finally:
            rpc.close()

    thread = threading.Thread(target=nudge, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def bench_target(target: str, url: str, args: argparse.Namespace) -> list[Result]:
    if target == "anvil-auto":
        with nudging(url):
            return _bench_target(target, url, args)
    return _bench_target(target, url, args)


def _bench_target(target: str, url: str, args: argparse.Namespace) -> list[Result]:
    rpc = Rpc(url)
    try:
        setup = Setup(rpc, args.senders, args.count, args.timeout)
        results = []
        for wl in args.workloads.split(","):
            r = run_workload(
                url,
                setup,
                wl,
                args.count,
                args.batch,
                args.poll,
                args.timeout,
                target,
                rate=args.rate,
                observe=args.observe,
            )
            print(
                f"  {target:6} {wl:6} {r.tx_per_s:9.1f} tx/s  p50 {r.p50_ms:7.0f} ms  "
                f"p95 {r.p95_ms:7.0f} ms  ({r.blocks} blocks, submit {r.submit_s:.2f} s)",
                flush=True,
            )
            results.append(r)
        return results
    finally:
        rpc.close()


REFERENCES = ("anvil", "anvil-auto")
"""The peers every other target is given as a ratio against, when they ran."""


def print_table(results: list[Result], errors: dict[str, str], block_period: int) -> None:
    bases = {
        reference: {r.workload: r for r in results if r.target == reference}
        for reference in REFERENCES
    }
    headers = [
        "target",
        "workload",
        "txs",
        "tx/s",
        "p50 ms",
        "p95 ms",
        "max ms",
        "blocks",
        "gas limit",
        *(f"tx/s vs {reference}" for reference in REFERENCES),
    ]
    rows = []
    for r in results:
        ratios = [
            f"{r.tx_per_s / base[r.workload].tx_per_s:.2f}x"
            if r.target != reference and r.workload in base
            else ""
            for reference, base in bases.items()
        ]
        rows.append(
            [
                r.target,
                r.workload,
                str(r.count),
                f"{r.tx_per_s:.1f}",
                f"{r.p50_ms:.0f}",
                f"{r.p95_ms:.0f}",
                f"{r.max_ms:.0f}",
                str(r.blocks),
                f"{r.gas_limit:,}",
                *ratios,
            ]
        )
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    else:
        table = Table(
            title=f"submit-to-receipt, blocks every {block_period} s "
            "(anvil-auto: a block per transaction)"
        )
        for h in headers:
            table.add_column(h, justify="left" if h in ("target", "workload") else "right")
        for row in rows:
            table.add_row(*row)
        Console(width=max(150, Console().width)).print(table)
    for target, err in errors.items():
        print(f"{target}: FAILED: {err}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=2000, help="transactions per workload")
    ap.add_argument(
        "--targets",
        default="anvil,anvil-auto,tally",
        help="comma list of anvil,anvil-auto,tally,qbft4",
    )
    ap.add_argument(
        "--block-period", type=int, default=1, help="seconds between blocks on every timed target"
    )
    ap.add_argument(
        "--rate", type=float, help="offered load in tx/s (default: submit everything at once)"
    )
    ap.add_argument("--workloads", default="eth,erc20", help="comma list of eth,erc20")
    ap.add_argument("--senders", type=int, default=50, help="fresh sender accounts")
    ap.add_argument("--batch", type=int, default=200, help="transactions per JSON-RPC batch")
    ap.add_argument("--poll", type=float, default=0.05, help="eth_blockNumber poll interval (s)")
    ap.add_argument(
        "--observe",
        choices=("blocks", "receipts"),
        default="blocks",
        help="notice finality from new blocks' transaction lists (default) or by polling "
        "every outstanding receipt on each new block",
    )
    ap.add_argument("--timeout", type=float, default=300.0, help="per-workload receipt timeout")
    ap.add_argument("--tally-url", help="use this running Tally node instead of starting one")
    ap.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    ap.add_argument(
        "--keep", type=Path, help="keep the started nodes' datadirs and logs under this directory"
    )
    args = ap.parse_args(argv)

    targets = [t for t in args.targets.split(",") if t]
    known_targets = {*REFERENCES, "tally", "qbft4"}
    unknown = set(targets) - known_targets | set(args.workloads.split(",")) - {"eth", "erc20"}
    if unknown:
        ap.error(f"unknown target/workload: {', '.join(sorted(unknown))}")
    results: list[Result] = []
    errors: dict[str, str] = {}
    for target in targets:
        print(f"{target}: starting", flush=True)
        try:
            if target in REFERENCES:
                block_time = float(args.block_period) if target == "anvil" else None
                print(f"{target}: --block-time {block_time} --gas-limit {DEFAULT_GAS_LIMIT:,}")
                with run_anvil(free_port(), block_time, gas_limit=DEFAULT_GAS_LIMIT) as url:
                    results += bench_target(target, url, args)
            elif target == "qbft4":
                with workdir(args.keep, "qbft4") as tmp:
                    nodes = localnet.up(
                        Path(tmp) / "net",
                        validators=4,
                        members=0,
                        block_period=args.block_period,
                    )
                    try:
                        print(
                            f"qbft4: 4-validator localnet, submitting to {nodes[0].url}", flush=True
                        )
                        results += bench_target(target, nodes[0].url, args)
                    finally:
                        localnet.down(Path(tmp) / "net")
            elif args.tally_url:
                print(f"tally: using running node at {args.tally_url}", flush=True)
                results += bench_target(target, args.tally_url, args)
            else:
                with (
                    workdir(args.keep, "tally") as tmp,
                    run_tally(Path(tmp), args.block_period) as url,
                ):
                    print(f"tally: `tally dev --block-period {args.block_period}` at {url}")
                    results += bench_target(target, url, args)
        except (BenchError, httpx.HTTPError, OSError) as exc:
            errors[target] = str(exc)
        except Exception as exc:  # a node answering nonsense must not hide the other target
            traceback.print_exc()
            errors[target] = f"{type(exc).__name__}: {exc}"
    print_table(results, errors, args.block_period)
    if args.json:
        args.json.write_text(
            json.dumps({"results": [asdict(r) for r in results], "errors": errors}, indent=2) + "\n"
        )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
