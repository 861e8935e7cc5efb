"""What WalletToken's checks cost: transfers per second beside a plain OpenZeppelin ERC-20.

Why this shape: on every transfer the wallet token checks pause, both parties' roles (its copy
of AccountRules) and freezes, applies the payer's KYC tier limits (per payment and daily),
looks up the recipient's fee kind and, for customers, accrues points. The question is what
that costs a node, so the tokens run on the same `tally dev` node in the same run, with the
same senders, recipients, amounts and submission pattern (pre-signed raw transactions in
JSON-RPC batches, receipts polled), in alternating rounds so drift in the machine's speed hits
all of them. The wallet tokens are configured as `tally dev`'s genesis configures its own
(tier limits, fee schedule; senders and recipients are tier-1 customers): "wallet" without
points, "wallet+points" earning points at the genesis rate. Each transaction's gas limit is its
token's estimate plus a margin, since the block builder packs by declared gas.

Two measures per round: wall-clock transfers/s (submission to last receipt) and the node
process's CPU time per transfer (from /proc, when the node is this script's child or
`--node-pid` names it). On a shared machine other processes' load moves the first by tens of
percent from round to round; the second is what the node itself spent, so the verdict uses it
when it is available (both are printed). Each is the median over the rounds, which one
disturbed round does not move.

    python benchmarks/token_checks.py                 # 5 rounds x 2,000 transfers per token
    python benchmarks/token_checks.py --with-points   # also a WalletToken awarding points
    python benchmarks/token_checks.py --tally-url http://127.0.0.1:8545 --node-pid 1234

The bar: the checks cost under 25% of the plain ERC-20's throughput.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from rlp import encode as rlp_encode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root
from benchmarks.throughput import (
    DEV_MNEMONIC,
    BenchError,
    Chain,
    Rpc,
    balances,
    chunks,
    erc20_transfer_data,
    run_tally,
    sign,
    wait_receipts,
)
from contracts import load_artifact
from node.domain.contracts import FEES, POINTS_RATE_BPS, TIER_LIMITS, ChainRole

Account.enable_unaudited_hdwallet_features()

TIER = 1  # a basic customer: 1,000.00 per payment, 5,000.00 a day
AMOUNT = 1_00  # 1.00 per transfer (2 decimals)
FUNDING = 10**12  # per sender, in both tokens


def create_address(sender: str, nonce: int) -> str:
    return to_checksum_address(keccak(rlp_encode([bytes.fromhex(sender[2:]), nonce]))[12:])


def init_code(name: str, types: Sequence[str], args: Sequence[Any]) -> bytes:
    return bytes.fromhex(load_artifact(name)["bytecode"][2:]) + encode(list(types), list(args))


class Deployment:
    """DevToken, and the permissioning + WalletToken suite with senders and recipients
    registered as tier-1 customers, all funded."""

    def __init__(
        self, rpc: Rpc, senders: int, recipients: int, with_points: bool, timeout: float
    ) -> None:
        self.rpc = rpc
        self.dev: LocalAccount = Account.from_mnemonic(
            DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0"
        )
        self.chain = Chain(int(rpc.call("eth_chainId"), 16), 0)
        self.senders = [Account.create() for _ in range(senders)]
        self.recipients = [Account.create().address for _ in range(recipients)]
        collector = Account.create().address
        nonce = int(rpc.call("eth_getTransactionCount", [self.dev.address, "pending"]), 16)
        group, rules, dev_token, wallet, points, wallet_points = (
            create_address(self.dev.address, nonce + i) for i in range(6)
        )
        accounts = [
            (self.dev.address, ChainRole.ISSUER),
            (collector, ChainRole.ENTERPRISE),
            *((s.address, ChainRole.CUSTOMER) for s in self.senders),
            *((r, ChainRole.CUSTOMER) for r in self.recipients),
        ]
        # AccountRules pushes role changes to the tokens that listen (their copy of it).
        listeners = [wallet, wallet_points] if with_points else [wallet]
        wallet_types = [
            "string",
            "string",
            "address",
            "address",
            "address",
            "uint16",
            "(uint96,uint96)[]",
            "(uint16,uint64,uint64)[]",
            "uint64[]",
            "uint64",
        ]
        # Review thresholds above any benchmark payment: the checks run, nothing is held.
        config = [list(TIER_LIMITS), list(FEES), [per for per, _ in TIER_LIMITS], 0]
        deploys = [
            init_code("AdminGroup", ["address[]", "uint256"], [[self.dev.address], 1]),
            init_code(
                "AccountRules",
                ["address", "address[]", "uint8[]", "uint8[]", "address[]"],
                [
                    group,
                    [a for a, _ in accounts],
                    [int(r) for _, r in accounts],
                    [TIER if r == ChainRole.CUSTOMER else 0 for _, r in accounts],
                    listeners,
                ],
            ),
            init_code("DevToken", ["uint256"], [FUNDING * senders]),
            init_code(
                "WalletToken",
                wallet_types,
                ["Tally Euro", "TEUR", rules, collector, "0x" + "00" * 20, 0, *config],
            ),
        ]
        if with_points:
            deploys += [
                init_code("Points", ["address", "address"], [rules, wallet_points]),
                init_code(
                    "WalletToken",
                    wallet_types,
                    ["Tally Euro", "TEUR", rules, collector, points, POINTS_RATE_BPS, *config],
                ),
            ]
        # AccountRules stores every account and each token copies them all: gas grows with the
        # account count (the dev block holds 60M).
        deploy_gas = min(55_000_000, 5_000_000 + 150_000 * len(accounts))
        hashes = []
        for code in deploys:
            raw, h = sign(self.dev, self.chain, nonce, None, 0, code, deploy_gas)
            rpc.call("eth_sendRawTransaction", [raw])
            hashes.append(h)
            nonce += 1
        wait_receipts(rpc, hashes, timeout)

        self.tokens = {"erc20": dev_token, "wallet": wallet}
        if with_points:
            self.tokens["wallet+points"] = wallet_points
        mint = keccak(text="mint(address,uint256,bytes32)")[:4]
        raws, hashes = [], []
        for i, s in enumerate(self.senders):
            calls = [(dev_token, erc20_transfer_data(s.address, FUNDING))]
            for j, token in enumerate(t for k, t in self.tokens.items() if k != "erc20"):
                ref = keccak(text=f"top-up {j} {i}")
                data = mint + encode(["address", "uint256", "bytes32"], [s.address, FUNDING, ref])
                calls.append((token, data))
            for to, data in calls:
                raw, h = sign(self.dev, self.chain, nonce, to, 0, data, 300_000)
                raws.append(raw)
                hashes.append(h)
                nonce += 1
        for part in chunks(raws, 200):
            rpc.batch([("eth_sendRawTransaction", [r]) for r in part])
        wait_receipts(rpc, hashes, timeout)

        # Gas per transfer: the token's own estimate (first touch of a fresh recipient), +25%.
        self.gas = {}
        for name, token in self.tokens.items():
            call = {
                "from": self.senders[0].address,
                "to": token,
                "data": "0x" + erc20_transfer_data(self.recipients[0], AMOUNT).hex(),
            }
            self.gas[name] = int(int(rpc.call("eth_estimateGas", [call]), 16) * 1.25)


class NodeCpu:
    """CPU seconds (user + system) a node process has used, read from /proc (Linux)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    @classmethod
    def child(cls) -> NodeCpu:
        """The node this script started: its only child process."""
        mine = str(os.getpid())
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == mine:
                return cls(int(stat.parent.name))
        return cls(None)

    def seconds(self) -> float | None:
        if self.pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_round(
    dep: Deployment, name: str, count: int, batch: int, timeout: float, cpu: NodeCpu
) -> tuple[float, float | None]:
    """Submit `count` pre-signed transfers of token `name`: tx/s until the last receipt, and
    the node's CPU milliseconds per transfer (None if unknown)."""
    rpc, token = dep.rpc, dep.tokens[name]
    nonces = [
        int(n, 16)
        for n in rpc.batch(
            [("eth_getTransactionCount", [s.address, "pending"]) for s in dep.senders]
        )
    ]
    before = balances(rpc, token, dep.recipients)
    raws, hashes = [], []
    for i in range(count):
        k = i % len(dep.senders)
        to = dep.recipients[i % len(dep.recipients)]
        raw, h = sign(
            dep.senders[k],
            dep.chain,
            nonces[k],
            token,
            0,
            erc20_transfer_data(to, AMOUNT),
            dep.gas[name],
        )
        nonces[k] += 1
        raws.append(raw)
        hashes.append(h)

    cpu0 = cpu.seconds()
    t0 = time.monotonic()
    for part in chunks(raws, batch):
        rpc.batch([("eth_sendRawTransaction", [r]) for r in part])
    pending = set(hashes)
    receipts: dict[str, dict[str, Any]] = {}
    last_seen = t0
    deadline = t0 + timeout
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
        for part in chunks(sorted(pending), 500):
            got = rpc.batch([("eth_getTransactionReceipt", [h]) for h in part])
            now = time.monotonic()
            for h, r in zip(part, got, strict=True):
                if r is not None:
                    receipts[h] = r
                    pending.discard(h)
                    last_seen = now
    cpu1 = cpu.seconds()
    if pending:
        raise BenchError(f"{name}: {len(pending)}/{count} receipts missing after {timeout}s")
    failed = [h for h in hashes if int(receipts[h]["status"], 16) != 1]
    if failed:
        raise BenchError(f"{name}: {len(failed)} transfers failed, e.g. {failed[0]}")
    after = balances(rpc, token, dep.recipients)
    moved = sum(after) - sum(before)
    if moved != count * AMOUNT:
        raise BenchError(f"{name}: recipients gained {moved}, expected {count * AMOUNT}")
    cpu_ms = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) * 1000 / count
    return count / (last_seen - t0), cpu_ms


Rates = dict[str, list[float]]


def bench(url: str, args: argparse.Namespace, cpu: NodeCpu) -> tuple[Rates, Rates]:
    """Per token: tx/s of each round, and node CPU ms per transfer of each round."""
    rpc = Rpc(url)
    try:
        dep = Deployment(rpc, args.senders, args.recipients, args.with_points, args.timeout)
        print(
            "gas limit per transfer: " + ", ".join(f"{k} {v}" for k, v in dep.gas.items()),
            flush=True,
        )
        rates: Rates = {name: [] for name in dep.tokens}
        cpus: Rates = {name: [] for name in dep.tokens}
        for r in range(args.rounds):
            for name in dep.tokens:
                rate, cpu_ms = run_round(dep, name, args.count, args.batch, args.timeout, cpu)
                rates[name].append(rate)
                line = f"  round {r + 1}  {name:14} {rate:8.1f} tx/s"
                if cpu_ms is not None:
                    cpus[name].append(cpu_ms)
                    line += f"  {cpu_ms:6.2f} ms node CPU/tx"
                print(line, flush=True)
        return rates, cpus
    finally:
        rpc.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=2000, help="transfers per token per round")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per token")
    ap.add_argument("--senders", type=int, default=50)
    ap.add_argument("--recipients", type=int, default=200)
    ap.add_argument("--batch", type=int, default=200, help="transactions per JSON-RPC batch")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--with-points", action="store_true", help="also a token awarding points")
    ap.add_argument("--tally-url", help="use this running `tally dev` node")
    ap.add_argument("--node-pid", type=int, help="the --tally-url node's pid, for its CPU time")
    args = ap.parse_args(argv)
    per_sender = -(-args.count // args.senders) * args.rounds * AMOUNT
    if per_sender > TIER_LIMITS[TIER][1]:
        ap.error(f"each sender would pay {per_sender / 100:,.2f}, over tier {TIER}'s daily limit")
    try:
        if args.tally_url:
            rates, cpus = bench(args.tally_url, args, NodeCpu(args.node_pid))
        else:
            with (
                tempfile.TemporaryDirectory(prefix="tally-token-") as tmp,
                run_tally(Path(tmp)) as url,
            ):
                print(f"tally: started `tally dev --block-period 1` at {url}", flush=True)
                rates, cpus = bench(url, args, NodeCpu.child())
    except BenchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    report(rates, cpus)
    return 0


def report(rates: Rates, cpus: Rates) -> None:
    """The summary table and the verdict against the 25% bar."""
    wall = {name: 1 / statistics.median(values) for name, values in rates.items()}  # s/tx
    cpu = {name: statistics.median(values) for name, values in cpus.items() if values}
    print("\nmedians over the rounds")
    print(f"{'token':16}{'tx/s':>8}{'wall/tx':>10}{'node CPU ms/tx':>16}{'CPU/tx':>9}")
    for name in rates:
        wall_extra = "" if name == "erc20" else f"{(wall[name] / wall['erc20'] - 1) * 100:+.1f}%"
        cpu_ms, cpu_extra = "", ""
        if name in cpu:
            cpu_ms = f"{cpu[name]:.2f}"
            if name != "erc20":
                cpu_extra = f"{(cpu[name] / cpu['erc20'] - 1) * 100:+.1f}%"
        print(f"{name:16}{1 / wall[name]:8.1f}{wall_extra:>10}{cpu_ms:>16}{cpu_extra:>9}")
    measure, costs = ("node CPU time", cpu) if "wallet" in cpu else ("wall time", wall)
    overhead = (costs["wallet"] / costs["erc20"] - 1) * 100
    verdict = "under" if overhead < 25 else "OVER"
    print(
        f"\nWalletToken checks cost {overhead:.1f}% more {measure} per transfer than the plain "
        f"ERC-20: {verdict} the 25% bar"
    )


if __name__ == "__main__":
    sys.exit(main())
