"""What TLS costs a JSON-RPC client: the same requests to a plain and a TLS `tally dev` node.

Two nodes run side by side (certificates from `node.certs`, ECDSA P-256, TLS 1.3), and the
rounds alternate between them so the shared machine's background load weighs on both alike:

- keep-alive: sequential `eth_blockNumber` calls over one connection (what web3.py and the
  SDK do): the steady cost of encryption;
- new connection: one connection per call (`Connection: close`): the handshake's cost.

    python benchmarks/tls_overhead.py               # 5 rounds of 300 calls per mode
    python benchmarks/tls_overhead.py --calls 1000
"""

from __future__ import annotations

import argparse
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.peers import REPO_ROOT, free_port, stop_process
from node.certs import write_local_pki

REQUEST = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}


@contextmanager
def dev_node(workdir: Path, tls: bool) -> Iterator[tuple[str, ssl.SSLContext | bool]]:
    """A `tally dev` node: (url, what httpx should verify its certificate with)."""
    rpc_port = free_port()
    command = [sys.executable, "-m", "node.cli", "dev", "--datadir", str(workdir / "data")]
    command += ["--rpc-port", str(rpc_port), "--ws-port", str(free_port()), "--admin-port", "0"]
    verify: ssl.SSLContext | bool = True
    if tls:
        ca = write_local_pki(workdir / "tls", ["node"])
        command += ["--tls-cert", str(workdir / "tls" / "node.crt")]
        command += ["--tls-key", str(workdir / "tls" / "node.key")]
        verify = ssl.create_default_context(cafile=ca)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{rpc_port}"
    with open(workdir / "tally.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.post(url, json=REQUEST, verify=verify, timeout=2).raise_for_status()
                break
            except httpx.HTTPError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"no node: see {workdir / 'tally.log'}") from exc
                time.sleep(0.2)
        yield url, verify
    finally:
        stop_process(proc)


def calls_per_second(url: str, verify: ssl.SSLContext | bool, calls: int, reuse: bool) -> float:
    headers = {} if reuse else {"Connection": "close"}
    with httpx.Client(verify=verify, timeout=30, headers=headers) as client:
        start = time.perf_counter()
        for _ in range(calls):
            client.post(url, json=REQUEST).raise_for_status()
        return calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="Calls per round and mode.")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        nodes = {}
        for name, tls in (("http", False), ("https", True)):
            workdir = Path(tmp) / name
            workdir.mkdir()
            nodes[name] = stack.enter_context(dev_node(workdir, tls))
        results: dict[tuple[str, bool], list[float]] = {}
        for _ in range(args.rounds):
            for reuse in (True, False):
                for name, (url, verify) in nodes.items():
                    rate = calls_per_second(url, verify, args.calls, reuse)
                    results.setdefault((name, reuse), []).append(rate)
    print(f"eth_blockNumber calls per second, median of {args.rounds} rounds of {args.calls}")
    for reuse, mode in ((True, "keep-alive"), (False, "new connection")):
        plain = sorted(results[("http", reuse)])[args.rounds // 2]
        secure = sorted(results[("https", reuse)])[args.rounds // 2]
        print(
            f"  {mode:<15} http {plain:7.0f}  https {secure:7.0f}  https/http {secure / plain:.2f}"
        )


if __name__ == "__main__":
    main()
