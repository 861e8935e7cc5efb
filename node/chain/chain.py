"""The chain: genesis, head, and turning executed blocks into committed ones.

`Chain` is the only writer of the block database. A block is built (or re-executed) into a
batch, sealed by the consensus engine, then committed with its records and the new head in one
atomic write; until then nothing of it is visible to readers.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from eth.abc import BlockHeaderAPI
from eth.db.account import AccountDB
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth_typing import Hash32

from node.chain.admitted import Executable
from node.chain.evm.state_db import TallyAccountDB
from node.chain.executor import (
    BlockBuilder,
    BlockExecutor,
    BlockRejected,
    ExecutedBlock,
    check_reexecuted,
    header_fields_for_reexecution,
)
from node.chain.genesis import Genesis, GenesisBlock, GenesisError
from node.chain.head import ChainHead
from node.chain.priority import BlockWork, block_work
from node.chain.rules import ConsensusRules
from node.domain.indexer import BlockIndexer
from node.qbftheader.rules import QBFT_RULES
from node.qbftheader.tally import VoteTally
from node.qbftheader.verify import QBFT_MIX_HASH
from node.storage.chainstore import ChainStore
from node.storage.records import LogRecord, ReceiptRecord, TransactionRecord
from node.storage.store import StoreBatch

_HEADER_CACHE_SIZE = 512
_HEAD_STATE_READS = 4_096
"""Reads one head state object serves before a fresh one replaces it: py-evm's account
database keeps every account it has read (and their storage lookups), so an idle chain's head
state grew by some 200 bytes for each address anyone asked about, for ever (issue 12)."""

SenderRules = Callable[[BlockHeaderAPI], Callable[[bytes], bool] | None]
"""Account permissioning as of a parent block: who may send (None: anyone)."""


def _anyone_may_send(parent: BlockHeaderAPI) -> None:
    return None


class DifferentChain(GenesisError):
    """The store holds another chain than the genesis it is opened with describes."""


@dataclass(slots=True)
class PendingBlock:
    """An executed, not yet committed block and the batch holding its state writes."""

    parent_hash: bytes
    executed: ExecutedBlock
    batch: StoreBatch
    internal_calls_pending: bool = False
    """Accepted from its proposer's state diff, not executed: its internal transactions are
    unknown until `node.chain.backfill` replays it, so commit marks it for that."""

    @property
    def header(self) -> BlockHeaderAPI:
        return self.executed.header


class OpenBlock:
    """A block being built on `parent_hash`: transactions go in by batches until `finish`.

    Its writes stay in its own batch, so an open block that is never finished (the head
    moved, its turn never came) is dropped without a trace.
    """

    def __init__(
        self,
        work: BlockWork,
        parent_hash: bytes,
        timestamp: int,
        builder: BlockBuilder,
        batch: StoreBatch,
    ) -> None:
        self.block_work = work
        self.parent_hash = parent_hash
        self.timestamp = timestamp
        self._builder = builder
        self._batch = batch

    @property
    def applied(self) -> int:
        """Transactions included so far."""
        return len(self._builder.executed)

    @property
    def deferred(self) -> list[Executable]:
        """What the latest `apply` left out for lack of gas or time, as it was given."""
        return self._builder.deferred

    @block_work
    def apply(self, transactions: Iterable[Executable], deadline: float | None = None) -> None:
        """Execute `transactions` after those already applied; a `deadline`
        (`time.monotonic()` value) defers whatever is left once it passes."""
        self._builder.apply(transactions, deadline)

    @block_work
    def finish(self, extra_data: bytes | None = None) -> PendingBlock:
        """The executed block, its header's extraData replaced by `extra_data` if given."""
        return PendingBlock(self.parent_hash, self._builder.finish(extra_data), self._batch)


class Chain:
    """Head tracking, block building, import and commit over one `ChainStore`."""

    def __init__(
        self,
        store: ChainStore,
        genesis: Genesis,
        consensus: ConsensusRules = QBFT_RULES,
        *,
        sender_rules: SenderRules = _anyone_may_send,
        genesis_sha256: bytes | None = None,
        block_zero: GenesisBlock | None = None,
    ) -> None:
        """`genesis_sha256` is the digest of the file `genesis` was read from, if it was
        (`node.chain.genesis_file`): recorded with block 0, it spares a restart on the same
        file the comparison of the stored document with `genesis` (`_check_genesis`).
        `block_zero`, `genesis` already built, is written as it is if the store is empty."""
        if block_zero is not None and block_zero.genesis is not genesis:
            raise ValueError("block_zero was built from another genesis")
        self.store = store
        self.genesis = genesis
        self.consensus = consensus
        self.executor = BlockExecutor(genesis.chain_id)
        self.indexer = BlockIndexer()
        self.block_work = BlockWork()
        self._headers: OrderedDict[bytes, BlockHeaderAPI] = OrderedDict()
        head_hash = store.head_hash()
        if head_hash is None:
            head_hash = self._write_genesis(genesis_sha256, block_zero)
        else:
            self._check_genesis(genesis_sha256)
        head = store.header(head_hash)
        if head is None:
            raise GenesisError("database names a head block it does not hold")
        self.tip = ChainHead(head, head_hash)
        """The head, replaced whole by `commit` (one assignment, so never seen half-moved)."""
        self._head_state: AccountDB | None = None
        self._head_state_reads = 0
        self.sender_rules = sender_rules
        """Account permissioning as of a parent block (on-chain AccountRules, if configured)."""

    @property
    def chain_id(self) -> int:
        return self.genesis.chain_id

    def block_hash(self, header: BlockHeaderAPI) -> Hash32:
        """The hash clients see for `header` (the consensus rules decide it)."""
        return self.consensus.block_hash(header)

    @property
    def head(self) -> BlockHeaderAPI:
        """The head header; take `tip` instead where the hash must match it."""
        return self.tip.header

    @property
    def head_hash(self) -> bytes:
        """The head's hash; take `tip` instead where the header must match it."""
        return self.tip.hash

    def _write_genesis(self, genesis_sha256: bytes | None, built: GenesisBlock | None) -> bytes:
        built = built or self.genesis.build()
        batch = self.store.new_batch()
        batch.pending.update(built.state)
        header = built.header
        block_hash = self.block_hash(header)
        self.store.save_genesis_document(batch, self.genesis.dumps().encode())
        if genesis_sha256 is not None:
            self.store.save_genesis_sha256(batch, genesis_sha256)
        self.store.save_block(batch, block_hash, header, [])
        self.store.save_validator_tally(
            batch, block_hash, self.consensus.genesis_tally(self.genesis.validators).encode()
        )
        self.store.commit(batch)
        return block_hash

    def _check_genesis(self, genesis_sha256: bytes | None) -> None:
        """Refuse a store holding another chain (`DifferentChain`).

        The same file bytes as the chain last ran from are the same chain: no parsing. Other
        bytes (a reformatted file, a datadir older than the digest, no file at all) are
        parsed and compared with the stored document, which for a 1,000,000-account genesis
        costs some 15 s each (issue 16); a file found to match is recorded, so the next start
        on it compares digests only.
        """
        if genesis_sha256 is not None and self.store.genesis_sha256() == genesis_sha256:
            return
        stored = self.store.genesis_document()
        if stored is None or Genesis.from_json(json.loads(stored)) != self.genesis:
            raise DifferentChain("the datadir holds a different chain than this genesis describes")
        if genesis_sha256 is not None:
            batch = self.store.new_batch()
            self.store.save_genesis_sha256(batch, genesis_sha256)
            self.store.commit(batch)

    def header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI | None:
        header = self._headers.get(block_hash)
        if header is None:
            header = self.store.header(block_hash)
            if header is not None:
                self._remember(block_hash, header)
        return header

    def header_by_number(self, number: int) -> BlockHeaderAPI | None:
        tip = self.tip
        if number == tip.number:
            return tip.header
        block_hash = self.store.canonical_hash(number)
        return None if block_hash is None else self.header_by_hash(block_hash)

    def _require_header(self, block_hash: bytes) -> BlockHeaderAPI:
        header = self.header_by_hash(block_hash)
        if header is None:
            raise KeyError(block_hash)
        return header

    def _remember(self, block_hash: bytes, header: BlockHeaderAPI) -> None:
        self._headers[block_hash] = header
        if len(self._headers) > _HEADER_CACHE_SIZE:
            self._headers.popitem(last=False)

    def validator_tally(self, block_hash: bytes) -> VoteTally:
        """Validators (and pending votes) in force for the child of `block_hash`."""
        data = self.store.validator_tally(block_hash)
        if data is None:
            raise KeyError(block_hash)
        return VoteTally.decode(data)

    def state_at(self, header: BlockHeaderAPI) -> AccountDB:
        """Read-only account state after `header` (writes to it are never persisted).

        The head's state object is kept until the head moves (or for `_HEAD_STATE_READS`
        reads), so that its account cache serves the many nonce and balance reads of
        transaction admission. Its reads walk the trie as execution's do, over the shared
        cache of decoded nodes (`TallyAccountDB`), not through py-evm's `HexaryTrie`, which
        decodes every node of the walk again: the pool re-reads every sender of each new
        block, and its re-checks took a third less CPU this way (four validators at an
        offered 400 ERC-20 tx/s: 0.11-0.12 s per validator and run before, 0.07-0.08 after).
        """
        if header is self.head:
            state = self._head_state
            self._head_state_reads += 1
            if (
                state is None
                or state.state_root != header.state_root
                or self._head_state_reads > _HEAD_STATE_READS
            ):
                state = self._head_state = TallyAccountDB(self.store.store, header.state_root)
                self._head_state_reads = 0
            return state
        return TallyAccountDB(self.store.store, header.state_root)

    def child_base_fee(self, parent: BlockHeaderAPI) -> int:
        """EIP-1559's base fee for the next block, or 0 on a zero-base-fee network."""
        if self.genesis.zero_base_fee:
            return 0
        return calculate_expected_base_fee_per_gas(parent)

    @block_work
    def build(
        self,
        transactions: Sequence[Executable],
        *,
        timestamp: int,
        coinbase: bytes,
        extra_data: bytes,
        deadline: float | None = None,
    ) -> PendingBlock:
        """Execute `transactions` on the head into a new, uncommitted block.

        Those the pool admitted come as `AdmittedTransaction`s: their signatures and fields
        were checked there, so execution skips those checks.
        """
        block = self.open_block(timestamp=timestamp, coinbase=coinbase, extra_data=extra_data)
        block.apply(transactions, deadline)
        return block.finish()

    def open_block(self, *, timestamp: int, coinbase: bytes, extra_data: bytes) -> OpenBlock:
        """A new block on the head, open for transactions until it is finished (`build`'s
        arguments mean the same here)."""
        tip = self.tip
        parent = tip.header
        header = self.executor.new_header(
            parent,
            parent_hash=tip.hash,
            timestamp=timestamp,
            coinbase=coinbase,
            gas_limit=self.genesis.gas_limit,
            extra_data=extra_data,
            mix_hash=QBFT_MIX_HASH,
            base_fee=self.child_base_fee(parent),
        )
        batch = self.store.new_batch()
        builder = self.executor.start(
            batch,
            self._require_header,
            header,
            building=True,
            sender_allowed=self.sender_rules(parent),
        )
        return OpenBlock(self.block_work, tip.hash, timestamp, builder, batch)

    @block_work
    def reexecute(
        self,
        header: BlockHeaderAPI,
        transactions: Iterable[Executable],
    ) -> PendingBlock:
        """Re-run a received block on its parent; raise `BlockRejected` if it disagrees.

        Transactions this node's pool admitted may come as `AdmittedTransaction`s (signature
        and fields already checked); the rest are validated in full.
        """
        tip = self.tip
        if header.parent_hash != tip.hash or header.block_number != tip.number + 1:
            raise BlockRejected("block does not extend the current head")
        if header.base_fee_per_gas != self.child_base_fee(tip.header):
            raise BlockRejected("base fee does not follow the parent's")
        template = self.executor.new_header(
            tip.header,
            parent_hash=tip.hash,
            base_fee=header.base_fee_per_gas,
            **header_fields_for_reexecution(header),
        )
        batch = self.store.new_batch()
        executed = self.executor.execute(
            batch,
            self._require_header,
            template,
            list(transactions),
            building=False,
            sender_allowed=self.sender_rules(tip.header),
        )
        check_reexecuted(header, executed.header)
        executed.header = header
        return PendingBlock(tip.hash, executed, batch)

    @block_work
    def commit(self, pending: PendingBlock, sealed_header: BlockHeaderAPI) -> bytes:
        """Write the sealed block, its records and the new head in one atomic batch."""
        if pending.parent_hash != self.tip.hash:
            raise BlockRejected("head moved while the block was pending")
        block_hash = self.block_hash(sealed_header)
        number = sealed_header.block_number
        records = []
        log_index = 0
        for index, item in enumerate(pending.executed.transactions):
            receipt = item.receipt
            # Positional, in `node.storage.records` field order: rlp.Serializable maps keywords
            # to positions slowly (a transaction record: 10 us with keywords, 2 without).
            tx_record = TransactionRecord(item.tx.encode(), item.sender, block_hash, number, index)
            logs = [
                LogRecord(log.address, [t.to_bytes(32, "big") for t in log.topics], log.data)
                for log in receipt.logs
            ]
            receipt_record = ReceiptRecord(
                item.tx.type_id or 0,  # tx_type
                int.from_bytes(receipt.state_root, "big") if receipt.state_root else 0,  # status
                receipt.gas_used,  # cumulative_gas_used
                item.gas_used,
                item.effective_gas_price,
                item.contract_address,
                log_index,  # first_log_index
                logs,
            )
            log_index += len(logs)
            counterparty = item.tx.to or item.contract_address
            records.append((item.tx_hash, tx_record, receipt_record, counterparty))
        self.store.save_block(pending.batch, block_hash, sealed_header, records)
        self.indexer.index_block(
            pending.batch, sealed_header.timestamp, [record[:3] for record in records]
        )
        if not pending.internal_calls_pending:
            self.indexer.index_internal_calls(
                pending.batch, number, sealed_header.timestamp, pending.executed.transactions
            )
        elif records:
            self.indexer.defer_internal_calls(pending.batch, number, block_hash)
        tally = self.consensus.tally_after(
            self.validator_tally(pending.parent_hash), sealed_header, self.genesis.epoch_length
        )
        self.store.save_validator_tally(pending.batch, block_hash, tally.encode())
        self.store.commit(pending.batch)
        self.store.remember(records)
        self._remember(block_hash, sealed_header)
        self.tip = ChainHead(sealed_header, block_hash)
        return block_hash
