"""The container image and the docker-compose network, checked without a Docker engine.

CI machines have no engine that can pull base images, so the image is checked from its
recipe: it must hold every package `pip install .` installs, at the pinned versions (an image
without `tally_cli` installs a `tally` command that cannot import its own entry point). The
compose file is checked by Debian's `docker-compose` client (`config`), and each service's
command by the `tally` CLI itself, which refuses an unknown command or option.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _copied() -> set[str]:
    """What the Dockerfile's COPY lines take from the build context."""
    copied: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            copied.update(part.rstrip("/") for part in line.split()[1:-1])
    return copied


def test_the_image_copies_every_package_pip_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in patterns}
    assert packages, "pyproject lists no packages"
    assert all((ROOT / package).is_dir() for package in packages)
    assert packages - _copied() == set()


def test_the_image_installs_the_pinned_versions() -> None:
    assert "constraints.txt" in _copied()
    install = [
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if "pip install" in line
    ]
    assert install and all("-c constraints.txt" in line for line in install)


def _compose_commands() -> dict[str, list[str]]:
    """Each docker-compose service's command, as `docker-compose config` resolves it."""
    answer = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        check=True,
    )
    services = yaml.safe_load(answer.stdout)["services"]
    return {name: service["command"] for name, service in services.items()}


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="needs docker-compose")
def test_every_compose_service_runs_a_command_the_cli_accepts() -> None:
    commands = _compose_commands()
    assert {"init", "node0", "node1", "node2", "node3"} <= commands.keys()
    for service, command in commands.items():
        # click refuses an unknown command or option before it acts on --help
        answer = subprocess.run(
            [sys.executable, "-m", "tally_cli", *command, "--help"], capture_output=True, text=True
        )
        assert answer.returncode == 0, (service, command, answer.stderr[-400:])
