"""Every key Tally writes to its key-value store, in one place.

py-evm writes state-trie nodes and contract code under their bare 32-byte keccak hashes. Every
key below is a one-byte prefix plus a fixed-width payload whose total length is never 32 bytes,
so the two key spaces cannot collide.

| key                                  | value                                               |
|--------------------------------------|-----------------------------------------------------|
| `HEAD`                               | hash of the canonical head block                    |
| `GENESIS`                            | the genesis document (JSON) this datadir was made of |
| `GENESIS_SHA256`                     | sha256 of the genesis file (bytes) it last ran from |
| `n` + number (8, big-endian)         | canonical block hash at that height                 |
| `h` + block hash (32)                | header RLP                                          |
| `b` + block hash (32)                | body: the block's transaction hashes, concatenated  |
| `t` + tx hash (32)                   | transaction record (`TransactionRecord` RLP)        |
| `r` + tx hash (32)                   | receipt record (`ReceiptRecord` RLP)                |
| `a` + address (20) + number (8) + index (4) | empty: the account sent or received that tx  |
| `v` + block hash (32)                | validator set and pending votes after that block    |
| `x` + address (20) + log position (16) | `TokenTransferRecord`: an ERC-20 Transfer from/to it |
| `f` + payer (20) + log position (16) | `FeeRecord`: a WalletToken FeeCharged the payer paid |
| `s` + kind (1) + id (8)              | `SettlementRecord`: an escrow, batch or netting cycle |
| `o` + opened block (8) + kind (1) + id (8) | empty: every settlement, in order of opening   |
| `p` + party (20) + opened block (8) + kind (1) + id (8) | empty: a settlement the party is in |
| `i` + address (20) + block (8) + tx (4) + call (4) | `InternalCallRecord`: from/to it |
| `I` + tx hash (32)                   | `TxInternalsRecord`: its internal txs, why it failed |
| `q` + number (8)                     | block hash: its `i`/`I` entries still to be backfilled |
| `w` + hold id (8)                    | `HoldRecord`: a payment held for review, as it stands |
| `W` + party (20) + log position (16) | hold id (8): a held payment from or to the party    |
| `P` + account (20) + log position (16) | `PointsRecord`: a points event of the account's    |
| `K` + sha256 of an API key (32)      | REST API credential (JSON: role, label, addresses) |
| `M` + address (20)                   | merchant registry entry (JSON: name, category) |
| `S` + stream id (16)                 | event-stream subscription (JSON, `node.api.streams`) |
| `C` + stream id (16)                 | its cursor (JSON: last acked (block, log index), state) |

A log position is block number (8) + transaction index (4) + log index in the block (4), all
big-endian, so keys sort in chain order (an internal call's position is block, transaction
index and its order in the transaction). The `x f s o p i I w W P` indexes are written in the
block's own batch, except `i I` of a block accepted from its proposer's state diff: its batch
writes `q` instead, and `node.chain.backfill` later replays the block and swaps `q` for its
`i I` in one batch. `K`, `M`, `S` and `C` are node-local REST API data, written outside blocks
and never hashed into any root. A scan of a whole one-byte prefix also meets state-trie nodes
whose hash starts with that byte (one in 256 of them): scans keep only keys of their own
length, and the `q` scan after every block reads only the range of numbers up to the head.
"""

from __future__ import annotations

HEAD_KEY = b"HEAD"
GENESIS_KEY = b"GENESIS"
GENESIS_SHA256_KEY = b"GENESIS_SHA256"

_CANONICAL = b"n"
_HEADER = b"h"
_BODY = b"b"
_TRANSACTION = b"t"
_RECEIPT = b"r"
_ACCOUNT_TX = b"a"
_VALIDATORS = b"v"
_TOKEN_TRANSFER = b"x"
_FEE = b"f"
_SETTLEMENT = b"s"
_SETTLEMENT_ORDER = b"o"
_SETTLEMENT_PARTY = b"p"
_INTERNAL = b"i"
_TX_INTERNALS = b"I"
_INTERNALS_PENDING = b"q"
_HOLD = b"w"
_HOLD_PARTY = b"W"
_POINTS = b"P"
_API_KEY = b"K"
_MERCHANT = b"M"
_STREAM = b"S"
_STREAM_CURSOR = b"C"


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


def validators_key(block_hash: bytes) -> bytes:
    return _VALIDATORS + block_hash


def token_transfer_prefix(address: bytes) -> bytes:
    return _TOKEN_TRANSFER + address


def fee_prefix(payer: bytes) -> bytes:
    return _FEE + payer


def settlement_key(kind: int, settlement_id: int) -> bytes:
    return _SETTLEMENT + bytes([kind]) + settlement_id.to_bytes(8, "big")


def settlement_order_prefix() -> bytes:
    return _SETTLEMENT_ORDER


def settlement_party_prefix(party: bytes) -> bytes:
    return _SETTLEMENT_PARTY + party


def internal_call_prefix(address: bytes) -> bytes:
    return _INTERNAL + address


def tx_internals_key(tx_hash: bytes) -> bytes:
    return _TX_INTERNALS + tx_hash


def internals_pending_key(number: int) -> bytes:
    return _INTERNALS_PENDING + number.to_bytes(8, "big")


INTERNALS_PENDING_KEY_LENGTH = 9
"""`q` + number: what tells a marker from a state-trie node whose hash starts with `q`."""


def decode_internals_pending_key(key: bytes) -> int:
    """The block number of an `internals_pending_key`."""
    return int.from_bytes(key[1:9], "big")


def hold_key(hold_id: int) -> bytes:
    return _HOLD + hold_id.to_bytes(8, "big")


def hold_party_prefix(party: bytes) -> bytes:
    return _HOLD_PARTY + party


def points_prefix(account: bytes) -> bytes:
    return _POINTS + account


def api_key_key(digest: bytes) -> bytes:
    return _API_KEY + digest


def api_key_prefix() -> bytes:
    return _API_KEY


def merchant_key(address: bytes) -> bytes:
    return _MERCHANT + address


def merchant_prefix() -> bytes:
    return _MERCHANT


def stream_key(stream_id: bytes) -> bytes:
    return _STREAM + stream_id


def stream_prefix() -> bytes:
    return _STREAM


def stream_cursor_key(stream_id: bytes) -> bytes:
    return _STREAM_CURSOR + stream_id
