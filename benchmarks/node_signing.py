"""What keeping the node key out of plaintext costs: commit seals per second through each key
store, and a 4-validator network's throughput with plaintext keys, encrypted-file keys and
keys in SoftHSM2.

Why these two numbers: a validator signs a handful of QBFT messages per round and one commit
seal per block, so the per-signature cost of the store bounds how fast a block can be sealed,
but the network's throughput is bounded by its block period and execution; the second figure
shows whether the first ever matters. Seals are made exactly as the node makes them
(`node.qbftheader.hashing.sign_commit_seal` over a real header, through `node.keys`'
`StoreSigner`), and one of each store's seals is checked to recover to its key.

The networks are dev chains (chain id 1337, so the dev accounts can fund the workload) with
four validators on loopback, `--block-period 1`, driven by `throughput.py`'s workload
(`bench_target`: pre-signed transfers in JSON-RPC batches, timed to their receipts), run in
alternated rounds. The plaintext one is `tally localnet`; in the others every validator's key
is in its own encrypted file, or its own SoftHSM2 token (a private SOFTHSM2_CONF made by this
script). Before each workload, the four nodes' CPU per empty block is measured idle.

    python benchmarks/node_signing.py                      # seals, then the three networks
    python benchmarks/node_signing.py --seals 5000 --skip-network
    python benchmarks/node_signing.py --count 3000 --workloads eth,erc20
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eth.abc import BlockHeaderAPI
from eth.db.atomic import AtomicDB
from eth_hash.auto import keccak
from eth_utils import to_canonical_address

from benchmarks.peers import stop_process, wait_for_rpc
from benchmarks.throughput import Result, bench_target
from node import localnet
from node.chain.genesis import DEV_CHAIN_ID, Genesis, dev_genesis
from node.keys import NodeKeySource, load_node_signer
from node.qbftheader.hashing import recover_seal_signer, sign_commit_seal
from node.signer import NodeSigner

PIN, SO_PIN = "1234", "87654321"
VALIDATORS = 4


@contextmanager
def softhsm(labels: list[str]) -> Iterator[dict[str, str]]:
    """Fresh SoftHSM2 tokens in a private configuration; yields the environment that uses it
    (also set in this process, before python-pkcs11 loads the module)."""
    with tempfile.TemporaryDirectory(prefix="tally-softhsm-") as tmp:
        root = Path(tmp)
        (root / "tokens").mkdir()
        conf = root / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
            "log.level = ERROR\nslots.removable = false\n"
        )
        env = {"SOFTHSM2_CONF": str(conf), "TALLY_PKCS11_PIN": PIN}
        os.environ.update(env)
        for label in labels:
            subprocess.run(
                ["softhsm2-util", "--init-token", "--free", "--label", label,
                 "--so-pin", SO_PIN, "--pin", PIN],
                check=True, capture_output=True,
            )  # fmt: skip
        yield env


def token_key(token: str) -> tuple[NodeKeySource, bytes]:
    """A node key made inside `token` (label "node"), as `tally keys new` makes it, and its
    address."""
    from tally_common.keystore.pkcs11 import Pkcs11KeyStore

    store = Pkcs11KeyStore(token, PIN)
    address = to_canonical_address(store.create("node").address)
    store.close()
    return NodeKeySource("pkcs11", pkcs11_token=token, pin=PIN), address


def file_key(directory: Path) -> NodeKeySource:
    """A node key in a Web3 Secret Storage file at the standard scrypt cost."""
    from tally_common.keystore.file import FileKeyStore

    FileKeyStore(directory, "benchmark").create("node")
    return NodeKeySource("file", key_file=directory / "node.json", password="benchmark")


def sealable_header(signer: NodeSigner) -> BlockHeaderAPI:
    """A block-1 header of a chain whose validator is `signer`, as a proposer would seal it."""
    address = signer.public_key.to_canonical_address()
    genesis = Genesis(chain_id=DEV_CHAIN_ID, validators=(address,), alloc={}).header(AtomicDB())
    header = genesis.copy(block_number=1, parent_hash=genesis.hash, coinbase=address)
    seal = sign_commit_seal(header, 0, signer)
    assert recover_seal_signer(header, seal) == address  # the store signs with the right key
    return header


def rates(signer: NodeSigner, count: int) -> tuple[float, float]:
    """(signatures/s over distinct digests, commit seals/s over a real header): the store's
    own cost, and the whole seal (QBFT extraData, header RLP and keccak, then the signature)."""
    digests = [keccak(index.to_bytes(8, "big")) for index in range(count)]
    start = time.perf_counter()
    for digest in digests:
        signer.sign_msg_hash(digest)
    signatures = count / (time.perf_counter() - start)
    header = sealable_header(signer)
    start = time.perf_counter()
    for round_number in range(count):
        sign_commit_seal(header, round_number, signer)
    return signatures, count / (time.perf_counter() - start)


def measure_seals(count: int, workdir: Path, repeats: int = 3) -> None:
    """Signatures/s and seals/s for the in-process key, the encrypted file and the SoftHSM2
    token; the best of `repeats` interleaved runs, so a busy machine favours none of them."""
    from eth_keys.datatypes import PrivateKey

    signers: dict[str, NodeSigner] = {
        "in-process (coincurve)": PrivateKey(os.urandom(32)),
        "encrypted file": load_node_signer(file_key(workdir / "keys"), workdir),
        "SoftHSM2 (PKCS#11)": load_node_signer(token_key("seal-bench")[0], workdir),
    }
    best: dict[str, tuple[float, float]] = {name: (0.0, 0.0) for name in signers}
    for _ in range(repeats):
        for name, signer in signers.items():
            signatures, seals = rates(signer, count)
            best[name] = (max(best[name][0], signatures), max(best[name][1], seals))
    base_signatures, base_seals = best["in-process (coincurve)"]
    print(f"\nnode key signatures, {count} per run, best of {repeats}")
    print(f"  {'store':24} {'sigs/s':>8} {'us/sig':>8} {'ratio':>6} {'seals/s':>8} {'ratio':>6}")
    for name, (signatures, seals) in best.items():
        print(
            f"  {name:24} {signatures:8.0f} {1e6 / signatures:8.1f} "
            f"{signatures / base_signatures:5.2f}x {seals:8.0f} {seals / base_seals:5.2f}x"
        )


@contextmanager
def store_network(
    directory: Path, env: dict[str, str], keys: list[tuple[bytes, list[str]]]
) -> Iterator[tuple[str, list[int]]]:
    """Four validators, each given its key's (address, `tally run` options); yields node 0's
    URL and the nodes' pids."""
    addresses = [address for address, _ in keys]
    genesis = dev_genesis(addresses[0], validators=tuple(addresses)).dated_now()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "genesis.json").write_text(genesis.dumps())
    free = distinct_ports(3 * len(keys))
    ports = [(free[3 * index], free[3 * index + 1], free[3 * index + 2]) for index in range(4)]
    network = {
        "nodes": [
            {"address": "0x" + address.hex(), "p2pPort": p2p}
            for address, (_, _, p2p) in zip(addresses, ports, strict=True)
        ]
    }
    (directory / "network.json").write_text(json.dumps(network))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for index, (rpc, ws, p2p) in enumerate(ports):
            log = open(directory / f"node{index}.log", "wb")  # noqa: SIM115 - the child's
            command = [
                *(sys.executable, "-m", "node.cli", "run", "--admin-port", "0"),
                *("--genesis", str(directory / "genesis.json")),
                *("--network", str(directory / "network.json")),
                *("--datadir", str(directory / f"node{index}")),
                *("--rpc-port", str(rpc), "--ws-port", str(ws), "--p2p-port", str(p2p)),
                *keys[index][1],
            ]
            processes.append(
                subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=os.environ | env,
                    cwd=Path(__file__).resolve().parents[1],
                )
            )
        url = f"http://127.0.0.1:{ports[0][0]}"
        for process, (rpc, _, _) in zip(processes, ports, strict=True):
            wait_for_rpc(f"http://127.0.0.1:{rpc}", timeout=90, proc=process)
        yield url, [process.pid for process in processes]
    finally:
        for process in processes:
            stop_process(process)


def distinct_ports(count: int) -> list[int]:
    """Free loopback ports, all different (each socket is held until all are picked)."""
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def token_keys() -> list[tuple[bytes, list[str]]]:
    """A key in each of the tokens `validator-0..3`, and the options that use it."""
    keys = []
    for index in range(VALIDATORS):
        token = f"validator-{index}"
        options = ["--node-key-store", "pkcs11", "--pkcs11-token", token]
        keys.append((token_key(token)[1], options))
    return keys


def file_keys(directory: Path) -> list[tuple[bytes, list[str]]]:
    """Four encrypted keystore files (standard scrypt), and the options that use them."""
    from tally_common.keystore.file import FileKeyStore

    keys: list[tuple[bytes, list[str]]] = []
    for index in range(VALIDATORS):
        info = FileKeyStore(directory / f"validator-{index}", "benchmark").create("node")
        path = directory / f"validator-{index}" / "node.json"
        options = ["--node-key-store", "file", "--node-key-file", str(path)]
        keys.append((to_canonical_address(info.address), options))
    return keys


@contextmanager
def plaintext_network(directory: Path) -> Iterator[tuple[str, list[int]]]:
    nodes = localnet.up(directory, validators=VALIDATORS, members=0)
    try:
        yield nodes[0].url, [node.pid for node in nodes if node.pid is not None]
    finally:
        localnet.down(directory)


def height(url: str) -> int:
    import httpx

    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"})
    return int(answer.json()["result"], 16)


def idle_cpu_per_block(url: str, pids: list[int], seconds: float = 20.0) -> float:
    """CPU milliseconds the four nodes spend per empty block (everything a validator signs for
    a block, and all else it does): where a slower key store shows without load noise."""
    import psutil

    processes = [psutil.Process(pid) for pid in pids]

    def cpu() -> float:
        return sum(sum(process.cpu_times()[:2]) for process in processes)

    time.sleep(3)  # past the first blocks' catching up
    start_cpu, start_height = cpu(), height(url)
    time.sleep(seconds)
    return 1000 * (cpu() - start_cpu) / max(1, height(url) - start_height)


def heights_per_second(url: str, run: Callable[[], list[Result]]) -> tuple[list[Result], float]:
    """Run the workload and the blocks/s the network made meanwhile."""
    start_height, start = height(url), time.monotonic()
    results = run()
    return results, (height(url) - start_height) / (time.monotonic() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--seals", type=int, default=2000, help="commit seals per key store")
    ap.add_argument("--count", type=int, default=2000, help="transactions per network workload")
    ap.add_argument("--workloads", default="eth", help="comma list of eth,erc20")
    ap.add_argument("--rounds", type=int, default=2, help="network runs each, alternated")
    ap.add_argument("--skip-network", action="store_true", help="seals only")
    args = ap.parse_args(argv)
    workload = argparse.Namespace(
        senders=50, count=args.count, workloads=args.workloads, batch=200, poll=0.05,
        timeout=300.0, rate=None, observe="blocks",
    )  # fmt: skip
    labels = ["seal-bench", *(f"validator-{index}" for index in range(VALIDATORS))]
    with tempfile.TemporaryDirectory(prefix="tally-node-signing-") as tmp, softhsm(labels) as env:
        workdir = Path(tmp)
        measure_seals(args.seals, workdir)
        if args.skip_network:
            return 0
        hsm, files = token_keys(), file_keys(workdir / "file-keys")
        env_file = env | {"TALLY_NODE_KEY_PASSWORD": "benchmark"}
        networks = {
            "plaintext": lambda run: plaintext_network(workdir / f"plain{run}"),
            "file": lambda run: store_network(workdir / f"file{run}", env_file, files),
            "softhsm": lambda run: store_network(workdir / f"hsm{run}", env, hsm),
        }
        rows: dict[str, list[tuple[Result, float]]] = {name: [] for name in networks}
        idle: dict[str, list[float]] = {name: [] for name in networks}
        for run in range(args.rounds):  # alternated, so a busy machine favours neither
            for name, network in networks.items():
                print(f"\n{name} (round {run + 1}): 4 validators, 1 s blocks", flush=True)
                with network(run) as (url, pids):
                    idle[name].append(idle_cpu_per_block(url, pids))
                    print(f"  idle: {idle[name][-1]:.0f} ms CPU per block, 4 nodes", flush=True)
                    results, blocks_per_s = heights_per_second(
                        url, partial(bench_target, name, url, workload)
                    )
                rows[name] += [(result, blocks_per_s) for result in results]
    print(f"\nmedians of {args.rounds} rounds, {args.count} transfers each")
    for name, costs in idle.items():
        print(f"{name:10} idle: {statistics.median(costs):.0f} ms CPU per empty block (4 nodes)")
    print("network    workload      tx/s   p50 ms   p95 ms  blocks/s  tx/s vs plaintext")
    for workload_name in args.workloads.split(","):
        medians = {
            name: [
                statistics.median(getattr(result, field) for result, _ in runs
                                  if result.workload == workload_name)
                for field in ("tx_per_s", "p50_ms", "p95_ms")
            ] + [statistics.median(blocks for result, blocks in runs
                                   if result.workload == workload_name)]
            for name, runs in rows.items()
        }  # fmt: skip
        for name, (tx_per_s, p50, p95, blocks_per_s) in medians.items():
            ratio = tx_per_s / medians["plaintext"][0]
            print(
                f"{name:10} {workload_name:8} {tx_per_s:9.1f} {p50:8.0f} {p95:8.0f} "
                f"{blocks_per_s:9.2f}  {ratio:.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
