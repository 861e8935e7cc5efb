"""Event-stream delivery: lag under load and catch-up speed, on one `tally dev` node.

Lag: WalletToken transfers are offered at `--rate` tx/s by the dev accounts while a webhook
stream (contract WalletToken, event Transfer) delivers to a receiver in this process; each
event's lag is the time its webhook arrived minus the time its block's `newHeads`
notification arrived (the node announces a block right after committing it). The peer in the
same run: the node's plain `eth_subscribe("logs")` notifications for the same logs, which are
live only (no checkpoint, no retries, lost on a disconnect).

Catch-up: after the load, new streams start at the load's first block, so they are `--count`
transfers behind (a subscriber that was down for them); events/s until the last is delivered,
at two batch sizes.

    python benchmarks/streams.py                      # 10,000 transfers at 250 tx/s
    python benchmarks/streams.py --count 2000 --rate 150
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from eth_abi import encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.peers import DEV_MNEMONIC, REPO_ROOT, free_port, stop_process, wait_for_rpc

Account.enable_unaudited_hdwallet_features()
DEV = [Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(10)]
TOKEN = to_checksum_address("0x" + "00" * 18 + "a002")
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
SENDERS = [DEV[i] for i in (3, 4, 6, 7, 8, 9)]
"""Enterprises and customers: accounts the token lets hold and move WalletToken."""


class Receiver:
    """Webhook receiver: arrival time of every event, by stream."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: dict[str, list[tuple[float, tuple[int, int]]]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                now = time.time()
                payload = json.loads(body)
                with receiver.lock:
                    receiver.arrivals.setdefault(payload["subscription"], []).extend(
                        (now, (e["block_number"], e["log_index"])) for e in payload["events"]
                    )
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self, stream_id: str) -> int:
        with self.lock:
            return len(self.arrivals.get(stream_id, []))


class Watcher:
    """newHeads and logs notifications over the node's JSON-RPC WebSocket, timestamped."""

    def __init__(self, socket: ClientConnection) -> None:
        self.heads: dict[int, float] = {}
        self.logs: dict[tuple[int, int], float] = {}
        self.socket = socket
        for i, params in enumerate(
            (["newHeads"], ["logs", {"address": TOKEN, "topics": [TRANSFER_TOPIC]}])
        ):
            self.socket.send(
                json.dumps({"jsonrpc": "2.0", "id": i, "method": "eth_subscribe", "params": params})
            )
        self.kinds: dict[str, str] = {}
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        pending = {0: "heads", 1: "logs"}
        with contextlib.suppress(ConnectionClosed):
            for raw in self.socket:
                self._note(json.loads(raw), time.time(), pending)

    def _note(self, message: dict[str, Any], now: float, pending: dict[int, str]) -> None:
        if "id" in message:
            self.kinds[message["result"]] = pending[message["id"]]
            return
        result = message["params"]["result"]
        if self.kinds.get(message["params"]["subscription"]) == "heads":
            self.heads[int(result["number"], 16)] = now
        else:
            self.logs[(int(result["blockNumber"], 16), int(result["logIndex"], 16))] = now


def rpc(http: httpx.Client, url: str, method: str, params: list) -> Any:
    answer = http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    body = answer.json()
    if "error" in body:
        raise RuntimeError(body["error"])
    return body["result"]


def call(signature: str, types: list[str], values: list[Any]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, values)


def signed(account: Any, nonce: int, data: bytes) -> str:
    tx = {
        "chainId": 1337,
        "nonce": nonce,
        "gasPrice": 0,
        "gas": 300_000,
        "to": TOKEN,
        "value": 0,
        "data": data,
    }
    return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()


def send_all(http: httpx.Client, url: str, raws: list[str]) -> None:
    body = [
        {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [r]}
        for i, r in enumerate(raws)
    ]
    for answer in http.post(url, json=body).json():
        if "error" in answer:
            raise RuntimeError(answer["error"])


def wait_mined(http: httpx.Client, url: str, tx_hash: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        receipt = rpc(http, url, "eth_getTransactionReceipt", [tx_hash])
        if receipt:
            return receipt
        time.sleep(0.2)
    raise RuntimeError(f"{tx_hash} not mined")


def transfer_logs(http: httpx.Client, url: str, first: int, last: int) -> list[tuple[int, int]]:
    found = []
    for start in range(first, last + 1, 10):
        logs = rpc(
            http,
            url,
            "eth_getLogs",
            [
                {
                    "fromBlock": hex(start),
                    "toBlock": hex(min(last, start + 9)),
                    "address": TOKEN,
                    "topics": [TRANSFER_TOPIC],
                }
            ],
        )
        found += [(int(x["blockNumber"], 16), int(x["logIndex"], 16)) for x in logs]
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="Transfers in the load.")
    parser.add_argument("--rate", type=int, default=250, help="Transfers offered per second.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="streams-bench-"))
    rpc_port, ws_port = free_port(), free_port()
    log = open(workdir / "tally.log", "wb")  # noqa: SIM115 - the node's output, kept for a post-mortem
    node = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "node.cli",
            "dev",
            "--datadir",
            str(workdir / "data"),
            "--rpc-port",
            str(rpc_port),
            "--ws-port",
            str(ws_port),
            "--admin-port",
            "0",
            "--api-rate-limit",
            "1000000/minute",
            "--api-address-rate-limit",
            "1000000/minute",
            "--api-webhook-hosts",
            "127.0.0.1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    try:
        url = f"http://127.0.0.1:{rpc_port}"
        wait_for_rpc(url, timeout=60, proc=node)
        run(args, url, f"ws://127.0.0.1:{ws_port}", workdir)
    finally:
        stop_process(node)
        log.close()


def fund_senders(http: httpx.Client, url: str, amount: int) -> dict[str, int]:
    """Mint `amount` WalletToken to each of `SENDERS` (the issuer is dev account 1) and wait
    for the last mint; the senders' next nonces."""
    issuer = DEV[1]
    nonces = {
        a.address: int(rpc(http, url, "eth_getTransactionCount", [a.address, "pending"]), 16)
        for a in [issuer, *SENDERS]
    }
    mints = [
        signed(
            issuer,
            nonces[issuer.address] + i,
            call(
                "mint(address,uint256,bytes32)",
                ["address", "uint256", "bytes32"],
                [a.address, amount, (i + 1).to_bytes(32, "big")],
            ),
        )
        for i, a in enumerate(SENDERS)
    ]
    send_all(http, url, mints)
    wait_mined(http, url, "0x" + keccak(bytes.fromhex(mints[-1][2:])).hex())
    return nonces


def run(args: argparse.Namespace, url: str, ws_url: str, workdir: Path) -> None:
    http = httpx.Client(timeout=120)
    key = (workdir / "data" / "api-admin.key").read_text().strip()
    api = httpx.Client(
        base_url=url + "/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    receiver = Receiver()
    hook = f"http://127.0.0.1:{receiver.port}/hook"
    nonces = fund_senders(http, url, 10**15)

    print(f"signing {args.count} transfers ...", flush=True)
    raws = []
    for i in range(args.count):
        payer, payee = SENDERS[i % len(SENDERS)], SENDERS[(i + 1) % len(SENDERS)]
        data = call("transfer(address,uint256)", ["address", "uint256"], [payee.address, 1])
        raws.append(signed(payer, nonces[payer.address], data))
        nonces[payer.address] += 1

    with connect(ws_url, max_size=None) as socket:
        measure(args, http, url, api, receiver, hook, raws, Watcher(socket))


def measure(
    args: argparse.Namespace,
    http: httpx.Client,
    url: str,
    api: httpx.Client,
    receiver: Receiver,
    hook: str,
    raws: list[str],
    watcher: Watcher,
) -> None:
    start = int(rpc(http, url, "eth_blockNumber", []), 16) + 1
    live = api.post(
        "/streams",
        json={
            "delivery": "webhook",
            "url": hook,
            "contracts": [TOKEN],
            "events": ["Transfer"],
            "from_block": start,
        },
    ).json()
    print(f"offering {args.count} transfers at {args.rate} tx/s ...", flush=True)
    began, chunk = time.monotonic(), max(1, args.rate // 10)
    for n, offset in enumerate(range(0, len(raws), chunk)):
        send_all(http, url, raws[offset : offset + chunk])
        time.sleep(max(0.0, began + (n + 1) * 0.1 - time.monotonic()))
    last = wait_mined(http, url, "0x" + keccak(bytes.fromhex(raws[-1][2:])).hex())
    expected = transfer_logs(http, url, start, int(last["blockNumber"], 16))
    deadline = time.monotonic() + 300
    while receiver.count(live["id"]) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.2)
    arrivals = receiver.arrivals[live["id"]]
    got = [p for _, p in arrivals]
    assert got == expected, "the live stream's events differ from eth_getLogs"
    lags = [t - watcher.heads[p[0]] for t, p in arrivals if p[0] in watcher.heads]
    peer = [t - watcher.heads[p[0]] for p, t in watcher.logs.items() if p[0] in watcher.heads]
    blocks = int(last["blockNumber"], 16) - start + 1
    print(
        f"load: {len(expected)} Transfer events in {blocks} blocks "
        f"({args.count / (time.monotonic() - began):.0f} tx/s end to end)"
    )
    print(
        f"webhook lag  p50 {statistics.median(lags) * 1000:.0f} ms, "
        f"p95 {percentile(lags, 0.95) * 1000:.0f} ms ({len(lags)} events)"
    )
    print(
        f"peer eth_subscribe logs lag p50 {statistics.median(peer) * 1000:.0f} ms, "
        f"p95 {percentile(peer, 0.95) * 1000:.0f} ms ({len(peer)} events)"
    )

    for batch in (100, 500):
        t0 = time.time()
        created = api.post(
            "/streams",
            json={
                "delivery": "webhook",
                "url": hook,
                "contracts": [TOKEN],
                "events": ["Transfer"],
                "from_block": start,
                "batch_size": batch,
            },
        )
        if created.status_code != 201:
            raise RuntimeError(f"stream refused: {created.text}")
        stream = created.json()
        while receiver.count(stream["id"]) < len(expected):
            time.sleep(0.05)
        elapsed = receiver.arrivals[stream["id"]][-1][0] - t0
        assert [p for _, p in receiver.arrivals[stream["id"]]] == expected
        print(
            f"catch-up of {len(expected)} events, batch {batch}: {elapsed:.2f} s, "
            f"{len(expected) / elapsed:,.0f} events/s"
        )


if __name__ == "__main__":
    main()
