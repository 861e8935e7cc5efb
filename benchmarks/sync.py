"""How fast a new member node syncs a chain over p2p: blocks/s and tx/s.

Why built in-process: at one block a second a real validator needs a day for 100,000 blocks,
so the chain is written straight into the validator's LevelDB datadir through the node's own
`node.chain.Chain` (build, seal with the validator's key as `node.consensus.solo` does, commit),
with timestamps one block period apart ending about now (the genesis is backdated). Every block
carries `--txs` signed transactions, alternately plain transfers and WalletToken payments
between holders that `benchmarks/state_growth.grow` writes at genesis. Then the validator is
started as a `tally run` process of a `node.localnet` network, a fresh member node beside it,
and the benchmark times the member from its start until its head reaches the validator's
(a member re-executes every block it imports).

    python benchmarks/sync.py                     # 2,000 blocks of 10 transactions
    python benchmarks/sync.py --blocks 100000 --txs 5
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.state_growth import TOKEN_VALUE, grow
from benchmarks.throughput import GAS_ERC20, GAS_ETH, BenchError, Chain, erc20_transfer_data, sign
from node import localnet
from node.chain.chain import Chain as NodeChain
from node.chain.genesis import Genesis
from node.chain.vm import decode_transaction
from node.domain.contracts import WALLET_TOKEN
from node.keys import load_or_create_node_key
from node.qbftheader.extra_data import VANITY_LENGTH, QbftExtraData
from node.qbftheader.hashing import sign_commit_seal
from node.storage.chainstore import ChainStore
from node.storage.store import LevelDBStore


def build_chain(
    datadir: Path,
    genesis: Genesis,
    senders: list[LocalAccount],
    recipients: Sequence[str],
    blocks: int,
    txs: int,
) -> int:
    """Write `blocks` sealed blocks of `txs` transactions into `datadir`; the transactions."""
    key = load_or_create_node_key(datadir)
    address = key.public_key.to_canonical_address()
    store = LevelDBStore(datadir / "chaindata")
    chain = NodeChain(ChainStore(store), genesis)
    signer = Chain(genesis.chain_id, 0)
    token: str = to_checksum_address(WALLET_TOKEN)
    nonces = [0] * len(senders)
    sent = 0
    try:
        for number in range(1, blocks + 1):
            batch = []
            for _ in range(txs):
                k = sent % len(senders)
                to = recipients[sent % len(recipients)]
                if sent % 2:
                    data, gas, value, target = (
                        erc20_transfer_data(to, TOKEN_VALUE),
                        GAS_ERC20,
                        0,
                        token,
                    )
                else:
                    data, gas, value, target = b"", GAS_ETH, 10**12, to
                raw, _ = sign(senders[k], signer, nonces[k], target, value, data, gas)
                batch.append(decode_transaction(bytes.fromhex(raw[2:])))
                nonces[k] += 1
                sent += 1
            extra = QbftExtraData(
                vanity=genesis.vanity.rjust(VANITY_LENGTH, b"\x00"),
                validators=chain.validator_tally(chain.head_hash).validators,
                vote=None,
                round=0,
                seals=(),
            )
            pending = chain.build(
                batch,
                timestamp=genesis.timestamp + number * genesis.block_period_seconds,
                coinbase=address,
                extra_data=extra.encode(),
            )
            if len(pending.executed.transactions) != txs:
                raise BenchError(f"block {number}: {pending.executed.skipped[:1]} skipped")
            seal = sign_commit_seal(pending.header, 0, key)
            sealed = QbftExtraData(extra.vanity, extra.validators, None, 0, (seal,))
            chain.commit(pending, pending.header.copy(extra_data=sealed.encode()))
            if number % 500 == 0:
                print(f"  built {number:,} blocks", flush=True)
    finally:
        store.close()
    return sent


def head(node: localnet.LocalNode) -> int:
    answer = localnet.rpc(node, "eth_blockNumber")
    return -1 if answer is None else int(str(answer), 16)


def prebuilt_network(
    directory: Path, members: int, args: argparse.Namespace
) -> tuple[list[localnet.LocalNode], int, float]:
    """A new one-validator localnet (and `members` members) under `directory` whose validator
    already holds `args.blocks` blocks of `args.txs` transactions, built in process on a
    backdated `grow`n genesis; its nodes, the transactions sent and the seconds it took."""
    shutil.rmtree(directory, ignore_errors=True)  # a kept network of an earlier run
    nodes = localnet.create(directory, 1, members, args.block_period)
    path = directory / localnet.GENESIS_FILE
    genesis, senders, others = grow(Genesis.load(path), args.holders, args.senders, args.seed)
    start = int(time.time()) - (args.blocks + 60) * args.block_period
    genesis = replace(genesis, timestamp=start)
    path.write_text(genesis.dumps())
    recipients = [to_checksum_address(a) for a in others[:200]]
    t0 = time.monotonic()
    sent = build_chain(
        directory / nodes[0].name, genesis, senders, recipients, args.blocks, args.txs
    )
    built = time.monotonic() - t0
    print(
        f"built {args.blocks:,} blocks, {sent:,} transactions in process in {built:.1f} s "
        f"({args.blocks / built:.0f} blocks/s, {sent / built:.0f} tx/s)",
        flush=True,
    )
    return nodes, sent, built


def serve_prebuilt(
    directory: Path, nodes: list[localnet.LocalNode], blocks: int, timeout: float
) -> None:
    """Start `prebuilt_network`'s validator and wait until it serves block `blocks`."""
    localnet.start_node(directory, nodes[0])
    localnet.save(directory, nodes)  # `down` stops what the state file names
    deadline = time.monotonic() + timeout
    while head(nodes[0]) < blocks:
        if time.monotonic() > deadline or not localnet.is_running(nodes[0]):
            raise BenchError(f"validator did not serve the chain: see {directory}/node0")
        time.sleep(0.2)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--blocks", type=int, default=2000, help="blocks in the chain to sync")
    ap.add_argument("--txs", type=int, default=10, help="transactions per block")
    ap.add_argument("--senders", type=int, default=20, help="keyed holders that pay")
    ap.add_argument("--holders", type=int, default=1000, help="accounts in the genesis")
    ap.add_argument("--block-period", type=int, default=1, help="seconds between blocks")
    ap.add_argument("--seed", type=int, default=16, help="the genesis generator's seed")
    ap.add_argument("--timeout", type=float, default=3600.0, help="sync timeout (s)")
    ap.add_argument("--keep", type=Path, help="keep the network under this directory")
    args = ap.parse_args(argv)
    if args.blocks < 1 or args.txs < 1 or not 0 < args.senders < args.holders:
        ap.error("need --blocks >= 1, --txs >= 1 and 0 < --senders < --holders")
    with tempfile.TemporaryDirectory(prefix="tally-sync-") as tmp:
        directory = (args.keep or Path(tmp)) / "net"
        nodes, sent, _ = prebuilt_network(directory, 1, args)
        try:
            serve_prebuilt(directory, nodes, args.blocks, 120)
            target = head(nodes[0])
            t0 = time.monotonic()
            localnet.start_node(directory, nodes[1])
            localnet.save(directory, nodes)
            first: float | None = None
            deadline = t0 + args.timeout
            while (height := head(nodes[1])) < target:
                if time.monotonic() > deadline or not localnet.is_running(nodes[1]):
                    raise BenchError(f"member reached {height} of {target}: see {directory}/node1")
                if first is None and height > 0:
                    first = time.monotonic()
                time.sleep(0.1)
            end = time.monotonic()
            took = end - t0
            hashes = [
                localnet.rpc(node, "eth_getBlockByNumber", [hex(target), False]) for node in nodes
            ]
            if None in hashes or len({str(h["hash"]) for h in hashes}) != 1:  # type: ignore[index]
                raise BenchError(f"member's block {target} differs from the validator's")
            print(f"member synced {target:,} blocks ({sent:,} transactions) in {took:.1f} s")
            print(f"  from its start:  {target / took:8.1f} blocks/s  {sent / took:8.1f} tx/s")
            if first is not None and first < end:
                rate = end - first
                print(
                    f"  from block 1:    {target / rate:8.1f} blocks/s  {sent / rate:8.1f} tx/s "
                    f"(startup {first - t0:.1f} s)"
                )
        except BenchError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
        finally:
            localnet.down(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
