"""Execute a block's transactions with py-evm in one pass: build a new block or re-check one.

This is the node's hot path. It drives py-evm's VM pieces directly rather than through
`Chain.mine_all`/`import_block`, because those persist transaction and receipt tries, read the
block back after writing it, and (per transaction) redo work Tally already did at admission
(sender recovery). Everything here is pure: it reads and writes only the database batch it is
given, and knows nothing of the pool, the network or the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

from eth.abc import (
    AtomicDatabaseAPI,
    BlockHeaderAPI,
    ChainDatabaseAPI,
    ComputationAPI,
    ReceiptAPI,
    SignedTransactionAPI,
)
from eth.consensus.context import ConsensusContext
from eth.vm.chain_context import ChainContext
from eth_hash.auto import keccak
from eth_typing import Address
from eth_utils import ValidationError

from node.chain.admitted import AdmittedTransaction, Executable, unwrap
from node.chain.evm.vm import GasCursor, TallyState, TallyVM
from node.chain.internal_calls import InternalCall, collect, error_description
from node.chain.roots import ordered_trie_root
from node.chain.setcode import AUTHORITY_NOT_PERMITTED, forbidden_authority
from node.chain.state_diff import StateDiff
from node.chain.vm import prague_header

HeaderLookup = Callable[[bytes], BlockHeaderAPI]
"""On-chain block hash -> header; raises KeyError for an unknown hash."""


class HeaderSource:
    """What py-evm's VM needs from a chain database: state access and headers by hash.

    `headers_by_hash` resolves on-chain (QBFT) hashes, which is what `parent_hash` holds.
    """

    def __init__(self, db: AtomicDatabaseAPI, headers_by_hash: HeaderLookup) -> None:
        self.db = db
        self._lookup = headers_by_hash

    def get_block_header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI:
        return self._lookup(block_hash)


@dataclass(slots=True)
class ExecutedTransaction:
    """A transaction as included: the tx, its receipt, and what the receipt record needs."""

    tx: SignedTransactionAPI
    tx_hash: bytes
    sender: Address
    receipt: ReceiptAPI
    gas_used: int
    effective_gas_price: int
    contract_address: bytes
    internal_calls: tuple[InternalCall, ...] = ()
    """Value-moving calls and creations inside it (`node.chain.internal_calls`); empty when
    the block was imported from its proposer's state diff rather than executed (then
    `node.chain.backfill` indexes them later)."""
    error: str = ""
    """Why it failed, in Etherscan's words, when executed here."""


@dataclass(slots=True)
class ExecutedBlock:
    """The outcome of executing a block: its final (unsealed) header and transactions.

    State changes are already written into the batch the executor was given; `skipped` lists
    candidate transactions left out while building (with why), for the pool to act on, and
    `deferred` those that did not fit, each as it was given to the executor;
    `state_diff` everything it wrote, for validators that check rather than execute it.
    """

    header: BlockHeaderAPI
    transactions: list[ExecutedTransaction]
    skipped: list[tuple[Executable, str]] = field(default_factory=list)
    deferred: list[Executable] = field(default_factory=list)
    state_diff: StateDiff | None = None


class BlockRejected(Exception):
    """A block (or one of its transactions) that does not execute to what its header claims."""


def tx_hash_of(tx: SignedTransactionAPI) -> bytes:
    """The transaction hash; computed once by callers that keep it (legacy `.hash` is uncached)."""
    return keccak(tx.encode()) if tx.type_id is not None else tx.hash


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int) -> int:
    if tx.type_id in (None, 1):
        return tx.gas_price
    return min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)


class BlockExecutor:
    """Runs transactions on a header template with py-evm and finishes the header."""

    def __init__(self, chain_id: int) -> None:
        self._chain_context = ChainContext(chain_id)

    def new_header(
        self, parent: BlockHeaderAPI, parent_hash: bytes, base_fee: int, **fields: object
    ) -> BlockHeaderAPI:
        """A child header of `parent` (fork rules fill what `fields` leaves out).

        py-evm links a child to `parent.hash`, which for a QBFT header covers the commit
        seals; Tally links to the on-chain hash the caller passes as `parent_hash`. The base
        fee is set afterwards because py-evm refuses any but the London formula's, and a
        zero-base-fee network (Besu's `zeroBaseFee`) keeps it at 0.
        """
        header = TallyVM.create_header_from_parent(parent, **fields)
        return header.copy(parent_hash=parent_hash, base_fee_per_gas=base_fee)

    def execute(
        self,
        db: AtomicDatabaseAPI,
        headers: HeaderLookup,
        header: BlockHeaderAPI,
        transactions: Iterable[Executable],
        *,
        building: bool,
        deadline: float | None = None,
        sender_allowed: Callable[[bytes], bool] | None = None,
    ) -> ExecutedBlock:
        """Apply `transactions` on `header` (its roots and gas fields are recomputed).

        When `building`, a transaction that does not fit the remaining gas is deferred (with its
        sender's later ones) and one that is invalid against the current state is skipped;
        otherwise (re-executing a received block) either is a `BlockRejected`. An
        `AdmittedTransaction` brings its hash and skips the stateless checks the pool already
        did; any other is checked in full.
        A building `deadline` (`time.monotonic()` value) defers whatever is left once passed:
        a proposal must leave validators time to re-execute it within the round.
        `sender_allowed` is the account permissioning in force at the parent block: a
        transaction from anyone else is skipped when building and rejects a received block.
        """
        builder = self.start(db, headers, header, building=building, sender_allowed=sender_allowed)
        builder.apply(transactions, deadline)
        return builder.finish()

    def start(
        self,
        db: AtomicDatabaseAPI,
        headers: HeaderLookup,
        header: BlockHeaderAPI,
        *,
        building: bool,
        sender_allowed: Callable[[bytes], bool] | None = None,
    ) -> BlockBuilder:
        """A block open on `header` for transactions applied in one or more batches
        (`execute`'s arguments mean the same here)."""
        return BlockBuilder(
            TallyVM(
                header=header,
                # The VM reads only `db` and `get_block_header_by_hash` of its chain database.
                chaindb=cast(ChainDatabaseAPI, HeaderSource(db, headers)),
                chain_context=self._chain_context,
                consensus_context=ConsensusContext(db),
            ),
            header,
            building=building,
            sender_allowed=sender_allowed,
        )


class BlockBuilder:
    """One block being executed: transactions go in by batches, then `finish` seals its roots.

    A proposer may open its next block before its turn comes and apply what its pool holds
    meanwhile (`node.consensus.speculation`); re-execution applies a block's list at once.
    """

    def __init__(
        self,
        vm: TallyVM,
        header: BlockHeaderAPI,
        *,
        building: bool,
        sender_allowed: Callable[[bytes], bool] | None,
    ) -> None:
        self._vm = vm
        self._header = header
        self._block = vm.start_block(header)
        vm.block_preprocessing(self._block)
        self._state = cast(TallyState, vm.state)  # TallyVM builds TallyStates; py-evm: StateAPI
        self._building = building
        self._sender_allowed = sender_allowed
        self._cursor = GasCursor(header.gas_limit)
        self._bloom = 0
        self._base_fee = prague_header(header).base_fee_per_gas
        self.executed: list[ExecutedTransaction] = []
        self.skipped: list[tuple[Executable, str]] = []
        self.deferred: list[Executable] = []
        """What the latest `apply` left out for lack of gas or time, as it was given."""

    def apply(self, transactions: Iterable[Executable], deadline: float | None = None) -> None:
        """Execute `transactions` in order after those already applied."""
        building = self._building
        sender_allowed = self._sender_allowed
        vm = self._vm
        cursor = self._cursor
        gas_limit = cursor.gas_limit
        executed = self.executed
        skipped = self.skipped
        self.deferred = deferred = []
        waiting: set[bytes] = set()  # senders with a deferred transaction, whose later nonces wait
        for item in transactions:
            tx = unwrap(item)
            sender = item.sender if isinstance(item, AdmittedTransaction) else tx.sender
            if building and (
                sender in waiting or (deadline is not None and time.monotonic() > deadline)
            ):
                deferred.append(item)
                waiting.add(sender)
                continue
            if sender_allowed is not None:
                if not sender_allowed(sender):
                    if not building:
                        raise BlockRejected(f"sender 0x{sender.hex()} is not permitted")
                    skipped.append((item, "sender account not permitted"))
                    continue
                authority = forbidden_authority(tx, sender_allowed)
                if authority is not None:
                    if not building:
                        raise BlockRejected(f"authority 0x{authority.hex()} is not permitted")
                    skipped.append((item, AUTHORITY_NOT_PERMITTED))
                    continue
            if cursor.gas_used + tx.gas > gas_limit:
                if not building:
                    raise BlockRejected("transactions exceed the block gas limit")
                deferred.append(item)
                waiting.add(sender)
                continue
            try:
                receipt, computation = vm.apply_in_block(cursor, item)
            except ValidationError as exc:
                if not building:
                    raise BlockRejected(f"invalid transaction: {exc}") from exc
                skipped.append((item, str(exc)))
                continue
            self._bloom |= receipt.bloom
            executed.append(
                ExecutedTransaction(
                    tx=tx,
                    tx_hash=item.hash if isinstance(item, AdmittedTransaction) else tx_hash_of(tx),
                    sender=sender,
                    receipt=receipt,
                    gas_used=receipt.gas_used - cursor.gas_used,
                    effective_gas_price=effective_gas_price(tx, self._base_fee),
                    contract_address=_created_address(tx, computation),
                    internal_calls=collect(computation),
                    error=error_description(computation) if computation.is_error else "",
                )
            )
            cursor.gas_used = receipt.gas_used

    def finish(self, extra_data: bytes | None = None) -> ExecutedBlock:
        """Post-process and seal the roots; nothing may be applied afterwards.

        `extra_data` replaces the header's: no opcode reads it, so a block opened before its
        round or vote were known executes the same.
        """
        vm = self._vm
        executed = self.executed
        receipts = tuple(item.receipt for item in executed)
        vm.receipts_for_postprocessing = receipts
        header = self._header
        if extra_data is not None:
            header = header.copy(extra_data=extra_data)
        # Prague's post-processing reads only the header and the receipts handed over above;
        # the block keeps no transactions because its `copy()` would deep-copy them all.
        filled = self._block.copy(
            header=header.copy(
                gas_used=self._cursor.gas_used,
                bloom=self._bloom,
                blob_gas_used=0,
                transaction_root=ordered_trie_root([item.tx.encode() for item in executed]),
                receipt_root=ordered_trie_root([receipt.encode() for receipt in receipts]),
            )
        )
        processed = vm.block_postprocessing(filled)
        state = self._state
        state.persist()
        return ExecutedBlock(
            processed.header.copy(state_root=state.state_root),
            executed,
            self.skipped,
            self.deferred,
            state.state_diff(),
        )


def _created_address(tx: SignedTransactionAPI, computation: ComputationAPI) -> bytes:
    if tx.to != b"":
        return b""
    return computation.msg.storage_address


def header_fields_for_reexecution(block_header: BlockHeaderAPI) -> dict[str, object]:
    """The header fields a proposer chose, which re-execution must keep as given."""
    return {
        "coinbase": block_header.coinbase,
        "timestamp": block_header.timestamp,
        "gas_limit": block_header.gas_limit,
        "extra_data": block_header.extra_data,
        "mix_hash": block_header.mix_hash,
        "nonce": block_header.nonce,
        "difficulty": block_header.difficulty,
        "parent_beacon_block_root": block_header.parent_beacon_block_root,
    }


def check_reexecuted(claimed: BlockHeaderAPI, computed: BlockHeaderAPI) -> None:
    """Raise `BlockRejected` naming the first header field re-execution disagrees with."""
    for name in (
        "state_root",
        "transaction_root",
        "receipt_root",
        "gas_used",
        "bloom",
        "requests_hash",
        "withdrawals_root",
        "blob_gas_used",
        "excess_blob_gas",
    ):
        if getattr(claimed, name) != getattr(computed, name):
            raise BlockRejected(f"{name} mismatch after re-execution")
