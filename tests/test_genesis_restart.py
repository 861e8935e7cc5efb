"""`tally run` restarted on its own datadir: the genesis recognised by its bytes, the dev-key
refusal decided from the report kept at the first start, and every refusal leaving the datadir
as it was. Real `tally run` processes on a real network's genesis (chain 4242, built as the
ceremony builds it), stopped between starts."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.chain.genesis import Genesis, dev_accounts
from node.genesis.build import build_genesis, write_network
from node.genesis.description import parse_description
from node.genesis.inspect import inspect_genesis
from node.genesis.kept_report import REPORT_FILE
from node.keys import load_or_create_node_key
from tests.conftest import REPO, free_port, rpc_call
from tests.network_files import network_description
from tests.test_cli_errors import assert_refused, tally

DIFFERENT_CHAIN = "the datadir holds a different chain than --genesis describes"


def _run_args(genesis: Path, datadir: Path, rpc_port: int) -> list[str]:
    return ["run", "--genesis", str(genesis), "--datadir", str(datadir),
            "--rpc-port", str(rpc_port), "--ws-port", str(free_port()),
            "--admin-port", "0", "--insecure-plaintext-key"]  # fmt: skip


def start_once(genesis: Path, datadir: Path) -> tuple[str, str]:
    """Start `tally run` until it answers, read block 0's hash, stop it (cleanly): the hash
    and what the node logged, debug lines included (into a file: a pipe could fill)."""
    port = free_port()
    with tempfile.TemporaryFile("w+") as logged:
        process = subprocess.Popen(
            [sys.executable, "-m", "tally_cli", *_run_args(genesis, datadir, port),
             "--log-level", "debug"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=logged, text=True,
        )  # fmt: skip
        block: Any = None
        try:
            deadline = time.monotonic() + 90
            while process.poll() is None:
                try:
                    block = rpc_call(
                        f"http://127.0.0.1:{port}", "eth_getBlockByNumber", ["0x0", False]
                    )
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, "the node did not answer"
                    time.sleep(0.2)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            logged.seek(0)
            log = logged.read()
    assert process.returncode == 0 and isinstance(block, dict), log
    return str(block["hash"]), log


def block_0_hash(genesis: Path, datadir: Path) -> str:
    return start_once(genesis, datadir)[0]


def refused_run(genesis: Path, datadir: Path) -> subprocess.CompletedProcess[str]:
    return tally(*_run_args(genesis, datadir, free_port()))


def snapshot(datadir: Path) -> dict[str, bytes]:
    """Every file under `datadir` and its bytes: what a refused start must leave alone."""
    return {
        str(path.relative_to(datadir)): path.read_bytes()
        for path in sorted(datadir.rglob("*"))
        if path.is_file()
    }


def write_genesis(directory: Path, datadir: Path, **grants: Any) -> Path:
    """A one-validator genesis of chain 4242 for the key in `datadir`, as `tally genesis
    build` writes it; `grants` are network_description's keyword arguments."""
    description = network_description(4242, load_or_create_node_key(datadir), **grants)
    network = parse_description(description)
    write_network(network, build_genesis(network), directory)
    return directory / "genesis.json"


Started = tuple[Path, Path, str, str]
"""A genesis, the datadir its node has run on once, block 0's hash, and that start's log."""


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Started:
    directory = tmp_path_factory.mktemp("restart")
    datadir = directory / "node"
    funded = "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa"
    genesis = write_genesis(directory, datadir, allocations=((funded, 25 * 10**18),))
    return genesis, datadir, *start_once(genesis, datadir)


@pytest.fixture
def node(started: Started, tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """A copy of `started`'s genesis and stopped datadir, for a test to change."""
    genesis, datadir, block_hash, _ = started
    shutil.copy(genesis, tmp_path / "genesis.json")
    shutil.copytree(datadir, tmp_path / "node")
    yield tmp_path / "genesis.json", tmp_path / "node", block_hash


def test_the_first_start_keeps_the_report_of_its_genesis_file(
    node: tuple[Path, Path, str],
) -> None:
    genesis, datadir, _ = node
    kept = json.loads((datadir / REPORT_FILE).read_text())
    assert kept == {
        "genesis_sha256": hashlib.sha256(genesis.read_bytes()).hexdigest(),
        "dev_key_grants": [],  # what the refusal reads: one granting any was refused, not kept
    }


def test_the_first_start_builds_block_0_once(started: Started) -> None:
    """Built in memory to inspect what it grants, then written as built, not built again."""
    *_, log = started
    assert log.count("built block 0 of chain 4242") == 1, log


def test_a_kept_file_of_the_old_format_is_inspected_again_and_replaced(
    node: tuple[Path, Path, str],
) -> None:
    """Datadirs kept the whole report before (130 MB at 1,000,000 accounts): it does not read
    back as grants, so the start inspects and keeps the grants in its place."""
    genesis, datadir, block_hash = node
    report_file = datadir / REPORT_FILE
    digest = hashlib.sha256(genesis.read_bytes()).hexdigest()
    report = inspect_genesis(Genesis.load(genesis))
    report_file.write_text(json.dumps({"genesis_sha256": digest, "report": report.to_json()}))
    assert block_0_hash(genesis, datadir) == block_hash
    assert json.loads(report_file.read_text()) == {"genesis_sha256": digest, "dev_key_grants": []}


def test_a_restart_decides_the_dev_key_refusal_from_the_kept_report(
    node: tuple[Path, Path, str],
) -> None:
    """Kept grants to a dev key, which the genesis does not make, are refused: the restart
    read them instead of inspecting the genesis again."""
    genesis, datadir, block_hash = node
    report_file = datadir / REPORT_FILE
    original = report_file.read_bytes()
    kept = json.loads(original)
    dev = dev_accounts()[3].address
    kept["dev_key_grants"].append(f"{dev} (dev account 3): validator")
    report_file.write_text(json.dumps(kept))
    before = snapshot(datadir)

    refused = refused_run(genesis, datadir)
    assert_refused(refused, 7, f"{dev} (dev account 3): validator", "--allow-dev-keys")
    assert snapshot(datadir) == before

    report_file.write_bytes(original)
    written = report_file.stat()
    restarted, log = start_once(genesis, datadir)
    assert restarted == block_hash
    assert "built block 0" not in log
    kept_now = report_file.stat()  # read, not inspected again and replaced by a new file
    assert (kept_now.st_ino, kept_now.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


def test_a_changed_genesis_is_refused_on_restart_and_the_chain_stays(
    node: tuple[Path, Path, str],
) -> None:
    """Refused once LevelDB is open (which rewrites its own log and manifest): nothing else
    changes, and the datadir's own genesis still runs it."""
    genesis, datadir, block_hash = node
    changed = genesis.with_name("changed.json")
    document = json.loads(genesis.read_text())
    document["timestamp"] = hex(int(document["timestamp"], 16) + 1)  # another block 0
    changed.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    before = snapshot(datadir)
    assert_refused(refused_run(changed, datadir), 7, DIFFERENT_CHAIN)
    after = snapshot(datadir)
    assert {name: data for name, data in after.items() if not name.startswith("chaindata")} == {
        name: data for name, data in before.items() if not name.startswith("chaindata")
    }
    assert block_0_hash(genesis, datadir) == block_hash


def test_the_same_genesis_in_other_bytes_is_compared_and_then_recognised(
    node: tuple[Path, Path, str],
) -> None:
    """A reformatted file is the same chain: parsed and compared once, then its digest kept."""
    genesis, datadir, block_hash = node
    genesis.write_text(json.dumps(json.loads(genesis.read_text())))
    assert block_0_hash(genesis, datadir) == block_hash
    kept = json.loads((datadir / REPORT_FILE).read_text())
    assert kept["genesis_sha256"] == hashlib.sha256(genesis.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("grants", "phrases"),
    [
        ({"fee_collector": dev_accounts()[2].address},
         (f"{dev_accounts()[2].address} (dev account 2): WalletToken fee collector",)),
        ({"permissioned": False}, ("chain 4242", "no permissioning")),
    ],
)  # fmt: skip
def test_a_refused_first_start_leaves_the_datadir_as_it_was(
    tmp_path: Path, grants: dict[str, Any], phrases: tuple[str, ...]
) -> None:
    datadir = tmp_path / "node"
    genesis = write_genesis(tmp_path, datadir, **grants)
    before = snapshot(datadir)
    assert list(before) == ["nodekey"]
    assert_refused(refused_run(genesis, datadir), 7, *phrases)
    assert snapshot(datadir) == before
