"""The py-evm code Tally copies, overrides or relies on the inside of, and the private names
it reads: what whoever moves the py-evm pin must re-read.

`MIRRORS` pairs each upstream function (or class) with the Tally code that mirrors it and the
sha256 of its source (`inspect.getsource`) at the pinned py-evm. `tests/test_evm_fence.py`
fails, naming both, when the source changed: re-read our copy against the new upstream, adapt
it, then put the new hash here. `PRIVATE_NAMES` lists the private attributes and names read;
the same test checks they still exist.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Mirror:
    upstream: str
    """Qualified name of py-evm's function or class."""
    ours: str
    """Qualified name of the Tally code that copies, overrides or depends on its inside."""
    sha256: str
    """sha256 of `inspect.getsource(upstream)` at the pinned py-evm."""


_INTERPRETER = "node.chain.evm.interpreter"
_VM = "node.chain.evm.vm"
_STATE_DB = "node.chain.evm.state_db"
_TRACING = "node.chain.evm.tracing"

MIRRORS: tuple[Mirror, ...] = (
    # The interpreter loop: `apply_computation` copied, the opcode call and gas charge inlined.
    Mirror(
        "eth.vm.computation.BaseComputation.apply_computation",
        f"{_INTERPRETER}.TallyComputation.apply_computation",
        "d2f86d6b1ebc80701ad7fd8a6204b3c152ddfadd730b68d1fab633ac9643848d",
    ),
    Mirror(
        "eth.vm.computation.BaseComputation.apply_computation",
        f"{_TRACING}._traced_run",
        "d2f86d6b1ebc80701ad7fd8a6204b3c152ddfadd730b68d1fab633ac9643848d",
    ),
    Mirror(
        "eth.vm.computation.BaseComputation.extend_memory",
        f"{_INTERPRETER}.TallyComputation.extend_memory",
        "cf57f8caf075a7c418ccd722261511c437932324ea87d1f54ac9161333cdc7f4",
    ),
    Mirror(
        "eth.vm.opcode._FastOpcode.__call__",
        f"{_INTERPRETER}._run",
        "67d28fc6f625f1f098be2f8a73c42ad3fc4c04afacf3238a2ce8b7289f606b9d",
    ),
    Mirror(
        "eth.vm.gas_meter.GasMeter.consume_gas",
        f"{_INTERPRETER}._run",
        "6d9c5cdbcbdb6cbf5349ac6cc88c7e05a7e70e4fb692400dcf5d5eb85498ab1e",
    ),
    # PUSH, DUP, SWAP and POP run inline in `_run`, with py-evm's checks and errors.
    Mirror(
        "eth.vm.logic.stack.push_XX",
        f"{_INTERPRETER}._run",
        "c5728997298cad50a63f8852821c3292b24d96c70bd01f41c2d797ab85ac8235",
    ),
    Mirror(
        "eth.vm.logic.stack.push0",
        f"{_INTERPRETER}._run",
        "36e0be2dcc68260f879b103a26dbc01eab6bcaf83844f2ebe6b4967f04a02ecd",
    ),
    Mirror(
        "eth.vm.logic.stack.pop",
        f"{_INTERPRETER}._run",
        "e7824deb555b5e4042a077ab38070086471bb538ca98a7c5c6dbbbd032d61b5b",
    ),
    Mirror(
        "eth.vm.logic.duplication",
        f"{_INTERPRETER}._run",
        "663ba4aa747726f352dbac66cdd997fcb0136775f1250cbe4c3f4af6a7a05e17",
    ),
    Mirror(
        "eth.vm.logic.swap",
        f"{_INTERPRETER}._run",
        "d3c67f91619935bbe55e04ca75c887aad591dd8f4bc8cdeb4c8dd5bd875e50d4",
    ),
    Mirror(
        "eth.vm.stack.Stack.push_bytes",
        f"{_INTERPRETER}._run",
        "9618a0dac8c88c2861bffba80574acde7e33c428dffccfeb9ba969628b050d4c",
    ),
    Mirror(
        "eth.vm.stack.Stack.pop1_any",
        f"{_INTERPRETER}._run",
        "e3c6146499bcfb441f314472cda5e7ad0b886037ce27c188b565503203cbbc02",
    ),
    Mirror(
        "eth.vm.stack.Stack.dup",
        f"{_INTERPRETER}._run",
        "f7a9211dcf721b3119c59d2d11b2b79cd7646dc664b07ce584beb136fd735363",
    ),
    Mirror(
        "eth.vm.stack.Stack.swap",
        f"{_INTERPRETER}._run",
        "fe66dcf6d6fb20aa99c103813de2ebc144d80dfd4fd1b88b8fe256d268238e32",
    ),
    Mirror(
        "eth.vm.stack.Stack.pop_ints",
        f"{_INTERPRETER}._Stack.pop_ints",
        "f648268db7794ea2b2d463601b611dc396c946f25ed6fd05bd07360a0cad18d6",
    ),
    Mirror(
        "eth.vm.code_stream.CodeStream.is_valid_opcode",
        f"{_INTERPRETER}.AnalysedCodeStream.is_valid_opcode",
        "694e92b9e15115d0bf252699137f73a57d8235234fe788a041428da9cf979b3d",
    ),
    # Tracing wraps py-evm's frames and runs its own copy of the loop.
    Mirror(
        "eth.vm.forks.frontier.computation.FrontierComputation.apply_message",
        f"{_TRACING}.TracingComputation.apply_message",
        "467518a0504e0bbc0edc31a502aaf74f96e4bdd90a043fe06c065bd929ecdf5d",
    ),
    Mirror(
        "eth.vm.forks.spurious_dragon.computation.SpuriousDragonComputation.apply_create_message",
        f"{_TRACING}.TracingComputation.apply_create_message",
        "38f9932570a7db93879fc21a0f43fcfb8c7bd7223abe6a0e0278e7e39c1e8480",
    ),
    # The VM, its state and the transaction executor.
    Mirror(
        "eth.vm.forks.cancun.state.CancunTransactionExecutor.build_evm_message",
        f"{_VM}.TallyTransactionExecutor.build_evm_message",
        "7fe1d8429771598793bdca852cf61b8c846a59b4b0a4c250d8f0bbece856f2aa",
    ),
    Mirror(
        "eth.vm.forks.frontier.state.FrontierTransactionExecutor.validate_transaction",
        f"{_VM}.TallyTransactionExecutor.validate_transaction",
        "7a77d8518f64cd2ac406550474550ed14f80aba50747b9c7b175d765240106d8",
    ),
    Mirror(
        "eth.vm.base.VM.apply_transaction",
        f"{_VM}.TallyVM.apply_in_block",
        "90740069c6cbcefda78ca2a75609281695b7c3668ec99eb4bbbef4623325cf98",
    ),
    Mirror(
        "eth.vm.forks.byzantium.ByzantiumVM.make_receipt",
        f"{_VM}.GasCursor",
        "6679dc5e2dd10336196d9a0667a54f9c49e0726ce4c9f2e09f5c9accd74f1608",
    ),
    Mirror(
        "eth.vm.base.VM.get_prev_hashes",
        f"{_VM}.TallyVM.get_prev_hashes",
        "f4478ab4dc9346a50b16533b718e48e36f9a80a024e86dc7bffe17dd34387b67",
    ),
    Mirror(
        "eth.vm.forks.prague.PragueVM.process_deposit_request_data",
        f"{_VM}.TallyVM.process_deposit_request_data",
        "761c523b9982fb809d7e7c0c7eeb63e55187c69b076481b975409bd7b2be1478",
    ),
    # The executor builds the final block from the receipts; post-processing must read only
    # the header and `receipts_for_postprocessing`.
    Mirror(
        "eth.vm.forks.prague.PragueVM.block_postprocessing",
        "node.chain.executor.BlockExecutor.execute",
        "c60cda6182d0952b4fadbcfc3604e0093e471b37aef25d5ef4c040b9f67d1051",
    ),
    # Storage written to its trie once per block.
    Mirror(
        "eth.db.storage.StorageLookup",
        f"{_STATE_DB}.BufferedStorageLookup",
        "bd012a8d0f5c261e31e31113b56e09380bfa5daa2ac31fbcb30c1649da63acd4",
    ),
    Mirror(
        "eth.db.storage.AccountStorageDB.__init__",
        f"{_STATE_DB}.BufferedAccountStorageDB.__init__",
        "1f2c965465aedc4e96090b073b2d3736956c3e38381d5033f08cb85e93309515",
    ),
    Mirror(
        "eth.db.account.AccountDB._get_address_store",
        f"{_STATE_DB}.TallyAccountDB._get_address_store",
        "d67a5888f63e0fccc449a227c05155c362d12061cc88ba21c1da5632b5122c0c",
    ),
    # Code by hash from memory (a hit skips the witness bookkeeping of bytecodes read, which
    # Tally never asks for).
    Mirror(
        "eth.db.account.AccountDB.get_code",
        f"{_STATE_DB}.TallyAccountDB.get_code",
        "98c47af7b883165da51fbcf49d8a9284daa6d90b8819711fd7fb098b17e30b42",
    ),
    Mirror(
        "eth.db.account.AccountDB.make_state_root",
        f"{_STATE_DB}.TallyAccountDB.make_state_root",
        "f972db1235b3b38d0f5187bf4c24036de58ca6ab6ec012f49b7376a57dc60c17",
    ),
)

PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    ("eth.vm.computation.BaseComputation", "_stack"),
    ("eth.vm.computation.BaseComputation", "_memory"),
    ("eth.vm.computation.BaseComputation", "_gas_meter"),
    ("eth.vm.computation.BaseComputation", "_log_entries"),
    ("eth.vm.forks.prague.computation.PragueComputation", "_precompiles"),
    ("eth.vm.code_stream.CodeStream", "_raw_code_bytes"),
    ("eth.vm.opcode", "_FastOpcode"),
    ("eth.vm.opcode._FastOpcode", "gas_cost"),
    ("eth.vm.opcode._FastOpcode", "logic_fn"),
    ("eth.vm.opcode._FastOpcode", "mnemonic"),
    ("eth.vm.base.VM", "_block"),
    ("eth.vm.base.VM", "_state_class"),
    ("eth.vm.state.BaseState", "_account_db"),
    ("eth.db.account.AccountDB", "_account_stores"),
    ("eth.db.account.AccountDB", "_raw_store_db"),
    ("eth.db.account.AccountDB", "_journaldb"),
    ("eth.db.account.AccountDB", "_journaltrie"),
    ("eth.db.account.AccountDB", "_batchtrie"),
    ("eth.db.account.AccountDB", "_trie"),
    ("eth.db.account.AccountDB", "_trie_cache"),
    ("eth.db.account.AccountDB", "_get_storage_root"),
    ("eth.db.account.AccountDB", "_set_storage_root"),
    ("eth.db.account.AccountDB", "_dirty_account_stores"),
    ("eth.db.account.AccountDB", "_get_changed_roots"),
    ("eth.db.storage.AccountStorageDB", "_address"),
    ("eth.db.storage.AccountStorageDB", "_storage_lookup"),
    ("eth.db.storage.AccountStorageDB", "_storage_cache"),
    ("eth.db.storage.AccountStorageDB", "_locked_changes"),
    ("eth.db.storage.AccountStorageDB", "_journal_storage"),
    ("eth.db.storage.AccountStorageDB", "_accessed_slots"),
    ("eth.db.storage.AccountStorageDB", "_clear_count"),
    ("eth._utils.address", "generate_contract_address"),
    ("eth._utils.address", "generate_safe_contract_address"),
    ("eth._utils.numeric", "ceil32"),
    ("eth._utils.padding", "pad32"),
)
"""(owner, name): a class's private attribute (set on the class, or on instances by its
code) or a private module's function, read in `node.chain.evm`."""


def resolve(qualified: str) -> Any:
    """The object a dotted name names: the longest importable module, then attributes."""
    parts = qualified.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(f"nothing importable in {qualified}")
