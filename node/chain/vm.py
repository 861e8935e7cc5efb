"""Tally's transactions and headers as the rest of the node handles them: decoding, fee fields.

The EVM itself (py-evm's Prague VM with Tally's overrides) is in `node.chain.evm`.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from coincurve import PublicKey
from eth.abc import BlockHeaderAPI, SignedTransactionAPI, TransactionBuilderAPI
from eth_hash.auto import keccak
from eth_typing import Address, Hash32

from node.chain.evm.vm import TallyVM

FORK_NAME = "prague"


class PragueHeader(Protocol):
    """The header fields py-evm's fork-generic `BlockHeaderAPI` types as optional, or lacks.

    Tally runs Prague from genesis, so every header is a `PragueBlockHeader` and always has
    them; see `prague_header`.
    """

    @property
    def base_fee_per_gas(self) -> int: ...

    @property
    def withdrawals_root(self) -> Hash32: ...

    @property
    def parent_beacon_block_root(self) -> Hash32: ...

    @property
    def requests_hash(self) -> Hash32: ...


def prague_header(header: BlockHeaderAPI) -> PragueHeader:
    """`header` typed with its Prague fields present (a cast: no check, no copy)."""
    return cast(PragueHeader, header)


TRANSACTION_BUILDER: type[TransactionBuilderAPI] = TallyVM.get_transaction_builder()


def decode_transaction(raw: bytes) -> SignedTransactionAPI:
    """Decode a raw (legacy RLP or EIP-2718 typed) signed transaction.

    Raises whatever py-evm raises for malformed input (rlp.DecodingError, ValidationError,
    ValueError); callers at the edge translate that into a user-facing rejection.
    """
    return TRANSACTION_BUILDER.decode(raw)


def decode_recorded(raw: bytes, sender: Address) -> SignedTransactionAPI:
    """A stored transaction, decoded with the sender its record holds (recovered here when
    its block was accepted), so that replaying it recovers no signature again.

    py-evm caches a transaction's `sender` in the object's `__dict__` (a `cached_property`,
    which instance attributes override), which is where the recorded one is put; left
    empty, reading `sender` recovers it (about 100 us).
    """
    tx = decode_transaction(raw)
    tx.__dict__["sender"] = sender
    return tx


def recover_sender(tx: SignedTransactionAPI) -> Address:
    """`tx.sender`, recovered from the same message hash by the same libsecp256k1 call that
    py-evm's recovery ends in, and cached where py-evm caches it (see `decode_recorded`).

    Every validator recovers the sender of every transaction it admits. py-evm gets there
    through eth_keys, which builds a `Signature` (validating r, s and v again), looks its
    backend up, and wraps the key in a `PublicKey` before hashing it: 150 us a transfer, 52
    of them in libsecp256k1. This skips the wrappers, not a step: coincurve is eth_keys'
    backend here, given the bytes `Signature.to_bytes` gives it, and the address is the
    keccak of the uncompressed key, as `PublicKey.to_canonical_address` takes it (115 us).

    The caller has checked r and s (0 < r < n, 0 < s <= n/2) and the parity. An unrecoverable
    signature raises `ValueError`, as coincurve does.
    """
    signature = tx.r.to_bytes(32, "big") + tx.s.to_bytes(32, "big") + bytes((tx.y_parity,))
    message_hash = keccak(tx.get_message_for_signing())
    public_key = PublicKey.from_signature_and_message(signature, message_hash, hasher=None)
    sender = Address(keccak(public_key.format(compressed=False)[1:])[12:])
    tx.__dict__["sender"] = sender
    return sender


def transaction_fields(tx: SignedTransactionAPI) -> dict[str, Any]:
    """The fee fields of any transaction type, normalised (legacy: both fees = gas price)."""
    if hasattr(tx, "max_fee_per_gas"):
        return {
            "max_fee_per_gas": tx.max_fee_per_gas,
            "max_priority_fee_per_gas": tx.max_priority_fee_per_gas,
        }
    return {"max_fee_per_gas": tx.gas_price, "max_priority_fee_per_gas": tx.gas_price}
