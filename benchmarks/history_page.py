"""Account-history page latency over the REST API on a small and a large chain.

The claim under test: a page of an account's history costs the same on a chain of a thousand
transactions as on one of a hundred thousand, because pages are read from indexes written at
block commit (seek to the cursor, read `limit` rows), never by scanning blocks. Each chain is
built on a fresh `tally dev` node from pre-signed plain transfers, all to one account, sent in
batched `eth_sendRawTransaction` requests; then the same pages are timed on both:

- newest: the first page of the account's transactions (limit 50);
- deep: the page after a cursor halfway down the history (a seek into the index);
- walk: ten consecutive pages following `next_cursor`, each timed.

Both nodes stay up and the requests alternate between them, so background load on this shared
machine (LevelDB compaction after the large build, other processes) weighs on both alike.

    python benchmarks/history_page.py                 # 1,000 vs 100,000 transactions
    python benchmarks/history_page.py --large 20000   # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.peers import DEV_MNEMONIC, REPO_ROOT, free_port, stop_process, wait_for_rpc

Account.enable_unaudited_hdwallet_features()

CHAIN_ID = 1337
PER_SENDER_WAVE = 900  # under the pool's 1,024 per sender
SENDERS = 10  # a wave of 9,000 stays near the pool's 8,192 + what blocks drain meanwhile
ROUNDS = 200
SETTLE = 30
PAGE = 50


@contextmanager
def dev_node(workdir: Path) -> Iterator[tuple[str, str]]:
    """A `tally dev` node on a fresh datadir: (url, admin API key)."""
    rpc_port, ws_port = free_port(), free_port()
    datadir = workdir / "data"
    log_path = workdir / "tally.log"
    command = [sys.executable, "-m", "node.cli", "dev", "--datadir"]
    command += [str(datadir), "--rpc-port", str(rpc_port)]
    command += ["--ws-port", str(ws_port), "--admin-port", "0"]
    command += ["--api-rate-limit", "1000000/second"]
    command += ["--api-address-rate-limit", "1000000/second"]  # the benchmark is one client
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        try:
            url = f"http://127.0.0.1:{rpc_port}"
            wait_for_rpc(url, timeout=60, proc=process)
            yield url, (datadir / "api-admin.key").read_text().strip()
        finally:
            stop_process(process)


def rpc_batch(http: httpx.Client, url: str, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
    body = [
        {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
        for i, (method, params) in enumerate(calls)
    ]
    answers = sorted(http.post(url, json=body).json(), key=lambda a: a["id"])
    for answer in answers:
        if "error" in answer:
            raise RuntimeError(f"JSON-RPC error: {answer['error']}")
    return [answer["result"] for answer in answers]


def build_chain(url: str, count: int, target: str) -> None:
    """`count` transfers to `target` from `SENDERS` fresh accounts, waited for wave by wave."""
    http = httpx.Client(timeout=300)
    funder = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0")
    senders = [Account.create() for _ in range(SENDERS)]
    funding = [_sign(funder, s.address, 10**21, n) for n, s in enumerate(senders)]
    rpc_batch(http, url, [("eth_sendRawTransaction", [raw]) for raw in funding])
    _wait_nonce(http, url, funder.address, len(senders))
    nonces = dict.fromkeys((s.address for s in senders), 0)
    remaining, wave = count, 0
    while remaining > 0:
        started = time.perf_counter()
        raws: list[str] = []
        for sender in senders:
            take = min(PER_SENDER_WAVE, remaining - len(raws))
            for _ in range(max(0, take)):
                raws.append(_sign(sender, target, 1, nonces[sender.address]))
                nonces[sender.address] += 1
        for start in range(0, len(raws), 1000):
            part = raws[start : start + 1000]
            rpc_batch(http, url, [("eth_sendRawTransaction", [raw]) for raw in part])
        for sender in senders:
            _wait_nonce(http, url, sender.address, nonces[sender.address])
        remaining -= len(raws)
        wave += 1
        print(
            f"  wave {wave}: {len(raws)} txs in {time.perf_counter() - started:.1f} s "
            f"({count - remaining}/{count})",
            flush=True,
        )


def _sign(account: LocalAccount, to: str, value: int, nonce: int) -> str:
    tx: dict[str, Any] = {
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "gasPrice": 0,
        "gas": 21_000,
        "to": to,
    }
    return "0x" + bytes(account.sign_transaction({**tx, "value": value}).raw_transaction).hex()


def _wait_nonce(http: httpx.Client, url: str, address: str, nonce: int) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        (current,) = rpc_batch(http, url, [("eth_getTransactionCount", [address, "latest"])])
        if int(current, 16) >= nonce:
            return
        time.sleep(0.25)
    raise TimeoutError(f"{address} did not reach nonce {nonce}")


class Pages:
    """Timed page requests against one node's account history."""

    def __init__(self, url: str, key: str, target: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        self.path = f"/api/v1/accounts/{target}/transactions"
        self.middle = self._middle_cursor()
        self.walk_cursor: str | None = None

    def _middle_cursor(self) -> str:
        """A cursor halfway down the history, found by walking it in pages of 100."""
        cursors: list[str] = []
        cursor = None
        while True:
            body = self.http.get(self.path, params={"limit": 100, **_at(cursor)}).json()
            cursor = body["next_cursor"]
            if cursor is None:
                return cursors[len(cursors) // 2]
            cursors.append(cursor)

    def timed(self, shape: str) -> float:
        cursor = {"newest": None, "deep": self.middle, "walk": self.walk_cursor}[shape]
        started = time.perf_counter()
        response = self.http.get(self.path, params={"limit": PAGE, **_at(cursor)})
        elapsed = (time.perf_counter() - started) * 1000
        response.raise_for_status()
        body = response.json()
        if len(body["items"]) != PAGE:
            raise RuntimeError(f"{shape} page held {len(body['items'])} items, not {PAGE}")
        if shape == "walk":  # ten consecutive pages, then from the top again
            self.walk_count = getattr(self, "walk_count", 0) + 1
            self.walk_cursor = None if self.walk_count % 10 == 0 else body["next_cursor"]
        return elapsed


def _at(cursor: str | None) -> dict[str, str]:
    return {"cursor": cursor} if cursor else {}


def measure(pages: dict[int, Pages]) -> dict[int, dict[str, list[float]]]:
    """Latencies (ms) per chain and page shape, the chains alternating request by request so
    that whatever else the machine does weighs on both alike."""
    figures: dict[int, dict[str, list[float]]] = {
        count: {"newest": [], "deep": [], "walk": []} for count in pages
    }
    for _ in range(20):  # warm caches and connections alike on both chains
        for chain in pages.values():
            chain.timed("newest")
    for _ in range(ROUNDS):
        for shape in ("newest", "deep", "walk"):
            for count, chain in pages.items():
                figures[count][shape].append(chain.timed(shape))
    return figures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args(argv)
    target = Account.create().address
    with contextlib.ExitStack() as stack:
        pages: dict[int, Pages] = {}
        for count in (args.small, args.large):
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="tally-history-"))
            print(f"building a chain of {count:,} transactions to {target}", flush=True)
            url, key = stack.enter_context(dev_node(Path(tmp)))
            build_chain(url, count, target)
            pages[count] = Pages(url, key, target)
        print(f"letting the nodes settle {SETTLE} s (LevelDB compaction)", flush=True)
        time.sleep(SETTLE)
        results = measure(pages)
    small, large = results[args.small], results[args.large]
    print()
    print(f"account-history page latency, limit {PAGE}, {ROUNDS} rounds (ms)")
    print(
        f"{'page':8} {'p50 small':>10} {'p50 large':>10} {'p95 small':>10} {'p95 large':>10} "
        f"{'p50 ratio':>10}"
    )
    worst = 0.0
    for shape in ("newest", "deep", "walk"):
        p50s, p50l = percentile(small[shape], 0.5), percentile(large[shape], 0.5)
        p95s, p95l = percentile(small[shape], 0.95), percentile(large[shape], 0.95)
        ratio = p50l / p50s
        worst = max(worst, ratio)
        print(f"{shape:8} {p50s:10.2f} {p50l:10.2f} {p95s:10.2f} {p95l:10.2f} {ratio:10.2f}")
    print(
        f"chains: {args.small:,} vs {args.large:,} transactions; worst p50 ratio {worst:.2f} "
        f"({'under' if worst < 2 else 'NOT under'} 2x)"
    )
    return 0 if worst < 2 else 1


if __name__ == "__main__":
    sys.exit(main())
