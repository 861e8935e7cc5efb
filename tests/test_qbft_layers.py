"""The QBFT core and the header format stand apart from the EVM, and the chain from consensus.

The state machine is driven by seeded simulations and reasoned about on its own: importing it
must not load py-evm, the trie code or the chain. The header format (`node.qbftheader`) is the
leaf both the chain and consensus build on, and the chain is handed consensus rules instead of
importing `node.consensus`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PURE = [
    "node.consensus.qbft.state_machine",
    "node.consensus.qbft.messages",
    "node.consensus.qbft.validators",
    "node.consensus.proposal_decoding",
    "node.qbftheader.extra_data",
    "node.qbftheader.hashing",
    "node.qbftheader.quorum",
    "node.qbftheader.rules",
    "node.qbftheader.tally",
    "node.qbftheader.verify",
]
EVM_SIDE = ("eth", "trie", "node.chain")
LEAF_MAY_IMPORT = {"eth_keys", "eth_typing", "eth_hash", "eth_utils", "rlp", "node"}


def loaded_after_importing(*modules: str) -> set[str]:
    """Every module in `sys.modules` after a fresh interpreter imports `modules`."""
    code = "import importlib, json, sys\n" + (
        f"for name in {list(modules)!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


def evm_side(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in EVM_SIDE))


def test_importing_the_qbft_core_and_header_format_loads_no_evm_trie_or_chain() -> None:
    loaded = loaded_after_importing(*PURE)
    assert set(PURE) <= loaded  # the probe sees the imports
    assert evm_side(loaded) == []


def test_the_engine_edge_does_load_the_evm() -> None:
    """The check above can fail: the codec the engine hands the core brings py-evm in."""
    loaded = loaded_after_importing("node.consensus.block_codec")
    assert {"eth.vm", "node.chain.vm"} <= set(evm_side(loaded))


def runtime_imports(path: Path) -> set[str]:
    """Modules a file imports outside `if TYPE_CHECKING:` blocks (at any depth)."""
    tree = ast.parse(path.read_text(), str(path))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for statement in node.body
        for inner in ast.walk(statement)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_chain_never_imports_consensus() -> None:
    found = {
        str(path.relative_to(REPO)): sorted(
            name for name in runtime_imports(path) if name.startswith("node.consensus")
        )
        for path in sorted((REPO / "node" / "chain").rglob("*.py"))
    }
    assert len(found) > 20  # the probe sees the package
    assert {path: names for path, names in found.items() if names} == {}


def test_the_header_format_imports_only_the_eth_codecs_and_itself() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    breaches = {}
    for path in sorted((REPO / "node" / "qbftheader").glob("*.py")):
        names = runtime_imports(path)
        outside = sorted(
            name
            for name in names
            if name.split(".")[0] not in stdlib | LEAF_MAY_IMPORT
            or (name.startswith("node") and not name.startswith("node.qbftheader"))
        )
        if outside:
            breaches[path.name] = outside
    assert breaches == {}
    assert "rlp" in runtime_imports(REPO / "node" / "qbftheader" / "extra_data.py")
