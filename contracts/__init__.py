"""Compiled contract artifacts shipped with Tally.

The node and the client load ABI and bytecode from the committed JSON in ``artifacts/`` so that
running Tally never needs a Solidity compiler; ``scripts/build_contracts.mjs`` regenerates them
and its ``--check`` mode keeps them honest in CI.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["ARTIFACTS_DIR", "artifact_names", "load_artifact"]

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"


def artifact_names() -> list[str]:
    """Return the names of all committed artifacts (e.g. ``["DevToken", "Probe"]``)."""
    return sorted(p.stem for p in ARTIFACTS_DIR.glob("*.json"))


@cache
def _read(name: str) -> str:
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no artifact {name!r} in {ARTIFACTS_DIR} (known: {', '.join(artifact_names())})"
        )
    return path.read_text(encoding="utf-8")


def load_artifact(name: str) -> dict[str, Any]:
    """Return the artifact for contract ``name``.

    Keys: ``contractName``, ``abi``, ``bytecode`` and ``deployedBytecode`` (0x hex),
    ``compiler`` and ``sourceHash``. A fresh dict is returned each call, so callers may mutate it;
    the file itself is read once.
    """
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"invalid artifact name: {name!r}")
    data: dict[str, Any] = json.loads(_read(name))
    return data
