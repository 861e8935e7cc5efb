"""py-evm's internals fenced in `node.chain.evm`, and admitted transactions trusted by type.

Tally copies or overrides a few py-evm functions and reads some of its private names
(`node.chain.evm.upstream` lists them). py-evm is pinned to a beta: these tests fail when a
function we mirror changes upstream or a private name we read disappears, naming what to
re-read, and when a private py-evm name is used anywhere in `node/` outside the fence.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
from pathlib import Path

import pytest
from eth.abc import SignedTransactionAPI

from node.chain.admitted import AdmittedTransaction
from node.chain.evm.upstream import MIRRORS, PRIVATE_NAMES, resolve
from node.chain.executor import BlockRejected, tx_hash_of
from node.chain.genesis import dev_accounts
from node.chain.vm import decode_transaction
from tests.test_chain import EXTRA, RECIPIENT, VALIDATOR, new_chain

NODE = Path(__file__).resolve().parent.parent / "node"
FENCE = NODE / "chain" / "evm"
TABLE = "node/chain/evm/upstream.py"


def test_every_mirrored_upstream_function_is_the_one_our_copy_was_written_against() -> None:
    changed = []
    for mirror in MIRRORS:
        source = inspect.getsource(resolve(mirror.upstream))
        digest = hashlib.sha256(source.encode()).hexdigest()
        if digest != mirror.sha256:
            changed.append(
                f"py-evm's {mirror.upstream} changed (sha256 {digest}): re-read {mirror.ours}, "
                f"which mirrors it, then record the new hash in {TABLE}"
            )
    assert not changed, "\n".join(changed)


def test_our_side_of_every_mirror_exists() -> None:
    for mirror in MIRRORS:
        assert resolve(mirror.ours) is not None, mirror.ours


def _assigned_in(owner: type, name: str) -> bool:
    """Whether `owner` or a base assigns `self.<name>` in its code (instance attributes)."""
    for base in owner.__mro__:
        assigned = re.compile(rf"self\.{name}\s*(:[^=\n]*)?=[^=]")
        if base.__module__.startswith("eth.") and assigned.search(inspect.getsource(base)):
            return True
    return False


def test_every_private_name_we_read_still_exists() -> None:
    missing = []
    for owner_name, name in PRIVATE_NAMES:
        owner = resolve(owner_name)
        present = hasattr(owner, name) or (isinstance(owner, type) and _assigned_in(owner, name))
        if not present:
            missing.append(f"{owner_name}.{name}")
    assert not missing, f"py-evm no longer has {missing}: adapt node/chain/evm and {TABLE}"


def _private_uses(path: Path, private: frozenset[str]) -> list[str]:
    """Imports from py-evm's private modules or names, and reads of the fenced private
    attributes on anything but `self`/`cls`."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "eth":
            module = node.module or ""
            names = [alias.name for alias in node.names if alias.name.startswith("_")]
            if "._" in f".{module}" or names:
                found.append(f"{path}:{node.lineno} from {module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr in private:
            receiver = node.value
            if not (isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")):
                found.append(f"{path}:{node.lineno} .{node.attr}")
    return found


def test_no_private_py_evm_name_is_used_outside_the_fence() -> None:
    private = frozenset(name for _, name in PRIVATE_NAMES if name.startswith("_"))
    outside = [
        path for path in NODE.rglob("*.py") if FENCE not in path.parents and path.parent != FENCE
    ]
    found = [use for path in outside for use in _private_uses(path, private)]
    assert not found, "py-evm internals belong in node/chain/evm:\n" + "\n".join(found)


def test_the_fence_check_sees_a_private_use(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from eth._utils.address import generate_contract_address\n"
        "from eth.vm.opcode import _FastOpcode\n"
        "vm._block = None\nself._block = None\n"
    )
    assert len(_private_uses(sample, frozenset({"_block"}))) == 3


def _short_of_intrinsic_gas() -> SignedTransactionAPI:
    """A signed transfer with calldata, whose gas (21,000) is below its intrinsic gas."""
    signed = dev_accounts()[0].sign_transaction(
        {
            "nonce": 0,
            "gas": 21000,
            "gasPrice": 0,
            "to": RECIPIENT,
            "value": 1,
            "data": b"\x01" * 10,
            "chainId": 1337,
        }
    )
    return decode_transaction(bytes(signed.raw_transaction))


def test_only_an_admitted_transaction_skips_the_stateless_checks() -> None:
    tx = _short_of_intrinsic_gas()
    plain = new_chain().build([tx], timestamp=1, coinbase=VALIDATOR, extra_data=EXTRA)
    assert [reason for _, reason in plain.executed.skipped] == ["Insufficient gas"]

    # The very same object, carried as admitted: the pool's checks stand in for py-evm's
    # (a real pool never admits this one), so the intrinsic-gas check does not run.
    admitted = AdmittedTransaction(tx, tx.sender, tx_hash_of(tx))
    trusted = new_chain().build([admitted], timestamp=1, coinbase=VALIDATOR, extra_data=EXTRA)
    [(item, reason)] = trusted.executed.skipped
    assert item is admitted
    assert reason != "Insufficient gas"

    # And once more plain, after the admitted wrapper is gone: checked in full again.
    del admitted, trusted
    again = new_chain().build([tx], timestamp=1, coinbase=VALIDATOR, extra_data=EXTRA)
    assert [reason for _, reason in again.executed.skipped] == ["Insufficient gas"]


def test_a_received_block_with_a_plain_transaction_is_checked_in_full() -> None:
    chain = new_chain()
    template = chain.build([], timestamp=1, coinbase=VALIDATOR, extra_data=EXTRA)
    with pytest.raises(BlockRejected, match="Insufficient gas"):
        new_chain().reexecute(template.header, [_short_of_intrinsic_gas()])


def test_an_admitted_transaction_brings_its_hash_and_sender() -> None:
    signed = dev_accounts()[0].sign_transaction(
        {"nonce": 0, "gas": 21000, "gasPrice": 0, "to": RECIPIENT, "value": 1, "chainId": 1337}
    )
    tx = decode_transaction(bytes(signed.raw_transaction))
    admitted = AdmittedTransaction(tx, tx.sender, b"\x42" * 32)
    pending = new_chain().build([admitted], timestamp=1, coinbase=VALIDATOR, extra_data=EXTRA)
    [executed] = pending.executed.transactions
    assert executed.tx is tx
    assert (executed.tx_hash, executed.sender) == (b"\x42" * 32, tx.sender)
