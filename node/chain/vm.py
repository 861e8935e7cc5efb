"""Tally's transactions and headers as the rest of the node handles them: decoding, fee fields.

The EVM itself (py-evm's Prague VM with Tally's overrides) is in `node.chain.evm`.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from eth.abc import BlockHeaderAPI, SignedTransactionAPI, TransactionBuilderAPI
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


def transaction_fields(tx: SignedTransactionAPI) -> dict[str, Any]:
    """The fee fields of any transaction type, normalised (legacy: both fees = gas price)."""
    if hasattr(tx, "max_fee_per_gas"):
        return {
            "max_fee_per_gas": tx.max_fee_per_gas,
            "max_priority_fee_per_gas": tx.max_priority_fee_per_gas,
        }
    return {"max_fee_per_gas": tx.gas_price, "max_priority_fee_per_gas": tx.gas_price}
