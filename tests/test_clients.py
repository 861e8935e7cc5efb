"""Unmodified third-party clients against a real node: ethers.js v6 and Foundry's cast.

Both come pinned from npm (`npm ci`); the scripts under tests/clients/ deploy a token, pay,
read logs and decode a revert, and exit non-zero on the first mismatch.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, NodeProcess


def run_client(command: list[str], node: NodeProcess) -> dict:
    result = subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, "RPC_URL": node.url},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, (
        f"{command[-1]} failed:\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
        f"node log tail:\n{node.log_text()[-3000:]}"
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def client_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    from tests.conftest import free_port

    node = NodeProcess(tmp_path_factory.mktemp("clients") / "node", free_port(), free_port())
    node.start()
    yield node
    node.stop()


def test_ethers_v6_end_to_end(client_node: NodeProcess) -> None:
    assert (REPO / "node_modules" / "ethers").is_dir(), "run `npm ci` first"
    report = run_client(["node", str(Path("tests/clients/ethers_e2e.mjs"))], client_node)
    assert report["chainId"] in (1337, "1337")


def test_cast_end_to_end(client_node: NodeProcess) -> None:
    report = run_client(["bash", str(Path("tests/clients/cast_e2e.sh"))], client_node)
    assert report
