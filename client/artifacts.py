"""Contract ABIs by name, from the compiled artifacts Tally ships.

The wallet token and settlement contracts are compiled into `contracts/artifacts/<Name>.json`
by the project's pinned pipeline; the SDK reads only their ABI. `TALLY_ARTIFACTS_DIR` points
elsewhere (an SDK installed without the repository, or a newer build). A missing artifact or
function is a `ContractUnavailable` that names what is missing and where it was looked for, so
a helper used before its contract exists fails with a sentence, not a KeyError.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from client.errors import ContractUnavailable


def artifacts_dir() -> Path:
    """`$TALLY_ARTIFACTS_DIR`, else the artifacts of the `contracts` package beside `client`."""
    override = os.environ.get("TALLY_ARTIFACTS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "contracts" / "artifacts"


def contract_abi(
    name: str, directory: str | os.PathLike[str] | None = None
) -> list[dict[str, Any]]:
    """The ABI of artifact `name`; raises `ContractUnavailable` if it is not there."""
    if not name.isidentifier():
        raise ValueError(f"invalid contract name {name!r}")
    base = Path(directory) if directory is not None else artifacts_dir()
    path = base / f"{name}.json"
    try:
        artifact = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        known = ", ".join(sorted(p.stem for p in base.glob("*.json"))) or "none"
        raise ContractUnavailable(
            f"contract artifact {name!r} not found in {base} (available: {known}); "
            f"the {name} contract is not built yet"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ContractUnavailable(f"cannot read contract artifact {path}: {exc}") from exc
    abi: list[dict[str, Any]] = artifact["abi"]
    return abi


def require_functions(contract: str, abi: list[dict[str, Any]], *names: str) -> None:
    """Fail clearly if `abi` lacks any of `names` (the helper and the contract disagree)."""
    present = {entry.get("name") for entry in abi if entry.get("type") == "function"}
    missing = [name for name in names if name not in present]
    if missing:
        raise ContractUnavailable(
            f"{contract}'s ABI has no function {', '.join(missing)}; "
            f"its functions are: {', '.join(sorted(n for n in present if n))}"
        )
