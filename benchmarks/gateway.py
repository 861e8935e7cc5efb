"""The bank gateway's overhead: top-ups per second end to end against plain mints.

Both sides mint the same amounts on the same `tally dev` node in the same run, in alternating
rounds (so drift in the machine's speed hits both):

- gateway: N top-ups by REST (`POST /topups`, K client threads), each captured on the card
  simulator and minted by the gateway's outbox; timed from the first request to the last
  top-up reported `minted` (its mint final on chain);
- direct: N `mint` transactions signed with the same issuer key through the SDK and sent
  straight to the node from K threads, timed to the last one final.

The ratio gateway/direct is the gateway's cost (HTTP, the rail's two calls, the database
transactions, the outbox). The gateway runs on a throwaway PostgreSQL cluster (as in the
tests), or on its SQLite default with `--sqlite`.

    python benchmarks/gateway.py                     # 3 rounds x 200 top-ups, 8 clients
    python benchmarks/gateway.py --count 500 --clients 16 --sqlite
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"

from benchmarks.throughput import run_tally  # noqa: E402
from client import FileKeyStore  # noqa: E402
from client.tokens import WalletToken  # noqa: E402
from client.wallet import Wallet  # noqa: E402
from tests.bank_support import (  # noqa: E402
    CUSTOMER,
    ISSUER,
    PASSWORD,
    TOKEN,
    PostgresCluster,
    Stack,
    gateway,
    make_key,
    node_api_key,
    simulator,
    wait_for,
    write_keys,
)
from tests.conftest import free_port  # noqa: E402

_refs = iter(range(1, 10**9))


def dev_accounts() -> list:
    from eth_account import Account

    from tests.conftest import DEV_MNEMONIC

    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(10)
    ]


def gateway_round(stack: Stack, count: int, clients: int, amount: int) -> float:
    """Seconds from the first POST to the last top-up minted."""
    run = time.time_ns()
    start = time.perf_counter()

    def one(i: int) -> int:
        response = stack.topup(f"bench-{run}-{i}", amount)
        if response.status_code != 201:
            log = stack.gateway.log_text()[-3000:]
            raise RuntimeError(f"top-up refused: {response.status_code} {response.text}\n{log}")
        return int(response.json()["id"])

    with ThreadPoolExecutor(clients) as pool:
        ids = set(pool.map(one, range(count)))
    pending = set(ids)
    client = httpx.Client(headers={"authorization": f"Bearer {stack.operations_key}"})

    def all_minted() -> bool:
        minted = client.get(stack.gateway.url + "/topups", params={"status": "minted"}).json()
        pending.difference_update(view["id"] for view in minted)
        return not pending

    wait_for(all_minted, 600, "all top-ups minted")
    return time.perf_counter() - start


def direct_round(token: WalletToken, to: str, count: int, clients: int, amount: int) -> float:
    """Seconds from the first mint sent to the last one final."""
    start = time.perf_counter()

    def one(_: int) -> str:  # the wallet hands one account's nonces out in order
        ref = (0xBE << 248 | time.time_ns() << 32 | next(_refs)).to_bytes(32, "big")
        return token.mint(to, amount, ref, wait=False).tx_hash

    with ThreadPoolExecutor(clients) as pool:
        hashes = list(pool.map(one, range(count)))
    for tx_hash in hashes:
        token.wallet.wait_for_finality(tx_hash, timeout=600)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200, help="top-ups per round")
    parser.add_argument("--clients", type=int, default=8, help="concurrent senders")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true", help="the gateway on SQLite")
    args = parser.parse_args()

    accounts = dev_accounts()
    with tempfile.TemporaryDirectory(prefix="tally-bench-gw-") as work:
        tmp = Path(work)
        postgres = None if args.sqlite else PostgresCluster().start()
        with run_tally(tmp) as node_url:
            gateway_port = free_port()
            sim = simulator(tmp, gateway_port).start()
            keys = write_keys(tmp / "keys", accounts, {ISSUER: "issuer"})
            db = postgres.create_database() if postgres else None
            node_key = node_api_key(node_url, tmp / "data")
            gw = gateway(tmp, gateway_port, node_url, sim.url, keys, db, node_key)
            gw.args += ["--poll", "0.05"]
            try:
                gw.start()
                key_db = db or f"sqlite:///{tmp / 'bank-data' / 'bank.sqlite3'}"
                customer = accounts[CUSTOMER].address
                stack = Stack(node_url, sim, gw, keys, key_db, customer,
                              make_key(key_db, "customer", customer),
                              make_key(key_db, "operations"))  # fmt: skip
                issuer = Wallet(FileKeyStore(keys, PASSWORD), "issuer", node_url)
                token = WalletToken(issuer, TOKEN)
                gateway_round(stack, 5, 2, 1)  # warm up both paths
                direct_round(token, customer, 5, 2, 1)
                rows: dict[str, list[float]] = {"gateway": [], "direct": []}
                runs: list[tuple[str, Callable[[], float]]] = [
                    ("gateway", lambda: gateway_round(stack, args.count, args.clients, 1_00)),
                    (
                        "direct",
                        lambda: direct_round(token, customer, args.count, args.clients, 1_00),
                    ),
                ]
                for index in range(args.rounds):
                    for name, run in runs if index % 2 == 0 else runs[::-1]:
                        rate = args.count / run()
                        rows[name].append(rate)
                        print(f"round {index + 1} {name:8s} {rate:8.1f} mints/s", flush=True)
            finally:
                gw.stop()
                sim.stop()
                if postgres:
                    postgres.stop()
    gateway_rate = statistics.median(rows["gateway"])
    direct_rate = statistics.median(rows["direct"])
    store = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"\n{args.count} top-ups x {args.rounds} rounds, {args.clients} clients, {store}")
    print(f"gateway (REST to final mint): {gateway_rate:8.1f} top-ups/s (median)")
    print(f"direct mint transactions:     {direct_rate:8.1f} mints/s (median)")
    print(f"ratio gateway/direct:         {gateway_rate / direct_rate:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
