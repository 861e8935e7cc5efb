"""A pending block built from a proposal and its proposer's state diff, without executing it.

Used only by the validators `node.consensus.scheduling` designates to check a round-0
proposal against the proposer's diff instead of re-executing it (see there for why that keeps
QBFT's guarantees). Everything that does not need execution is still checked here: the block
extends the head, its base fee follows the parent's, every sender is permitted, the
transaction root, the receipts against the receipt root and the header's gas used and bloom,
and the diff against the state root (`node.chain.state_diff`).
"""

from __future__ import annotations

from collections.abc import Sequence

import rlp
from eth.abc import BlockHeaderAPI, ReceiptAPI
from eth.db.account import AccountDB
from eth_keys.exceptions import BadSignature
from eth_utils import ValidationError

from node.chain.admitted import Executable, unwrap
from node.chain.call_free import index_is_empty
from node.chain.chain import Chain, PendingBlock
from node.chain.evm.internals import generate_contract_address
from node.chain.evm.vm import TallyVM
from node.chain.executor import (
    ExecutedBlock,
    ExecutedTransaction,
    effective_gas_price,
    tx_hash_of,
)
from node.chain.priority import block_work
from node.chain.roots import ordered_trie_root
from node.chain.setcode import forbidden_authority
from node.chain.state_diff import HASH_LENGTH, DiffRejected, StateDiff, apply_state_diff

RECEIPT_BUILDER = TallyVM.get_receipt_builder()


def encode_diff_message(block_hash: bytes, executed: ExecutedBlock) -> bytes:
    """What a proposer sends the designated validators: the block hash (so the receiver can
    file it without decoding), then the RLP of the state diff and the receipts."""
    if executed.state_diff is None:
        raise ValueError("the block's execution recorded no state diff")
    receipts = [item.receipt.encode() for item in executed.transactions]
    return block_hash + rlp.encode([executed.state_diff.to_rlp(), receipts])


def decode_diff_message(payload: bytes) -> tuple[bytes, StateDiff, list[bytes]]:
    """(block hash, diff, encoded receipts); raises `DiffRejected` if malformed."""
    block_hash, body = payload[:HASH_LENGTH], payload[HASH_LENGTH:]
    try:
        diff_item, receipts = rlp.decode(body)
    except (rlp.DecodingError, ValueError) as exc:
        raise DiffRejected(f"undecodable diff message: {exc}") from exc
    if len(block_hash) != HASH_LENGTH:
        raise DiffRejected("diff message without a block hash")
    if not isinstance(receipts, list) or not all(isinstance(r, bytes) for r in receipts):
        raise DiffRejected("diff message receipts are not a list of strings")
    return block_hash, StateDiff.from_rlp(diff_item), receipts


@block_work
def import_with_diff(
    chain: Chain,
    header: BlockHeaderAPI,
    block_transactions: Sequence[Executable],
    diff: StateDiff,
    encoded_receipts: Sequence[bytes],
) -> PendingBlock:
    """The block's pending state and records from `diff`; raises `DiffRejected` on any
    disagreement with the header (the caller then re-executes instead).

    Admitted transactions are taken as their py-evm transactions: nothing is executed here,
    and a sender recovered at admission is cached on the transaction itself.
    """
    transactions = [unwrap(item) for item in block_transactions]
    if header.parent_hash != chain.head_hash or header.block_number != chain.head.block_number + 1:
        raise DiffRejected("block does not extend the current head")
    if header.base_fee_per_gas != chain.child_base_fee(chain.head):
        raise DiffRejected("base fee does not follow the parent's")
    if len(encoded_receipts) != len(transactions):
        raise DiffRejected("one receipt per transaction is needed")
    if ordered_trie_root([tx.encode() for tx in transactions]) != header.transaction_root:
        raise DiffRejected("transactions do not match the transaction root")
    if ordered_trie_root(list(encoded_receipts)) != header.receipt_root:
        raise DiffRejected("receipts do not match the receipt root")
    receipts = [_decode_receipt(raw) for raw in encoded_receipts]
    allowed = chain.sender_rules(chain.head)
    executed = []
    bloom = 0
    previous_gas = 0
    for tx, receipt in zip(transactions, receipts, strict=True):
        try:
            sender = tx.sender
        except (BadSignature, ValidationError, ValueError) as exc:
            raise DiffRejected(f"transaction signature: {exc}") from exc
        if allowed is not None:
            if not allowed(sender):
                raise DiffRejected(f"sender 0x{sender.hex()} is not permitted")
            authority = forbidden_authority(tx, allowed)
            if authority is not None:
                raise DiffRejected(f"authority 0x{authority.hex()} is not permitted")
        if receipt.gas_used < previous_gas:
            raise DiffRejected("cumulative gas used decreases")
        bloom |= receipt.bloom
        created = generate_contract_address(sender, tx.nonce) if tx.to == b"" else b""
        executed.append(
            ExecutedTransaction(
                tx=tx,
                tx_hash=tx_hash_of(tx),
                sender=sender,
                receipt=receipt,
                gas_used=receipt.gas_used - previous_gas,
                effective_gas_price=effective_gas_price(tx, header.base_fee_per_gas),
                contract_address=created,
            )
        )
        previous_gas = receipt.gas_used
    if previous_gas != header.gas_used or bloom != header.bloom:
        raise DiffRejected("receipts disagree with the header's gas used or bloom")
    batch = chain.store.new_batch()
    writes = apply_state_diff(
        batch.__getitem__,
        batch.__contains__,
        chain.head.state_root,
        diff,
        header.state_root,
    )
    for key, value in writes.items():
        batch[key] = value
    replay_needed = not index_is_empty(
        AccountDB(chain.store.store, chain.head.state_root),
        AccountDB(batch, header.state_root),
        transactions,
        receipts,
    )
    return PendingBlock(
        chain.head_hash,
        ExecutedBlock(header, executed),
        batch,
        internal_calls_pending=replay_needed,
    )


def _decode_receipt(raw: bytes) -> ReceiptAPI:
    try:
        return RECEIPT_BUILDER.decode(raw)
    except Exception as exc:  # py-evm raises several unrelated types for bad input
        raise DiffRejected(f"undecodable receipt: {exc!r}") from exc
