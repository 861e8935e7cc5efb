"""Block execution alone, in one process: Tally's executor against stock py-evm on one block.

Why: every other throughput figure includes JSON-RPC ingest, the pool, consensus and the
client, on a machine whose speed moves 2-3x from day to day. This one isolates what every
validator pays for every transaction, executing it, and compares Tally's path
(`node.chain.executor` with its interpreter loop and buffered storage) with unmodified py-evm
(`benchmarks/stock.py`) executing the same transactions on the same head of the same LevelDB
store, in alternating rounds. It also bounds a network: a block is executed by every validator
except the f that check the proposer's state diff (`node/consensus/scheduling.py`), so on
`--cores` cores `--validators` validators can finalise at most
cores x rate / (validators - f) transactions a second, before ingest, gossip and consensus
take their share.

The chain: a dev genesis, an OpenZeppelin ERC-20 (`DevToken`), `--senders` fresh accounts given
ETH and tokens. The block: `--count` plain transfers or ERC-20 `transfer`s from those senders
(their nonces in turn) to `--recipients` fresh accounts, as the pool hands them to the builder
(decoded, sender recovered and cached, `AdmittedTransaction`), to new recipients each round.
Both paths execute each round's block, which goes first alternating, and must reach the same
state root, or the run stops. Nothing is committed, so every round starts on the same head.

    python benchmarks/execution.py                      # 1,000 of each, 5 rounds
    python benchmarks/execution.py --count 1000 --rounds 9 --workloads erc20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.stock import stock_execution
from contracts import load_artifact
from node.chain.admitted import AdmittedTransaction
from node.chain.chain import Chain
from node.chain.genesis import dev_accounts, dev_genesis
from node.chain.vm import decode_transaction
from node.consensus.qbft.validators import max_faulty
from node.qbftheader.extra_data import QbftExtraData
from node.qbftheader.verify import QBFT_MIX_HASH
from node.storage.chainstore import ChainStore
from node.storage.store import LevelDBStore

VALIDATOR = b"\x11" * 20
EXTRA = QbftExtraData(b"\x00" * 32, (VALIDATOR,), None, 0, ()).encode()
TRANSFER = function_signature_to_4byte_selector("transfer(address,uint256)")
WORKLOADS = ("plain", "erc20")


class Bench:
    """A chain on LevelDB with a token and funded senders, and blocks built on its head."""

    def __init__(self, store: LevelDBStore, senders: int) -> None:
        self.chain = Chain(ChainStore(store), dev_genesis(VALIDATOR))
        self.timestamp = self.chain.head.timestamp
        dev = dev_accounts()[0]
        code = bytes.fromhex(load_artifact("DevToken")["bytecode"][2:])
        deployed = self.commit([admitted(dev, 0, None, code + encode(["uint256"], [10**30]))])
        self.token = deployed[0].contract_address
        self.senders = [Account.create() for _ in range(senders)]
        funding: list[AdmittedTransaction] = []
        for sender in self.senders:
            nonce = len(funding) + 1
            funding.append(admitted(dev, nonce, sender.address, value=10**18))
            funding.append(admitted(dev, nonce + 1, self.token, pay(sender.address, 10**24)))
        self.commit(funding)

    def commit(self, transactions: list[AdmittedTransaction]) -> list:
        self.timestamp += 1
        pending = self.chain.build(
            transactions, timestamp=self.timestamp, coinbase=VALIDATOR, extra_data=EXTRA
        )
        if pending.executed.skipped:
            raise SystemExit(f"setup transaction skipped: {pending.executed.skipped[0][1]}")
        self.chain.commit(pending, pending.header)
        return pending.executed.transactions

    def block(self, workload: str, count: int, recipients: int) -> list[AdmittedTransaction]:
        paid = [Account.create().address for _ in range(recipients)]
        width = len(self.senders)
        return [
            admitted(self.senders[i % width], i // width, paid[i % recipients], value=1)
            if workload == "plain"
            else admitted(
                self.senders[i % width], i // width, self.token, pay(paid[i % recipients], 1)
            )
            for i in range(count)
        ]

    def tally(self, transactions: list[AdmittedTransaction]) -> bytes:
        pending = self.chain.build(
            transactions, timestamp=self.timestamp + 1, coinbase=VALIDATOR, extra_data=EXTRA
        )
        if len(pending.executed.transactions) != len(transactions):
            raise SystemExit("Tally's builder left transactions out: raise the gas limit")
        return pending.header.state_root

    def stock(self, transactions: list[AdmittedTransaction]) -> bytes:
        """Stock py-evm on the header Tally's builder starts from (a few microseconds)."""
        header = self.chain.executor.new_header(
            self.chain.head,
            parent_hash=self.chain.head_hash,
            timestamp=self.timestamp + 1,
            coinbase=VALIDATOR,
            gas_limit=self.chain.genesis.gas_limit,
            extra_data=EXTRA,
            mix_hash=QBFT_MIX_HASH,
            base_fee=self.chain.child_base_fee(self.chain.head),
        )
        return stock_execution(self.chain, header, [item.tx for item in transactions]).state_root


def pay(to: str, amount: int) -> bytes:
    return TRANSFER + encode(["address", "uint256"], [to, amount])


def admitted(
    account: LocalAccount, nonce: int, to: str | bytes | None, data: bytes = b"", value: int = 0
) -> AdmittedTransaction:
    """A signed transaction as the pool hands it over: decoded, its sender recovered."""
    fields: dict[str, object] = {
        "nonce": nonce,
        "gas": 21_000 if not data else 3_000_000 if to is None else 100_000,
        "gasPrice": 0,
        "value": value,
        "data": data,
        "chainId": 1337,
    }
    if to is not None:
        fields["to"] = to_checksum_address(to)
    raw = bytes(account.sign_transaction(fields).raw_transaction)
    tx = decode_transaction(raw)
    return AdmittedTransaction(tx, tx.sender, keccak(raw))


def timed(run: Callable[[list[AdmittedTransaction]], bytes], block: list) -> tuple[float, bytes]:
    started = time.perf_counter()
    root = run(block)
    return len(block) / (time.perf_counter() - started), root


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=1000, help="transactions in the block")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per workload")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="plain,erc20")
    ap.add_argument("--senders", type=int, default=200, help="accounts the block is sent from")
    ap.add_argument("--recipients", type=int, default=1000, help="fresh accounts paid")
    ap.add_argument("--validators", type=int, default=4, help="for the network bound")
    ap.add_argument("--cores", type=int, default=2, help="for the network bound")
    args = ap.parse_args(argv)
    workloads = args.workloads.split(",")
    if not set(workloads) <= set(WORKLOADS) or args.count < 1 or args.rounds < 1:
        ap.error(f"--workloads is a list of {', '.join(WORKLOADS)}; --count, --rounds >= 1")
    executing = args.validators - max_faulty(args.validators)
    with tempfile.TemporaryDirectory(prefix="tally-execution-") as datadir:
        store = LevelDBStore(Path(datadir))
        bench = Bench(store, args.senders)
        print(
            f"{args.count} transactions a block, {args.rounds} alternating rounds, medians; "
            f"bound: {args.cores} cores x Tally's rate / {executing} of {args.validators} "
            "validators executing"
        )
        print(
            f"{'workload':10} {'Tally tx/s':>11} {'stock tx/s':>11} {'ratio':>7} {'bound tx/s':>11}"
        )
        for workload in workloads:
            ours: list[float] = []
            theirs: list[float] = []
            for round_number in range(args.rounds):
                block = bench.block(workload, args.count, args.recipients)
                if round_number % 2:
                    stock_rate, stock_root = timed(bench.stock, block)
                    rate, root = timed(bench.tally, block)
                else:
                    rate, root = timed(bench.tally, block)
                    stock_rate, stock_root = timed(bench.stock, block)
                ours.append(rate)
                theirs.append(stock_rate)
                if stock_root != root:
                    raise SystemExit(f"{workload}: Tally and stock py-evm reach different roots")
            tally, stock = statistics.median(ours), statistics.median(theirs)
            bound = args.cores * tally / executing
            print(f"{workload:10} {tally:11.0f} {stock:11.0f} {tally / stock:6.2f}x {bound:11.0f}")
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
