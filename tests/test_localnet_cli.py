"""`tally localnet up` and `status` tell the operator what is going on: which nodes `up`
started and which were running already, and `stopped` for a node that is not running (not a
height of None).

Each step is the real command run as its own process, so the nodes it starts outlive it, as
they do for an operator: a node that dies later is nobody's child any more, and (where init
does not reap, as in a container) lingers as a zombie that must still count as stopped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node import localnet
from tests.conftest import REPO


def tally(*args: str) -> list[str]:
    """Run `tally ARGS` and return its output lines (failing on a non-zero exit)."""
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def line_of(lines: list[str], name: str) -> str:
    (line,) = [line for line in lines if line.startswith(f"{name} ")]
    return line


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "net"
    yield directory
    if (directory / localnet.STATE_FILE).exists():
        localnet.down(directory)


def test_up_and_status_say_what_each_node_is_doing(net: Path) -> None:
    created = tally("localnet", "up", "--dir", str(net), "--validators", "1", "--members", "1")
    assert created[0] == f"created network {net}: 1 validators, 1 members"
    for name, role in (("node0", "validator"), ("node1", "member")):
        assert re.search(rf"^{name}  {role} .* started \(pid \d+\)$", line_of(created, name))

    status = tally("localnet", "status", "--dir", str(net))
    for name in ("node0", "node1"):
        assert re.search(r"  up  height=\d+  peers=\d+  http://", line_of(status, name))

    member = {node.name: node for node in localnet.load(net)}["node1"]
    assert member.pid is not None
    os.kill(member.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while localnet.is_running(member):
        assert time.monotonic() < deadline, "node1 did not stop"
        time.sleep(0.1)

    status = tally("localnet", "status", "--dir", str(net))
    assert line_of(status, "node1") == f"node1  member     stopped  {member.url}"
    assert "  up  height=" in line_of(status, "node0")
    assert "None" not in "\n".join(status)

    again = tally("localnet", "up", "--dir", str(net))
    assert again[0] == f"using network {net}: 1 validators, 1 members"
    assert re.search(r"already running \(pid \d+\)$", line_of(again, "node0"))
    assert re.search(r" started \(pid \d+\)$", line_of(again, "node1"))

    assert tally("localnet", "down", "--dir", str(net)) == ["stopped"]
    status = tally("localnet", "status", "--dir", str(net))
    assert len(status) == 2
    assert all(re.search(r"^node\d  \w+ +stopped  http://", line) for line in status), status
