"""Throughput as the state grows: a chain whose genesis holds N funded accounts and WalletToken
holders against one with 1,000, in the same run.

Why: a node's cost per transaction should not depend much on how many accounts exist (the
issue's bar: at least 0.8x the small chain's tx/s with 1,000,000). Both chains are one-validator
`tally run` nodes from `node.localnet` with the same gas limit and block period; the workloads
are `benchmarks/throughput.py`'s (pre-signed plain and ERC-20 transfers as batched
`eth_sendRawTransaction`, timed to each receipt), here paying WalletToken between holders
written at genesis, so every payment reads and writes holder words in a large storage trie and
every plain transfer lands on an account in a large account trie.

The genesis generator (`grow`) is seeded and documented: holder i's address is the last 20
bytes of keccak256(seed || i), its ETH balance 1 ETH and its WalletToken holder word (slot
keccak256(address || 1), the `_holders` mapping, per the storage order of
`contracts/src/WalletToken.sol`: `_config` 0, `_holders` 1, `_limits[256]` 2..257,
`_totalSupply` 258) a CUSTOMER of tier 1-3 with a seeded balance; `--senders` keyed holders
(keys keccak256(b"sender" || seed || i)) pay at tier 3. The supply slot gets the sum. Genesis
runs the token's constructor over that storage (deployments do not clear it), and the
benchmark checks `balanceOf` and `totalSupply` on the started node before timing anything.
Both nodes run side by side (an idle node costs nothing) and are measured in alternating
rounds, so that the load of a shared machine falls on both; the table gives medians.

    python benchmarks/state_growth.py                       # 100,000 against 1,000
    python benchmarks/state_growth.py --accounts 1000000 --count 4000
    python benchmarks/state_growth.py --accounts 1000000 --genesis-only /tmp/net1m
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.peers import DEV_MNEMONIC
from benchmarks.throughput import BenchError, Chain, Result, Rpc, Setup, balances, run_workload
from node import localnet
from node.chain.genesis import AllocEntry, Genesis
from node.domain.contracts import WALLET_TOKEN, ChainRole

HOLDERS_SLOT = 1
TOTAL_SUPPLY_SLOT = 258
TIER_SHIFT = 136
ACTIVE = 1 << 147
ROLE_SHIFT = 148
HOLDER_ETH = 10**18
SENDER_ETH = 10**22
SENDER_TOKENS = 10**10  # cents
TOKEN_VALUE = 100  # cents per payment: under every tier's per-payment limit
TOTAL_SUPPLY_SELECTOR = function_signature_to_4byte_selector("totalSupply()")


def holder_address(seed: int, index: int) -> bytes:
    return keccak(seed.to_bytes(8, "big") + index.to_bytes(8, "big"))[12:]


def sender_account(seed: int, index: int) -> LocalAccount:
    return Account.from_key(keccak(b"sender" + seed.to_bytes(8, "big") + index.to_bytes(8, "big")))


def holder_slot(address: bytes) -> int:
    """The storage slot of `_holders[address]` (Solidity: keccak256(key . slot))."""
    return int.from_bytes(keccak(address.rjust(32, b"\0") + HOLDERS_SLOT.to_bytes(32, "big")))


def holder_word(balance: int, tier: int) -> int:
    """An active CUSTOMER's holder word: balance, tier, active bit, role (WalletToken.sol)."""
    return balance | tier << TIER_SHIFT | ACTIVE | int(ChainRole.CUSTOMER) << ROLE_SHIFT


def grow(
    genesis: Genesis, accounts: int, senders: int, seed: int
) -> tuple[Genesis, list[LocalAccount], list[bytes]]:
    """`genesis` with `accounts` funded holders (of which `senders` keyed, at tier 3).

    Returns the new genesis, the senders, and the unkeyed holders' addresses.
    """
    rng = random.Random(seed)
    keyed = [sender_account(seed, i) for i in range(senders)]
    alloc = dict(genesis.alloc)
    token = alloc.get(WALLET_TOKEN, AllocEntry())
    storage = dict(token.storage)
    supply = storage.get(TOTAL_SUPPLY_SLOT, 0)
    others: list[bytes] = []
    for acct in keyed:
        address = bytes.fromhex(acct.address[2:])
        alloc[address] = AllocEntry(balance=SENDER_ETH)
        storage[holder_slot(address)] = holder_word(SENDER_TOKENS, 3)
        supply += SENDER_TOKENS
    for i in range(accounts - senders):
        address = holder_address(seed, i)
        others.append(address)
        alloc[address] = AllocEntry(balance=HOLDER_ETH)
        balance = rng.randrange(10**7)
        storage[holder_slot(address)] = holder_word(balance, rng.randint(1, 3))
        supply += balance
    storage[TOTAL_SUPPLY_SLOT] = supply
    alloc[WALLET_TOKEN] = replace(token, storage=storage)
    return replace(genesis, alloc=alloc), keyed, others


class HolderSetup(Setup):
    """What `run_workload` needs, from a genesis that already funds the senders (no setup txs)."""

    def __init__(self, rpc: Rpc, senders: list[LocalAccount]) -> None:
        self.rpc = rpc
        self.dev = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0")
        self.chain = Chain(int(rpc.call("eth_chainId"), 16), int(rpc.call("eth_gasPrice"), 16))
        self.senders = senders
        self.token = to_checksum_address(WALLET_TOKEN)


def check_genesis(rpc: Rpc, genesis: Genesis, others: Sequence[bytes], seed: int) -> None:
    """The node's WalletToken agrees with the generator: sampled balances and the supply."""
    storage = genesis.alloc[WALLET_TOKEN].storage
    sample = random.Random(seed + 1).sample(list(others), min(50, len(others)))
    want = [storage[holder_slot(a)] & ((1 << 80) - 1) for a in sample]
    got = balances(rpc, to_checksum_address(WALLET_TOKEN), [to_checksum_address(a) for a in sample])
    if got != want:
        raise BenchError(f"balanceOf disagrees with the generated genesis: {got[:3]} != {want[:3]}")
    supply = int(
        rpc.call(
            "eth_call",
            [
                {
                    "to": to_checksum_address(WALLET_TOKEN),
                    "data": "0x" + TOTAL_SUPPLY_SELECTOR.hex(),
                },
                "latest",
            ],
        ),
        16,
    )
    if supply != storage[TOTAL_SUPPLY_SLOT]:
        raise BenchError(f"totalSupply {supply} != generated {storage[TOTAL_SUPPLY_SLOT]}")


def write_grown(
    directory: Path, accounts: int, args: argparse.Namespace
) -> tuple[list[localnet.LocalNode], Genesis, list[LocalAccount], list[bytes]]:
    """A new one-validator localnet whose genesis `grow` filled; prints what it took."""
    shutil.rmtree(directory, ignore_errors=True)  # a kept network of an earlier run
    nodes = localnet.create(directory, validators=1, members=0, block_period=args.block_period)
    path = directory / localnet.GENESIS_FILE
    t0 = time.monotonic()
    genesis, senders, others = grow(Genesis.load(path), accounts, args.senders, args.seed)
    built = time.monotonic() - t0
    path.write_text(genesis.dumps())
    written = time.monotonic() - t0
    size = path.stat().st_size / 2**20
    print(
        f"  {accounts:,} accounts: genesis generated in {built:.1f} s, written in "
        f"{written - built:.1f} s ({size:.0f} MiB, {path})",
        flush=True,
    )
    return nodes, genesis, senders, others


@contextmanager
def grown_node(
    directory: Path, accounts: int, args: argparse.Namespace
) -> Iterator[tuple[str, Genesis, list[LocalAccount], list[bytes]]]:
    """`write_grown`'s network, started; its URL, genesis and holders."""
    nodes, genesis, senders, others = write_grown(directory, accounts, args)
    t0 = time.monotonic()
    launched = localnet.launch(directory, 1, 0, wait=args.start_timeout)
    try:
        url = nodes[0].url
        if localnet.rpc(launched.nodes[0], "eth_chainId") is None:
            raise BenchError(f"node did not start: see {directory / 'node0' / 'node.log'}")
        print(f"  node up in {time.monotonic() - t0:.1f} s (genesis state built)", flush=True)
        yield url, genesis, senders, others
    finally:
        localnet.down(directory)


@dataclass
class Target:
    """A started chain, checked against its genesis, ready for rounds of workloads."""

    accounts: int
    url: str
    setup: HolderSetup
    recipients: Sequence[str]


def prepare(accounts: int, args: argparse.Namespace, root: Path, stack: ExitStack) -> Target:
    print(f"chain with {accounts:,} accounts", flush=True)
    url, genesis, senders, others = stack.enter_context(
        grown_node(root / f"n{accounts}", accounts, args)
    )
    rpc = Rpc(url)
    stack.callback(rpc.close)
    check_genesis(rpc, genesis, others, args.seed)
    recipients = [
        to_checksum_address(a)
        for a in random.Random(args.seed + 2).sample(others, min(200, len(others)))
    ]
    return Target(accounts, url, HolderSetup(rpc, senders), recipients)


def measure(target: Target, workload: str, args: argparse.Namespace) -> Result:
    result = run_workload(
        target.url,
        target.setup,
        workload,
        args.count,
        args.batch,
        0.05,
        args.timeout,
        f"n={target.accounts}",
        recipients=target.recipients,
        token_value=TOKEN_VALUE,
    )
    print(
        f"  {target.accounts:>9,} {workload:6} {result.tx_per_s:8.1f} tx/s  "
        f"p50 {result.p50_ms:6.0f} ms  p95 {result.p95_ms:6.0f} ms  ({result.blocks} blocks, "
        f"gas limit {result.gas_limit:,})",
        flush=True,
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--accounts", type=int, default=100_000, help="accounts in the big genesis")
    ap.add_argument("--baseline", type=int, default=1_000, help="accounts in the small genesis")
    ap.add_argument("--count", type=int, default=4000, help="transactions per workload")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians)")
    ap.add_argument("--workloads", default="eth,erc20", help="comma list of eth,erc20")
    ap.add_argument("--senders", type=int, default=50, help="keyed holders that pay")
    ap.add_argument("--batch", type=int, default=200, help="transactions per JSON-RPC batch")
    ap.add_argument("--block-period", type=int, default=1, help="seconds between blocks")
    ap.add_argument("--seed", type=int, default=16, help="the generator's seed")
    ap.add_argument("--timeout", type=float, default=300.0, help="per-workload receipt timeout")
    ap.add_argument("--start-timeout", type=float, default=1800.0, help="node start timeout (s)")
    ap.add_argument(
        "--genesis-only",
        type=Path,
        metavar="DIR",
        help="only write the --accounts network into DIR (replaced) and say how long it took",
    )
    ap.add_argument("--keep", type=Path, help="keep the networks under this directory")
    args = ap.parse_args(argv)
    if set(args.workloads.split(",")) - {"eth", "erc20"}:
        ap.error("workloads are eth and erc20")
    if not args.senders < args.baseline <= args.accounts:
        ap.error("need --senders < --baseline <= --accounts")
    if args.genesis_only:
        write_grown(args.genesis_only, args.accounts, args)
        return 0
    workloads = args.workloads.split(",")
    rates: dict[tuple[int, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="tally-growth-") as tmp, ExitStack() as stack:
        root = args.keep or Path(tmp)
        try:
            targets = [prepare(n, args, root, stack) for n in (args.baseline, args.accounts)]
            for round_number in range(1, args.rounds + 1):
                print(f"round {round_number}", flush=True)
                for target in targets if round_number % 2 else targets[::-1]:
                    for workload in workloads:
                        result = measure(target, workload, args)
                        rates.setdefault((target.accounts, workload), []).append(result.tx_per_s)
        except BenchError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
    print(
        f"\nmedians of {args.rounds} alternating rounds, blocks every {args.block_period} s, "
        f"{args.count} transactions per workload"
    )
    print(f"{'workload':8}  {args.baseline:>10,} tx/s  {args.accounts:>10,} tx/s  ratio")
    for workload in workloads:
        small = statistics.median(rates[(args.baseline, workload)])
        big = statistics.median(rates[(args.accounts, workload)])
        print(f"{workload:8}  {small:15.1f}  {big:15.1f}  {big / small:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
