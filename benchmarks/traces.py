"""How long a trace takes on Tally, against anvil tracing the same transaction in the same run.

Both chains get the same transactions from the same key (`TraceProbe.exercise`: nested calls,
a caught revert, DELEGATECALL, STATICCALL, two precompiles, CREATE, CREATE2, SELFDESTRUCT,
logs); each trace method is then timed `--runs` times and the medians printed with the ratio.
Tally replays the block from its parent's state for every request (it keeps every state);
anvil keeps its executed transactions in memory.

    python benchmarks/traces.py --runs 10
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.peers import DEV_MNEMONIC, find_foundry_binary, free_port, wait_for_rpc
from contracts import load_artifact

USER = Account.from_key(b"\x42" * 32)
METHODS: list[tuple[str, str, Any]] = [
    ("callTracer", "debug_traceTransaction", {"tracer": "callTracer"}),
    ("prestateTracer", "debug_traceTransaction", {"tracer": "prestateTracer"}),
    ("struct logs", "debug_traceTransaction", {}),
    ("trace_transaction", "trace_transaction", None),
]


def _send(w3: Web3, account: Any, tx: dict) -> Any:
    full = {
        "chainId": w3.eth.chain_id,
        "gas": 3_000_000,
        "gasPrice": 0,
        "nonce": w3.eth.get_transaction_count(account.address),
        **tx,
    }
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(full).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)


def workload(url: str) -> str:
    """The exercise transaction's hash, after funding, deploying and calling the probe."""
    w3 = Web3(Web3.HTTPProvider(url))
    Account.enable_unaudited_hdwallet_features()
    dev = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0")
    _send(w3, dev, {"to": USER.address, "value": 10**20, "gas": 21_000})
    artifact = load_artifact("TraceProbe")
    probe = _send(w3, USER, {"data": artifact["bytecode"]}).contractAddress
    contract = w3.eth.contract(address=probe, abi=artifact["abi"])
    data = contract.encode_abi("exercise", [b"\x07" * 32])
    return "0x" + bytes(_send(w3, USER, {"to": probe, "data": data}).transactionHash).hex()


def timed(url: str, method: str, params: list, runs: int) -> float:
    """Median seconds of `runs` requests (after one warm-up)."""
    samples = []
    with httpx.Client(timeout=60) as client:
        for run in range(runs + 1):
            started = time.perf_counter()
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            answer = client.post(url, json=body).json()
            if "error" in answer:
                raise RuntimeError(f"{method}: {answer['error']}")
            if run:
                samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port, anvil_port = free_port(), free_port()
        node_args = ["--rpc-port", str(port), "--ws-port", str(free_port()), "--admin-port", "0"]
        node = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "dev", "--datadir", f"{tmp}/dev", *node_args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        anvil_args = ["--port", str(anvil_port), "--hardfork", "prague", "--base-fee", "0"]
        anvil_args += ["--gas-price", "0", "--disable-min-priority-fee", "--steps-tracing"]
        anvil = subprocess.Popen(
            [str(find_foundry_binary("anvil")), *anvil_args, "--mnemonic", DEV_MNEMONIC],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            urls = {"tally": f"http://127.0.0.1:{port}", "anvil": f"http://127.0.0.1:{anvil_port}"}
            wait_for_rpc(urls["tally"], proc=node)
            wait_for_rpc(urls["anvil"], proc=anvil)
            hashes = {name: workload(url) for name, url in urls.items()}
            print(f"{'trace':<20}{'tally ms':>10}{'anvil ms':>10}{'ratio':>8}")
            for label, method, config in METHODS:
                times = {}
                for name, url in urls.items():
                    params = [hashes[name]] if config is None else [hashes[name], config]
                    times[name] = timed(url, method, params, args.runs)
                ratio = times["tally"] / times["anvil"]
                print(
                    f"{label:<20}{times['tally'] * 1e3:>10.1f}{times['anvil'] * 1e3:>10.1f}"
                    f"{ratio:>8.1f}"
                )
        finally:
            for process in (node, anvil):
                process.terminate()
                process.wait(30)


if __name__ == "__main__":
    main()
