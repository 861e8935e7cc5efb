"""Re-execute a stored block on its parent's state, tracing the transactions asked for.

Tally keeps every state since genesis (trie nodes are never deleted), so any block can be
replayed: its header context is rebuilt as block re-execution does (`node.chain.executor`),
Prague's system calls run, then each transaction in order on a throw-away batch that is never
written. Transactions before the traced one run untraced (`BoundedComputation`: same deadline);
the replay stops after the last one asked for.

A stored transaction was checked when its block was accepted, and its record holds the
sender recovered then, so it is applied as admitted (`TallyState.apply_admitted`) with that
sender: py-evm's full validation recovered each signature twice and verified it once more,
43 % of the internal-call backfill's replay of a block (py-spy, four validators, ERC-20
transfers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from eth.abc import (
    BlockHeaderAPI,
    ChainDatabaseAPI,
    ComputationAPI,
    SignedTransactionAPI,
    StateAPI,
)
from eth.consensus.context import ConsensusContext
from eth.vm.chain_context import ChainContext

from node.chain.admitted import AdmittedTransaction
from node.chain.chain import Chain
from node.chain.evm.internals import generate_contract_address
from node.chain.evm.interpreter import BoundedComputation, Deadline
from node.chain.evm.tracing import TracingComputation
from node.chain.evm.vm import TallyState, TallyVM
from node.chain.executor import HeaderSource, effective_gas_price, header_fields_for_reexecution
from node.chain.tracing.hooks import Outcome, Session, Tracer, TxInfo
from node.chain.vm import decode_recorded, prague_header


class _ReplayState(TallyState):
    """A replay's state: untraced transactions run bounded by `deadline`."""

    computation_class = BoundedComputation
    deadline: Deadline


_ReplayVM = TallyVM.with_state(_ReplayState)


@dataclass(slots=True)
class TracedTransaction:
    tx_hash: bytes
    index: int
    tracer: Tracer


def tx_info(tx: SignedTransactionAPI, base_fee: int, coinbase: bytes) -> TxInfo:
    """What tracers learn of `tx` before it runs (the created address for a creation)."""
    is_create = not tx.to
    to = generate_contract_address(tx.sender, tx.nonce) if is_create else tx.to
    return TxInfo(
        sender=tx.sender,
        to=to,
        is_create=is_create,
        gas=tx.gas,
        gas_price=effective_gas_price(tx, base_fee),
        coinbase=coinbase,
    )


def run_traced(
    state: StateAPI,
    tx: SignedTransactionAPI,
    info: TxInfo,
    tracer: Tracer,
    deadline: Deadline,
    apply: Callable[[], Any] | None = None,
) -> None:
    """Apply `tx` on `state` with `tracer` hooked in (`apply` overrides how it is applied)."""
    traced = cast(Any, state)
    traced.trace = Session(tracer, deadline)
    traced.computation_class = TracingComputation
    try:
        tracer.start(info, state)
        computation = apply() if apply is not None else state.apply_transaction(tx)
        tracer.finish(Outcome(TallyVM.finalize_gas_used(tx, computation), computation), state)
    finally:
        del traced.computation_class
        del traced.trace


def replay_block(
    chain: Chain,
    header: BlockHeaderAPI,
    deadline: Deadline,
    tracer_for: Callable[[int, bytes], Tracer | None],
    last: int | None = None,
    untraced: Callable[[bytes, ComputationAPI], None] | None = None,
) -> list[TracedTransaction]:
    """Replay `header`'s block; `tracer_for(index, hash)` gives the tracer of each transaction
    (None: run it untraced, then hand its hash and computation to `untraced`). Stops after
    transaction `last` when given."""
    block_hash = chain.block_hash(header)
    hashes = chain.store.block_tx_hashes(block_hash)
    if last is not None:
        hashes = hashes[: last + 1]
    if header.block_number == 0 or not hashes:
        return []
    parent = chain.header_by_hash(header.parent_hash)
    if parent is None:
        raise LookupError("the parent of this block is not stored")
    template = chain.executor.new_header(
        parent,
        parent_hash=header.parent_hash,
        base_fee=prague_header(header).base_fee_per_gas,
        **header_fields_for_reexecution(header),
    )
    batch = chain.store.new_batch()  # never committed
    vm = _ReplayVM(
        header=template,
        chaindb=cast(ChainDatabaseAPI, HeaderSource(batch, _lookup(chain))),
        chain_context=ChainContext(chain.chain_id),
        consensus_context=ConsensusContext(batch),
    )
    block = vm.start_block(template)
    state = cast(_ReplayState, vm.state)
    state.deadline = deadline
    vm.block_preprocessing(block)
    base_fee = prague_header(header).base_fee_per_gas
    traced: list[TracedTransaction] = []
    for index, tx_hash in enumerate(hashes):
        deadline.check()
        record = chain.store.transaction(tx_hash)
        if record is None:
            raise LookupError(f"transaction 0x{tx_hash.hex()} of this block is not stored")
        admitted = AdmittedTransaction(
            decode_recorded(record.raw, record.sender), record.sender, tx_hash
        )
        tracer = tracer_for(index, tx_hash)
        state.lock_changes()
        if tracer is None:
            computation = state.apply_admitted(admitted)
            if untraced is not None:
                untraced(tx_hash, computation)
            continue
        tx = admitted.tx
        info = tx_info(tx, base_fee, header.coinbase)
        info.tx_hash, info.index = tx_hash, index
        run_traced(state, tx, info, tracer, deadline, partial(state.apply_admitted, admitted))
        traced.append(TracedTransaction(tx_hash, index, tracer))
    return traced


def _lookup(chain: Chain) -> Callable[[bytes], BlockHeaderAPI]:
    def lookup(block_hash: bytes) -> BlockHeaderAPI:
        found = chain.header_by_hash(block_hash)
        if found is None:
            raise KeyError(block_hash)
        return found

    return lookup
