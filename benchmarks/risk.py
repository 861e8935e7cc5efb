"""Risk monitoring: precision and recall per rule on the seeded synthetic workload, then, on a
real `tally dev` node with `tally bank risk serve` on PostgreSQL, the monitor's lag behind the
chain under load and the screening endpoint's latency.

Rules: `bank.risk.workload` (seed, customers, days, episodes as given) scored by the default
rules file; per rule: alerts, those on injected payments (precision), episodes of its own kind
caught (recall), alerts on the normal population.

Lag: `--count` WalletToken transfers offered at `--rate` tx/s by six dev accounts; a payment's
lag is the time the monitor stored its decision (the database's `decided_at`) minus the time
the node's `newHeads` notification for its block reached this process; the peer in the same
run is the node's own live `eth_subscribe("logs")` notification of the same Transfer.

Screening: `--screens` sequential `POST /risk/screening` of distinct signed transfers, against
`GET /health` of the same service (the HTTP floor) in the same run.

    python benchmarks/risk.py                        # 3,000 transfers at 250 tx/s
    python benchmarks/risk.py --count 500 --rate 50 --screens 200
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"

from eth_utils import keccak  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from bank.risk.config import load  # noqa: E402
from bank.risk.workload import Generator, evaluate  # noqa: E402
from benchmarks.streams import (  # noqa: E402
    DEV,
    SENDERS,
    Watcher,
    call,
    fund_senders,
    percentile,
    send_all,
    signed,
    wait_mined,
)
from tests.bank_support import (  # noqa: E402
    PASSWORD,
    PostgresCluster,
    Service,
    make_key,
    wait_for,
    write_keys,
)
from tests.conftest import free_port  # noqa: E402
from tests.test_api_support import admin_key, start_node  # noqa: E402


def rules(args: argparse.Namespace) -> None:
    generator = Generator(args.seed, args.customers, args.merchants, args.days, args.episodes)
    started = time.perf_counter()
    workload = generator.build()
    figures = evaluate(load(), workload)
    elapsed = time.perf_counter() - started
    normal = sum(1 for p in workload.payments if p.pattern is None)
    print(
        f"workload seed {args.seed}: {len(workload.payments)} payments ({normal} normal), "
        f"{args.episodes} episodes per kind; generated and scored in {elapsed:.1f} s"
    )
    print(f"{'rule':20s} {'alerts':>7s} {'precision':>9s} {'recall':>7s} {'on normal':>9s}")
    for rule, f in figures.items():
        print(f"{rule:20s} {f.alerts:7d} {f.precision:9.3f} {f.recall:7.3f} {f.on_normal:9d}")


def live(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tally-bench-risk-") as work:
        tmp = Path(work)
        node = start_node(tmp)
        postgres = PostgresCluster().start()
        service = None
        try:
            db = postgres.create_database()
            keys = write_keys(tmp / "keys", DEV, {2: "compliance"})
            env = {
                "TALLY_RPC_URL": node.url,
                "TALLY_BANK_DB": db,
                "TALLY_KEYSTORE_DIR": str(keys),
                "TALLY_KEYSTORE_PASSWORD": PASSWORD,
                "TALLY_BANK_NODE_API_KEY": admin_key(node),
                "TALLY_BANK_DATA_DIR": str(tmp / "bank-data"),
            }
            service = Service(["risk", "serve"], free_port(), env, tmp / "risk.log").start()
            wait_for(
                lambda: httpx.get(service.url + "/health").json()["monitor"] == "following",
                60,
                "the monitor",
            )
            lag(args, node.url, node.ws_url, db)
            screening(args, node.url, service.url, make_key(db, "compliance"))
        finally:
            if service is not None:
                service.stop()
            postgres.stop()
            node.stop()


def lag(args: argparse.Namespace, url: str, ws_url: str, db: str) -> None:
    from sqlalchemy import create_engine, text

    http = httpx.Client(timeout=120)
    nonces = fund_senders(http, url, 10**12)
    raws = []
    for i in range(args.count):
        payer, payee = SENDERS[i % len(SENDERS)], SENDERS[(i + 1) % len(SENDERS)]
        data = call("transfer(address,uint256)", ["address", "uint256"], [payee.address, 1])
        raws.append(signed(payer, nonces[payer.address], data))
        nonces[payer.address] += 1
    engine = create_engine(db)
    with engine.connect() as connection:
        before = connection.execute(text("select count(*) from risk_decisions")).scalar() or 0
    with connect(ws_url, max_size=None) as socket:
        watcher = Watcher(socket)
        time.sleep(0.5)
        print(f"offering {args.count} transfers at {args.rate} tx/s ...", flush=True)
        began, chunk = time.monotonic(), max(1, args.rate // 10)
        for n, offset in enumerate(range(0, len(raws), chunk)):
            send_all(http, url, raws[offset : offset + chunk])
            time.sleep(max(0.0, began + (n + 1) * 0.1 - time.monotonic()))
        offered = time.monotonic() - began
        wait_mined(http, url, "0x" + keccak(bytes.fromhex(raws[-1][2:])).hex())
        mined = time.monotonic() - began

        def counted() -> bool:
            with engine.connect() as connection:
                total = connection.execute(text("select count(*) from risk_decisions")).scalar()
            return (total or 0) - before >= args.count

        wait_for(counted, 600, "every payment decided")
        time.sleep(0.5)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "select block_number, log_index, extract(epoch from decided_at) "
                "from risk_decisions where source = 'monitor' order by id desc limit :n"
            ),
            {"n": args.count},
        ).all()
    engine.dispose()
    monitor = [float(at) - watcher.heads[b] for b, _, at in rows if b in watcher.heads]
    logs = [
        watcher.logs[(b, i)] - watcher.heads[b]
        for b, i, _ in rows
        if (b, i) in watcher.logs and b in watcher.heads
    ]
    blocks = len({b for b, _, _ in rows})
    print(
        f"{args.count} payments in {blocks} blocks, offered in {offered:.1f} s, mined in "
        f"{mined:.1f} s ({args.count / mined:.0f} tx/s end to end)"
    )
    for name, values in (("monitor decision stored", monitor), ("eth_subscribe logs", logs)):
        print(
            f"lag {name:24s} n={len(values):5d} p50 {percentile(values, 0.5) * 1000:7.0f} ms  "
            f"p95 {percentile(values, 0.95) * 1000:7.0f} ms  "
            f"p99 {percentile(values, 0.99) * 1000:7.0f} ms"
        )


def screening(args: argparse.Namespace, url: str, service: str, key: str) -> None:
    http = httpx.Client(timeout=60, headers={"Authorization": f"Bearer {key}"})
    payer, payee = DEV[6], DEV[7]
    data = call("transfer(address,uint256)", ["address", "uint256"], [payee.address, 10_00])
    raws = [signed(payer, 10_000 + i, data) for i in range(args.screens + 20)]
    for raw in raws[:20]:  # warm up
        http.post(service + "/risk/screening", json={"raw_transaction": raw})
    timings: dict[str, list[float]] = {"screening": [], "health": []}
    for raw in raws[20:]:
        for name in ("screening", "health"):
            start = time.perf_counter()
            if name == "screening":
                answer = http.post(service + "/risk/screening", json={"raw_transaction": raw})
            else:
                answer = http.get(service + "/health")
            timings[name].append(time.perf_counter() - start)
            assert answer.status_code == 200, answer.text
    for name, values in timings.items():
        print(
            f"{name:10s} n={len(values)} p50 {percentile(values, 0.5) * 1000:6.1f} ms  "
            f"p99 {percentile(values, 0.99) * 1000:6.1f} ms"
        )
    ratio = percentile(timings["screening"], 0.5) / percentile(timings["health"], 0.5)
    print(f"screening p50 / health p50: {ratio:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--merchants", type=int, default=40)
    parser.add_argument("--days", type=int, default=220)
    parser.add_argument("--episodes", type=int, default=20, help="Injected episodes per kind.")
    parser.add_argument("--count", type=int, default=3000, help="Transfers for the lag.")
    parser.add_argument("--rate", type=int, default=250, help="Transfers offered per second.")
    parser.add_argument("--screens", type=int, default=500, help="Screening calls.")
    parser.add_argument("--rules-only", action="store_true", help="No node: the rules only.")
    args = parser.parse_args()
    rules(args)
    if not args.rules_only:
        live(args)


if __name__ == "__main__":
    main()
