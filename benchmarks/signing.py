"""Client SDK signing throughput per key store, and end-to-end sends through the SDK.

Why these numbers: a wallet's cost per payment is the key store's signature (a PKCS#11 round
trip, or an in-memory key for the file store) plus the SDK's own work (hashing, RLP, recovery
of v for the token) plus the node round trips (gas estimate, fees, send). So three figures per
backend: raw digest signatures/s, full transaction signatures/s, and sends/s through `Wallet`
from several threads on one account (local nonces; sends counted once their block is final).

    python benchmarks/signing.py                     # starts its own `tally dev` and SoftHSM2 token
    python benchmarks/signing.py --url http://127.0.0.1:8545 --sends 400 --threads 8
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")

from client.signing import sign_transaction
from client.wallet import Submitted, Wallet
from tally_common.keystore import SOFTHSM2_MODULE, FileKeyStore, KeyStore, Pkcs11KeyStore

DEV_MNEMONIC = "test test test test test test test test test test test junk"
PIN = "1234"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def dev_node(workdir: Path) -> Iterator[str]:
    """`tally dev` on loopback ports in a temporary datadir, stopped on exit."""
    port = free_port()
    log = open(workdir / "node.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "node.cli", "dev", "--datadir", str(workdir / "data")),
            *("--rpc-port", str(port), "--ws-port", str(free_port()), "--block-period", "1"),
            *("--admin-port", "0"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[1],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"tally dev did not start; see {workdir}/node.log") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def softhsm_token(workdir: Path) -> None:
    """A private SoftHSM2 configuration and token for this run."""
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM2_MODULE).exists():
        raise SystemExit("SoftHSM2 is not installed: run scripts/install.sh")
    (workdir / "tokens").mkdir()
    conf = workdir / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {workdir / 'tokens'}\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            *("softhsm2-util", "--init-token", "--free", "--label", "bench"),
            *("--so-pin", "87654321", "--pin", PIN),
        ],
        check=True,
        capture_output=True,
    )


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:10,.0f}/s"


def bench_signatures(store: KeyStore, label: str, count: int) -> tuple[float, float]:
    """Seconds for `count` digest signatures, and for `count` EIP-1559 transaction signatures."""
    digest = bytes(range(32))
    start = time.perf_counter()
    for _ in range(count):
        store.sign_digest(label, digest)
    digests = time.perf_counter() - start
    tx = {
        "chainId": 1337,
        "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "value": 1,
        "gas": 21000,
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
    }
    start = time.perf_counter()
    for nonce in range(count):
        sign_transaction(store, label, tx | {"nonce": nonce})
    return digests, time.perf_counter() - start


def bench_sends(wallet: Wallet, sends: int, threads: int) -> float:
    """Seconds from the first send to the last final receipt, `sends` spread over threads."""
    payee = Account.create().address
    done: list[Submitted] = []
    per_thread = sends // threads

    def work() -> None:
        for _ in range(per_thread):
            done.append(wallet.transfer(payee, 1, wait=False))

    start = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for submitted in done:
        wallet.wait_for_finality(submitted.tx_hash, timeout=120)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="An existing node (default: start `tally dev`).")
    parser.add_argument("--signatures", type=int, default=2000)
    parser.add_argument("--sends", type=int, default=300)
    parser.add_argument("--threads", type=int, default=6)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tally-signing-") as tmp:
        workdir = Path(tmp)
        softhsm_token(workdir)
        stores: dict[str, KeyStore] = {
            "pkcs11 (SoftHSM2)": Pkcs11KeyStore("bench", PIN),
            "file (scrypt v3)": FileKeyStore(workdir / "keys", "pw", scrypt_n=2**14),
        }
        for store in stores.values():
            store.create("bench")

        print(f"{'backend':20} {'digest sigs':>12} {'tx sigs':>12} {'SDK sends':>12}")
        with dev_node(workdir) if args.url is None else _given(args.url) as url:
            Account.enable_unaudited_hdwallet_features()
            funder = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/9")
            for name, store in stores.items():
                digests, txs = bench_signatures(store, "bench", args.signatures)
                wallet = Wallet(store, "bench", url)
                fund(wallet, funder)
                sends = bench_sends(wallet, args.sends, args.threads)
                print(
                    f"{name:20} {rate(args.signatures, digests)} {rate(args.signatures, txs)}"
                    f" {rate(args.sends // args.threads * args.threads, sends)}"
                )
        print(
            f"({args.signatures} signatures per backend; {args.sends} transfers from one account"
            f" over {args.threads} threads, timed until final; 1 s block period)"
        )


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def fund(wallet: Wallet, funder: object) -> None:
    """Give the benchmark key coin from a dev account (gas price zero: it only needs value)."""
    w3 = wallet.w3
    tx = funder.sign_transaction(  # type: ignore[attr-defined]
        {
            "to": wallet.address,
            "value": 10**18,
            "gas": 21000,
            "gasPrice": 0,
            "chainId": wallet.chain_id,
            "nonce": w3.eth.get_transaction_count(funder.address, "pending"),  # type: ignore[attr-defined]
        }
    )
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction), 60)


if __name__ == "__main__":
    main()
