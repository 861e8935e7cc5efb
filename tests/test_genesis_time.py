"""Block 0 carries the time its genesis was written, not 1970.

Whatever writes a new network's genesis (`tally init`, `tally localnet` creating a network,
`tally dev` on an empty datadir) dates it, and the date travels in the JSON so every node builds
the same block 0 and the auditor's verifier rebuilds it from `tally_getGenesis`. A document
without a timestamp still loads as 0, so networks made before keep their genesis hash; a dev
chain restarted keeps its block 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from eth_account.signers.local import LocalAccount

from client.audit import RpcSource, verify_chain
from node import localnet
from node.chain.genesis import Genesis, dev_genesis
from node.qbftheader.hashing import onchain_hash
from node.storage.store import MemoryStore
from tests.conftest import REPO, NodeProcess

UNDATED = {
    "config": {"chainId": 4242},
    "validators": ["0x" + "11" * 20],
    "alloc": {"0x" + "22" * 20: {"balance": "0x64"}},
}
UNDATED_HASH = "5f86dc3b30350fc49652cb4bfa78dd86dac1771f2182a9a21ff8442cee8306a4"
"""Block 0 of `UNDATED` as Tally built it before genesis documents were dated."""


def block_0_hash(genesis: Genesis) -> str:
    return onchain_hash(genesis.header(MemoryStore())).hex()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_document_without_a_timestamp_builds_the_block_0_it_always_did() -> None:
    genesis = Genesis.from_json(UNDATED)
    assert genesis.timestamp == 0
    assert block_0_hash(genesis) == UNDATED_HASH


def test_a_dated_genesis_keeps_its_date_through_json() -> None:
    before = int(time.time())
    dated = dev_genesis(b"\x11" * 20, block_period=5).dated_now()
    assert before - 5 <= dated.timestamp <= time.time() - 5  # first block due at once
    assert json.loads(dated.dumps())["timestamp"] == hex(dated.timestamp)
    reloaded = Genesis.from_json(json.loads(dated.dumps()))
    assert reloaded == dated
    undated = dev_genesis(b"\x11" * 20, block_period=5)
    assert block_0_hash(reloaded) == block_0_hash(dated) != block_0_hash(undated)


def test_tally_init_dates_the_genesis(tmp_path: Path) -> None:
    before = int(time.time())
    out = tmp_path / "genesis.json"
    subprocess.run(
        [sys.executable, "-m", "node.cli", "init", "--out", str(out), "--datadir", str(tmp_path)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    assert before - 1 <= Genesis.load(out).timestamp <= time.time() - 1  # period 1


def test_localnet_block_0_is_the_dated_genesis_and_audits(
    tmp_path: Path, dev_accounts: list[LocalAccount]
) -> None:
    """A one-validator network: block 0 is dated as its genesis.json, block 1 follows it, and
    the verifier rebuilds block 0 from the node's genesis document and replays block 1."""
    before = int(time.time())
    directory = tmp_path / "net"
    (node,) = localnet.up(directory, validators=1, members=0)
    try:
        written = Genesis.load(directory / localnet.GENESIS_FILE).timestamp
        assert before - 1 <= written <= time.time() - 1
        transfer = dev_accounts[0].sign_transaction(
            {
                "to": dev_accounts[1].address,
                "value": 1,
                "gas": 21_000,
                "gasPrice": 0,
                "nonce": 0,
                "chainId": 1337,
            }
        )
        localnet.rpc(node, "eth_sendRawTransaction", [transfer.raw_transaction.to_0x_hex()])
        wait_for(lambda: localnet.rpc(node, "eth_blockNumber") == "0x1", what="block 1")
        block_0 = localnet.rpc(node, "eth_getBlockByNumber", ["0x0", False])
        assert isinstance(block_0, dict)
        assert int(block_0["timestamp"], 16) == written
        source = RpcSource(node.url)
        try:
            report = verify_chain(source, last=1, reexecute=True)
        finally:
            source.close()
        assert report.ok, report.failures
        assert report.reexecuted == 1
        assert "0x" + report.genesis_hash.hex() == block_0["hash"]
    finally:
        localnet.down(directory)


def test_dev_chain_dates_block_0_at_first_start_and_keeps_it(
    node_factory: Callable[..., NodeProcess],
) -> None:
    before = int(time.time())
    node: NodeProcess = node_factory()
    block_0 = node.rpc("eth_getBlockByNumber", ["0x0", False])
    assert isinstance(block_0, dict)
    dated = int(block_0["timestamp"], 16)
    assert before - 1 <= dated <= time.time() - 1
    source = RpcSource(node.url)
    try:
        report = verify_chain(source, last=0)
    finally:
        source.close()
    assert report.ok, report.failures

    wait_for(lambda: time.time() >= dated + 1, what="a later second")  # a re-dating would show
    node.stop()
    node.start()
    assert node.rpc("eth_getBlockByNumber", ["0x0", False]) == block_0
