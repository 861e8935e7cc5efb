"""A block executed by unmodified py-evm: the reference Tally's execution path is held to.

Tally runs its own interpreter loop, jump analysis and per-transaction bookkeeping for speed
(`node.chain.evm`, `node.chain.executor`). `tests/test_stock_equivalence.py` checks that they
compute exactly what py-evm computes, and `benchmarks/execution.py` measures how much faster
they are; both run this: py-evm's `PragueState`, computation, executor and `AccountDB`, driven
through `VM.apply_transaction` as py-evm's own chain does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from eth.abc import BlockHeaderAPI, ChainDatabaseAPI, SignedTransactionAPI, StateAPI
from eth.consensus.context import ConsensusContext
from eth.vm.chain_context import ChainContext
from eth.vm.forks.prague.state import PragueState
from trie import HexaryTrie

from node.chain.chain import Chain
from node.chain.evm.vm import TallyVM
from node.chain.executor import HeaderSource, header_fields_for_reexecution
from node.chain.roots import ordered_trie_root
from node.chain.vm import prague_header


class StockVM(TallyVM):
    """Tally's block bookkeeping hooks with py-evm's unmodified Prague execution."""

    @classmethod
    def get_state_class(cls) -> type[StateAPI]:
        """py-evm's `PragueState` instead of `TallyVM`'s `TallyState`: py-evm builds a VM's state
        from this, and `_state_class`, which it reads, is typed `type[TallyState]` by `TallyVM`."""
        return PragueState


def stock_execution(
    chain: Chain, claimed: BlockHeaderAPI, transactions: Sequence[SignedTransactionAPI]
) -> BlockHeaderAPI:
    """Execute `transactions` on the head with stock py-evm; the header it arrives at.

    Nothing is written: the state goes to a batch of the chain's store that is dropped."""
    template = chain.executor.new_header(
        chain.head,
        parent_hash=chain.head_hash,
        base_fee=prague_header(claimed).base_fee_per_gas,
        **header_fields_for_reexecution(claimed),
    )
    batch = chain.store.new_batch()
    vm = StockVM(
        header=template,
        # The VM reads only `db` and `get_block_header_by_hash` of its chain database.
        chaindb=cast(ChainDatabaseAPI, HeaderSource(batch, chain._require_header)),
        chain_context=ChainContext(chain.chain_id),
        consensus_context=ConsensusContext(batch),
    )
    block = StockVM.get_block_class()(template, transactions=[], uncles=[], withdrawals=[])
    vm._block = block
    vm.block_preprocessing(block)
    running = template.copy(gas_used=0, bloom=0, blob_gas_used=0)
    receipts = []
    for tx in transactions:
        receipt, _ = vm.apply_transaction(running, tx)
        running = vm.add_receipt_to_header(running, receipt)
        receipts.append(receipt)
    vm.receipts_for_postprocessing = tuple(receipts)
    filled = block.copy(
        header=running.copy(
            transaction_root=ordered_trie_root([tx.encode() for tx in transactions]),
            receipt_root=ordered_trie_root([receipt.encode() for receipt in receipts]),
        ),
        transactions=list(transactions),
    )
    processed = vm.block_postprocessing(filled)
    vm.state.persist()
    # py-trie memoises a pruning trie's node encodings in an lru_cache on the method, which
    # keeps every trie py-evm wrote through alive, and with it the chain's LevelDB store, until
    # the interpreter's exit, where plyvel's clean-up then fails ("Error in sys.excepthook").
    HexaryTrie._cached_create_node_to_db_mapping.cache_clear()
    return processed.header.copy(state_root=vm.state.state_root)
