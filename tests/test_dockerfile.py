"""The container image holds every package `pip install .` installs, at the pinned versions.

No Docker daemon that can pull base images runs in CI, so the image is checked from its
recipe: an image built without `tally_cli` installs a `tally` command that cannot import its
own entry point (the docker-compose network's every service runs it).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

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
