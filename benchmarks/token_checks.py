"""What WalletToken's checks cost: transfers per second beside a plain OpenZeppelin ERC-20.

Why this shape: the wallet token reads the payer's role and tier and the payee's role from
AccountRules, applies the tier's per-payment and daily limits, and checks pause, freezes and
locked funds on every transfer. The question is what that costs a node, so both tokens run on
the same `tally dev` node in the same run, with the same senders, recipients, amounts and
submission pattern (pre-signed raw transactions in JSON-RPC batches, receipts polled), in
alternating rounds so drift in the machine's speed hits both. Each transaction's gas limit is
its token's estimate plus a margin, since the block builder packs by declared gas.

    python benchmarks/token_checks.py                 # 2 rounds x 2,000 transfers per token
    python benchmarks/token_checks.py --with-points   # also a WalletToken awarding points
    python benchmarks/token_checks.py --tally-url http://127.0.0.1:8545

The bar: the checks cost under 25% of the plain ERC-20's throughput.
"""

from __future__ import annotations

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import (
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

Account.enable_unaudited_hdwallet_features()

ROLE_ISSUER, ROLE_ENTERPRISE, ROLE_CUSTOMER = 2, 4, 6
TIER = 1
UNLIMITED = 2**96 - 1
AMOUNT = 1_00  # 1.00 per transfer (2 decimals)
FUNDING = 10**12  # per sender, in both tokens


def create_address(sender: str, nonce: int) -> str:
    return to_checksum_address(keccak(rlp_encode([bytes.fromhex(sender[2:]), nonce]))[12:])


def init_code(name: str, types: Sequence[str], args: Sequence[Any]) -> bytes:
    return bytes.fromhex(load_artifact(name)["bytecode"][2:]) + encode(list(types), list(args))


class Deployment:
    """DevToken, and the permissioning + WalletToken suite with senders and recipients
    registered as tier-1 customers (limits high enough for the run), all funded."""

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
            (self.dev.address, ROLE_ISSUER),
            (collector, ROLE_ENTERPRISE),
            *((s.address, ROLE_CUSTOMER) for s in self.senders),
            *((r, ROLE_CUSTOMER) for r in self.recipients),
        ]
        limits = [(0, 0), (UNLIMITED, UNLIMITED)]
        fees = [(0, 0, 0), (50, 10, 5_00), (150, 50, 20_00)]
        wallet_types = [
            "string",
            "string",
            "address",
            "address",
            "address",
            "(uint96,uint96)[]",
            "(uint16,uint64,uint64)[]",
        ]
        deploys = [
            init_code("AdminGroup", ["address[]", "uint256"], [[self.dev.address], 1]),
            init_code(
                "AccountRules",
                ["address", "address[]", "uint8[]", "uint8[]"],
                [
                    group,
                    [a for a, _ in accounts],
                    [r for _, r in accounts],
                    [TIER if r == ROLE_CUSTOMER else 0 for _, r in accounts],
                ],
            ),
            init_code("DevToken", ["uint256"], [FUNDING * senders]),
            init_code(
                "WalletToken",
                wallet_types,
                ["Tally Euro", "TEUR", rules, collector, "0x" + "00" * 20, limits, fees],
            ),
        ]
        if with_points:
            deploys += [
                init_code("Points", ["address", "address", "uint16"], [rules, wallet_points, 100]),
                init_code(
                    "WalletToken",
                    wallet_types,
                    ["Tally Euro", "TEUR", rules, collector, points, limits, fees],
                ),
            ]
        hashes = []
        for code in deploys:
            raw, h = sign(self.dev, self.chain, nonce, None, 0, code, 25_000_000)
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


def run_round(dep: Deployment, name: str, count: int, batch: int, timeout: float) -> float:
    """Submit `count` pre-signed transfers of token `name`; tx/s until the last receipt."""
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
    if pending:
        raise BenchError(f"{name}: {len(pending)}/{count} receipts missing after {timeout}s")
    failed = [h for h in hashes if int(receipts[h]["status"], 16) != 1]
    if failed:
        raise BenchError(f"{name}: {len(failed)} transfers failed, e.g. {failed[0]}")
    after = balances(rpc, token, dep.recipients)
    moved = sum(after) - sum(before)
    if moved != count * AMOUNT:
        raise BenchError(f"{name}: recipients gained {moved}, expected {count * AMOUNT}")
    return count / (last_seen - t0)


def bench(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    rpc = Rpc(url)
    try:
        dep = Deployment(rpc, args.senders, args.recipients, args.with_points, args.timeout)
        print(
            "gas limit per transfer: " + ", ".join(f"{k} {v}" for k, v in dep.gas.items()),
            flush=True,
        )
        rates: dict[str, list[float]] = {name: [] for name in dep.tokens}
        for r in range(args.rounds):
            for name in dep.tokens:
                rate = run_round(dep, name, args.count, args.batch, args.timeout)
                rates[name].append(rate)
                print(f"  round {r + 1}  {name:14} {rate:8.1f} tx/s", flush=True)
        return rates
    finally:
        rpc.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=2000, help="transfers per token per round")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per token")
    ap.add_argument("--senders", type=int, default=50)
    ap.add_argument("--recipients", type=int, default=200)
    ap.add_argument("--batch", type=int, default=200, help="transactions per JSON-RPC batch")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--with-points", action="store_true", help="also a token awarding points")
    ap.add_argument("--tally-url", help="use this running `tally dev` node")
    args = ap.parse_args(argv)
    try:
        if args.tally_url:
            rates = bench(args.tally_url, args)
        else:
            with (
                tempfile.TemporaryDirectory(prefix="tally-token-") as tmp,
                run_tally(Path(tmp)) as url,
            ):
                print(f"tally: started `tally dev --block-period 1` at {url}", flush=True)
                rates = bench(url, args)
    except BenchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    base = statistics.mean(rates["erc20"])
    print(f"\n{'token':16}{'tx/s (mean)':>12}{'time/tx vs erc20':>18}")
    for name, values in rates.items():
        mean = statistics.mean(values)
        overhead = "" if name == "erc20" else f"{(base / mean - 1) * 100:9.1f}%"
        print(f"{name:16}{mean:12.1f}{overhead:>18}")
    wallet = statistics.mean(rates["wallet"])
    overhead = (base / wallet - 1) * 100
    verdict = "under" if overhead < 25 else "OVER"
    print(
        f"\nWalletToken checks cost {overhead:.1f}% more time per transfer "
        f"({(1 - wallet / base) * 100:.1f}% fewer transfers/s): {verdict} the 25% bar"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
