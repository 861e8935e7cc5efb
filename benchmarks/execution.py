"""Block execution alone, in one process: Tally's executor against stock py-evm on one block.

Why: every other throughput figure includes JSON-RPC ingest, the pool, consensus and the
client, on a machine whose speed moves 2-3x from day to day. This one isolates what every
validator pays for every transaction, executing it, and compares Tally's path
(`node.chain.executor` with its interpreter loop and buffered storage) with unmodified py-evm
(`benchmarks/stock.py`) executing the same transactions on the same head of the same LevelDB
store, in alternating rounds. It also bounds a network: a block is executed by every validator
except the f that check the proposer's state diff (`node/consensus/scheduling.py`), and those
replay it afterwards to index its internal calls (`node/chain/backfill.py`, through
`node.chain.tracing.replay`, timed here on each committed block) unless its index is provably
empty (`node.chain.call_free`, printed as "replayed"), so on `--cores` cores `--validators`
validators can finalise at most cores / ((validators - f) / rate + f / replay rate)
transactions a second, or cores / ((validators - f) / rate) without the replay, before ingest,
gossip and consensus take their share.

The chain: a dev genesis, an OpenZeppelin ERC-20 (`DevToken`), `--senders` fresh accounts given
ETH and tokens. The block: `--count` plain transfers or ERC-20 `transfer`s from those senders
(their nonces in turn) to `--recipients` fresh accounts, as the pool hands them to the builder
(decoded, sender recovered and cached, `AdmittedTransaction`), to new recipients each round.
Both paths execute each round's block on the head, which goes first alternating, and must
reach the same state root, or the run stops. Tally's block is then committed, so every round
runs on a new head, as on a live chain: its reads start from roots no earlier round read
under, and the caches (Tally's decoded trie nodes, code) hold only what a node's would.

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
from functools import partial
from pathlib import Path
from typing import TypeVar

from eth.abc import BlockHeaderAPI
from eth.db.account import AccountDB
from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.inprocess import DevChain, admitted, pay, signed, token_deployment
from benchmarks.stock import stock_execution
from node.chain.admitted import AdmittedTransaction
from node.chain.call_free import index_is_empty
from node.chain.chain import PendingBlock
from node.chain.deadline import Deadline
from node.chain.tracing.replay import replay_block
from node.consensus.qbft.validators import max_faulty
from node.storage.store import LevelDBStore

WORKLOADS = ("plain", "erc20")


class Bench:
    """A dev chain with a token and funded senders, and blocks built on its head."""

    def __init__(self, store: LevelDBStore, senders: int) -> None:
        self.dev_chain = DevChain(store)
        deployment = self.dev_chain.sign(None, token_deployment(), 3_000_000)
        (deployed,) = self.dev_chain.commit(admitted([deployment]))
        self.token = deployed.contract_address
        self.senders = [Account.create() for _ in range(senders)]
        funding: list[bytes] = []
        for sender in self.senders:
            funding.append(self.dev_chain.sign(sender.address, gas=21_000, value=10**18))
            funding.append(self.dev_chain.sign(self.token, pay(sender.address, 10**24)))
        self.dev_chain.commit(admitted(funding))
        self.nonces = [0] * senders

    def block(self, workload: str, count: int, recipients: int) -> list[AdmittedTransaction]:
        paid = [Account.create().address for _ in range(recipients)]
        width = len(self.senders)
        raws = []
        for i in range(count):
            sender, recipient = self.senders[i % width], paid[i % recipients]
            nonce = self.nonces[i % width]
            self.nonces[i % width] += 1
            if workload == "plain":
                raws.append(signed(sender, nonce, recipient, gas=21_000, value=1))
            else:
                raws.append(signed(sender, nonce, self.token, pay(recipient, 1)))
        return admitted(raws)

    def tally(self, transactions: list[AdmittedTransaction]) -> PendingBlock:
        pending = self.dev_chain.build(transactions)
        if len(pending.executed.transactions) != len(transactions):
            raise SystemExit("Tally's builder left transactions out: raise the gas limit")
        return pending

    def template(self) -> BlockHeaderAPI:
        """An empty block's header on the head: the fields a proposer chooses (timestamp,
        coinbase, gas limit, extra data, base fee) that stock py-evm takes from a header."""
        return self.dev_chain.build([]).header

    def stock(
        self, template: BlockHeaderAPI, transactions: list[AdmittedTransaction]
    ) -> BlockHeaderAPI:
        """The header stock py-evm reaches executing `transactions` on the head."""
        plain = [item.tx for item in transactions]
        return stock_execution(self.dev_chain.chain, template, plain)

    def replayed(self, pending: PendingBlock) -> bool:
        """Whether the validators that take this block from its state diff replay it."""
        chain = self.dev_chain.chain
        return not index_is_empty(
            AccountDB(chain.store.store, chain.head.state_root),
            AccountDB(pending.batch, pending.header.state_root),
            [item.tx for item in pending.executed.transactions],
            [item.receipt for item in pending.executed.transactions],
        )

    def commit(self, pending: PendingBlock) -> None:
        self.dev_chain.chain.commit(pending, pending.header)

    def replay(self, transactions: list[AdmittedTransaction]) -> None:
        """The head block replayed as the internal-call backfill replays it (`transactions`,
        the block's, only size the rate `timed` reports)."""
        chain = self.dev_chain.chain
        replay_block(
            chain,
            chain.head,
            Deadline(600.0, chain.block_work),
            lambda index, tx_hash: None,
            untraced=lambda tx_hash, computation: None,
        )


T = TypeVar("T")


def timed(run: Callable[[list[AdmittedTransaction]], T], block: list) -> tuple[float, T]:
    started = time.perf_counter()
    result = run(block)
    return len(block) / (time.perf_counter() - started), result


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
            f"bound: {args.cores} cores over {executing} of {args.validators} validators "
            "executing and the rest replaying"
        )
        print(
            f"{'workload':10} {'Tally tx/s':>11} {'stock tx/s':>11} {'ratio':>7} "
            f"{'replay tx/s':>12} {'replayed':>9} {'bound tx/s':>11}"
        )
        for workload in workloads:
            ours: list[float] = []
            theirs: list[float] = []
            replays: list[float] = []
            replayed = False
            for round_number in range(args.rounds):
                block = bench.block(workload, args.count, args.recipients)
                run_stock = partial(bench.stock, bench.template())  # built before the clock
                if round_number % 2:
                    stock_rate, stock_header = timed(run_stock, block)
                    rate, pending = timed(bench.tally, block)
                else:
                    rate, pending = timed(bench.tally, block)
                    stock_rate, stock_header = timed(run_stock, block)
                ours.append(rate)
                theirs.append(stock_rate)
                if stock_header.state_root != pending.header.state_root:
                    raise SystemExit(f"{workload}: Tally and stock py-evm reach different roots")
                replayed = replayed or bench.replayed(pending)
                bench.commit(pending)
                replays.append(timed(bench.replay, block)[0])
            tally, stock = statistics.median(ours), statistics.median(theirs)
            replay = statistics.median(replays)
            replaying = (args.validators - executing) / replay if replayed else 0.0
            bound = args.cores / (executing / tally + replaying)
            print(
                f"{workload:10} {tally:11.0f} {stock:11.0f} {tally / stock:6.2f}x "
                f"{replay:12.0f} {'yes' if replayed else 'no':>9} {bound:11.0f}"
            )
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
