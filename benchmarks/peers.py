"""Run reference nodes (foundry's anvil) next to Tally for benchmarks and client tests.

anvil and cast come from the pinned npm packages (``@foundry-rs/anvil``, ``@foundry-rs/cast``):
npm installs the platform binary under ``node_modules/@foundry-rs/<tool>-<os>-<arch>/bin``, and
we call it directly rather than through the package's node shim, which would add a Node start-up
and an extra process between us and the signal we send to stop it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEV_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_CHAIN_ID = 1337


def find_foundry_binary(name: str) -> Path:
    """Return the path of foundry's ``name`` binary (``anvil`` or ``cast``) from node_modules.

    Raises FileNotFoundError with the fix (``npm ci``) when it is not installed.
    """
    base = REPO_ROOT / "node_modules" / "@foundry-rs"
    for candidate in sorted(base.glob(f"{name}-linux-*/bin/{name}")):
        if os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"{name} not found under {base}/{name}-linux-*/bin/; run `npm ci`")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_rpc(
    url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> int:
    """Poll ``eth_chainId`` at ``url`` until it answers; return the chain id.

    Raises TimeoutError after ``timeout`` seconds, or RuntimeError at once if ``proc`` exits,
    so a node that fails to start is reported instead of waited on.
    """
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"node exited with code {proc.returncode} before its RPC answered")
        try:
            req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as resp:
                return int(json.loads(resp.read())["result"], 16)
        except (OSError, ValueError, KeyError) as exc:
            last_error = exc
            time.sleep(0.1)
    raise TimeoutError(f"no JSON-RPC answer from {url} within {timeout}s: {last_error}")


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a node we started: SIGINT (clean shutdown), then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def run_anvil(
    port: int,
    block_time: float | None,
    log_path: Path | None = None,
    gas_limit: int | None = None,
) -> Iterator[str]:
    """Start anvil on 127.0.0.1:``port`` (chain id 1337, dev mnemonic accounts); yield its URL.

    ``block_time`` None means anvil's automine (a block per transaction); a number seals blocks
    on that timer, which is the fair comparison with Tally's ``--block-period``. ``gas_limit``
    None keeps anvil's default (30M, half of Tally's): a throughput comparison must pass Tally's
    so neither side is capped by gas. anvil is killed on exit even if the body raises.
    """
    cmd = [
        str(find_foundry_binary("anvil")),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(ANVIL_CHAIN_ID),
        "--mnemonic",
        DEV_MNEMONIC,
    ]
    if block_time is not None:
        cmd += ["--block-time", f"{block_time:g}"]
    if gas_limit is not None:
        cmd += ["--gas-limit", str(gas_limit)]
    with ExitStack() as stack:
        log = stack.enter_context(open(log_path, "wb")) if log_path else subprocess.DEVNULL
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_rpc(url, timeout=30, proc=proc)
            yield url
        finally:
            stop_process(proc)
