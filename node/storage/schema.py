"""Every key Tally writes to its key-value store, in one place.

py-evm writes state-trie nodes and contract code under their bare 32-byte keccak hashes. Every
key below is a one-byte prefix plus a fixed-width payload whose total length is never 32 bytes,
so the two key spaces cannot collide.

| key                                  | value                                               |
|--------------------------------------|-----------------------------------------------------|
| `HEAD`                               | hash of the canonical head block                    |
| `GENESIS`                            | the genesis document (JSON) this datadir was made of |
| `n` + number (8, big-endian)         | canonical block hash at that height                 |
| `h` + block hash (32)                | header RLP                                          |
| `b` + block hash (32)                | body: the block's transaction hashes, concatenated  |
| `t` + tx hash (32)                   | transaction record (`TransactionRecord` RLP)        |
| `r` + tx hash (32)                   | receipt record (`ReceiptRecord` RLP)                |
| `a` + address (20) + number (8) + index (4) | empty: the account sent or received that tx  |
| `v` + block hash (32)                | validator set and pending votes after that block    |
"""

from __future__ import annotations

HEAD_KEY = b"HEAD"
GENESIS_KEY = b"GENESIS"

_CANONICAL = b"n"
_HEADER = b"h"
_BODY = b"b"
_TRANSACTION = b"t"
_RECEIPT = b"r"
_ACCOUNT_TX = b"a"
_VALIDATORS = b"v"


def canonical_hash_key(number: int) -> bytes:
    return _CANONICAL + number.to_bytes(8, "big")


def header_key(block_hash: bytes) -> bytes:
    return _HEADER + block_hash


def body_key(block_hash: bytes) -> bytes:
    return _BODY + block_hash


def transaction_key(tx_hash: bytes) -> bytes:
    return _TRANSACTION + tx_hash


def receipt_key(tx_hash: bytes) -> bytes:
    return _RECEIPT + tx_hash


def account_tx_key(address: bytes, number: int, index: int) -> bytes:
    return _ACCOUNT_TX + address + number.to_bytes(8, "big") + index.to_bytes(4, "big")


def account_tx_prefix(address: bytes) -> bytes:
    return _ACCOUNT_TX + address


def decode_account_tx_key(key: bytes) -> tuple[int, int]:
    """(block number, tx index) from an `account_tx_key`."""
    return int.from_bytes(key[21:29], "big"), int.from_bytes(key[29:33], "big")


def validators_key(block_hash: bytes) -> bytes:
    return _VALIDATORS + block_hash
