"""A transaction this node's pool admitted, carried as such to the block executor.

Admission checks a transaction's fields, intrinsic gas and signature and recovers its sender
(`node.txpool.admission`); execution then re-checks only what depends on the state (nonce,
balance, fee against the base fee). The executor trusts a transaction that way only when it
arrives as an `AdmittedTransaction`: the trust travels with the value, not with the identity
of an object, so it cannot leak to another object that happens to reuse its address.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth.abc import SignedTransactionAPI
from eth_typing import Address


@dataclass(frozen=True, slots=True)
class AdmittedTransaction:
    """`tx` as admission decoded it (sender recovered and cached), with its sender and hash.

    Only the pool makes one (`PooledTransaction.admitted`); a plain `SignedTransactionAPI`
    handed to the executor is validated in full.
    """

    tx: SignedTransactionAPI
    sender: Address
    hash: bytes


Executable = SignedTransactionAPI | AdmittedTransaction
"""What the executor runs: an admitted transaction, or any other, checked in full."""


def unwrap(item: Executable) -> SignedTransactionAPI:
    """The py-evm transaction of `item`."""
    return item.tx if isinstance(item, AdmittedTransaction) else item
