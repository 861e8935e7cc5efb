"""What Tally stores per transaction and per receipt, as RLP records.

A receipt query is the hottest read a node serves (clients poll it after every send), so each
receipt is stored whole under its transaction hash with everything the JSON-RPC answer needs
(block, index, sender, log index offset): one key read and one decode, whatever the block size.
"""

from __future__ import annotations

import rlp
from rlp.sedes import Binary, CountableList, big_endian_int, binary

_hash32 = Binary.fixed_length(32)
_address = Binary.fixed_length(20)
_address_or_empty = Binary(min_length=0, max_length=20)


class LogRecord(rlp.Serializable):
    """One log: emitting contract, topics (32-byte each) and data."""

    fields = (
        ("address", _address),
        ("topics", CountableList(_hash32)),
        ("data", binary),
    )


class TransactionRecord(rlp.Serializable):
    """A mined transaction: its raw signed bytes, recovered sender and position."""

    fields = (
        ("raw", binary),
        ("sender", _address),
        ("block_hash", _hash32),
        ("block_number", big_endian_int),
        ("index", big_endian_int),
    )


class ReceiptRecord(rlp.Serializable):
    """A receipt with the derived fields clients ask for, computed once at block commit."""

    fields = (
        ("tx_type", big_endian_int),
        ("status", big_endian_int),
        ("cumulative_gas_used", big_endian_int),
        ("gas_used", big_endian_int),
        ("effective_gas_price", big_endian_int),
        ("contract_address", _address_or_empty),
        ("first_log_index", big_endian_int),
        ("logs", CountableList(LogRecord)),
    )


def encode_record(record: rlp.Serializable) -> bytes:
    return rlp.encode(record)


def decode_transaction_record(data: bytes) -> TransactionRecord:
    return rlp.decode(data, sedes=TransactionRecord)


def decode_receipt_record(data: bytes) -> ReceiptRecord:
    return rlp.decode(data, sedes=ReceiptRecord)
