"""A transaction as the pool holds it: the decoded py-evm object plus what admission computed."""

from __future__ import annotations

from dataclasses import dataclass

from eth.abc import SignedTransactionAPI
from eth_typing import Address

from node.chain.admitted import AdmittedTransaction


@dataclass(frozen=True, slots=True)
class PooledTransaction:
    """One admitted transaction.

    `tx` is the very object py-evm decoded at admission, with its sender already recovered and
    cached: the block builder must execute this object, not re-decode `raw`, or it pays for
    signature recovery again (~100 us a transaction). `hash` is computed once here because
    py-evm does not cache it for legacy transactions.

    Legacy and EIP-2930 transactions have one gas price, which stands for both `max_fee` and
    `max_priority_fee`. `cost` is the most the transaction can take from the sender's balance:
    gas * max_fee + value. `seq` orders arrivals within one pool (earlier wins ties).
    `authorities` are the signers of a set-code transaction's authorizations (EIP-7702).
    """

    tx: SignedTransactionAPI
    hash: bytes
    sender: Address
    nonce: int
    gas: int
    max_fee: int
    max_priority_fee: int
    value: int
    cost: int
    size: int
    raw: bytes
    seq: int
    authorities: tuple[Address, ...] = ()

    @property
    def admitted(self) -> AdmittedTransaction:
        """This transaction as the block executor trusts an admitted one."""
        return AdmittedTransaction(self.tx, self.sender, self.hash)

    @property
    def tip_cap(self) -> int:
        """The tip paid at a zero base fee: what Tally's gas-free networks order by."""
        return self.max_priority_fee if self.max_priority_fee < self.max_fee else self.max_fee

    def effective_tip(self, base_fee: int) -> int:
        """The tip the block producer earns at `base_fee` (negative if the fee cap is below it)."""
        headroom = self.max_fee - base_fee
        return self.max_priority_fee if self.max_priority_fee < headroom else headroom
