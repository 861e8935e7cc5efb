"""The README's tour, run as written against a real `tally dev` node.

Every ```bash and ```python block of README.md runs, in order, in one scratch directory, with
the commands `install.sh` puts on PATH (`tally`, `cast`) and a private SoftHSM2 token
directory. What the harness changes, and nothing else:
- the node is started by the test (on free ports, substituted for 8545/8546/8551 in the
  text, and given to `tally wallet` as `TALLY_RPC_URL`, whose default is port 8545), so a
  line that is exactly `tally dev` (the reader's own terminal) is not run again;
- environment variables a bash block exports are carried into the blocks after it, as they would
  be in the reader's shell;
- a block preceded by `<!-- tour: skip REASON -->` is not run; the reason says why (setup, a
  Docker engine, a command that never returns).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, NodeProcess, free_port

_FENCE = re.compile(
    r"(?:<!-- tour: skip (?P<skip>[^>]*?) -->\s*\n)?```(?P<lang>bash|python)\n(?P<body>.*?)```",
    re.S,
)


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    line: int
    skip: str | None

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang})"


def readme_blocks() -> list[Block]:
    text = (REPO / "README.md").read_text()
    return [
        Block(
            match["lang"],
            match["body"],
            text.count("\n", 0, match.start("body")) + 1,
            match["skip"],
        )
        for match in _FENCE.finditer(text)
    ]


def _tool_path(scratch: Path) -> str:
    """`tally` from this test run's environment, `cast` from the npm tooling, then the PATH."""
    bin_dir = scratch / "bin"
    bin_dir.mkdir()
    tally = Path(sys.executable).parent / "tally"
    assert tally.exists(), f"{tally} missing: run scripts/install.sh"
    (bin_dir / "tally").symlink_to(tally)
    casts = sorted(REPO.glob("node_modules/@foundry-rs/cast-linux-*/bin/cast"))
    assert casts, "cast missing from node_modules: run scripts/install.sh"
    (bin_dir / "cast").symlink_to(casts[0])
    return f"{bin_dir}:{os.environ['PATH']}"


def _softhsm_conf(scratch: Path) -> Path:
    tokens = scratch / "softhsm-tokens"
    tokens.mkdir()
    conf = scratch / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    return conf


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, dict[str, str]]]:
    """The reader's machine: a scratch directory, a node at `.tally/dev`, tools on PATH."""
    scratch = tmp_path_factory.mktemp("tour")
    (scratch / ".tally").mkdir()
    node = NodeProcess(
        scratch / ".tally" / "dev", free_port(), free_port(), admin_port=free_port()
    ).start()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TALLY_", "SOFTHSM2_"))
    }
    env |= {
        "PATH": _tool_path(scratch),
        "SOFTHSM2_CONF": str(_softhsm_conf(scratch)),
        "HOME": str(scratch),
        "COLUMNS": "80",
    }
    env["TALLY_RPC_URL"] = node.url
    try:
        yield node, env
    finally:
        node.stop()


def _as_run(block: Block, node: NodeProcess) -> str:
    ports = {"8545": node.rpc_port, "8546": node.ws_port, "8551": node.admin_port}
    text = block.body
    for written, actual in ports.items():
        text = text.replace(written, str(actual))
    lines = [line for line in text.splitlines() if line.split("#")[0].strip() != "tally dev"]
    return "\n".join(lines) + "\n"


def test_every_block_is_run_or_says_why_not() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 8, "the README's code blocks were not found"
    for block in blocks:
        assert block.skip is None or block.skip.strip(), f"{block}: a skip needs its reason"


def test_the_tour_runs_as_written(tour: tuple[NodeProcess, dict[str, str]]) -> None:
    node, env = tour
    scratch = node.datadir.parent.parent
    exported = scratch / "exported.sh"
    exported.write_text("")
    ran = 0
    for block in readme_blocks():
        if block.skip is not None:
            continue
        script = _as_run(block, node)
        if block.lang == "bash":
            command = [
                "bash",
                "-c",
                f"set -euo pipefail\nsource {exported}\n{script}\nexport -p > {exported}\n",
            ]
        else:
            command = [sys.executable, "-c", script]
        result = subprocess.run(
            command, cwd=scratch, env=env, capture_output=True, text=True, timeout=240
        )
        assert result.returncode == 0, (
            f"{block} failed (exit {result.returncode}):\n{script}\n"
            f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
        )
        ran += 1
    assert ran >= 6
