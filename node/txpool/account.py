"""One sender's transactions, split into pending (executable) and queued (future).

The pool keeps, per sender, the state nonce it last saw (`base`) and the end of the run of
consecutive nonces starting there (`pending_end`). Nonces in `[base, pending_end)` are pending:
a block could include them in order now. Nonces at or past `pending_end` are queued behind a
gap and become pending, in one step, when the gap is filled. Keeping only these two integers
makes "is it pending?" a comparison and promotion a walk over the newly joined nonces.

Invariant: no held nonce is below `base` (admission refuses them and `rebase` drops them).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

from eth_typing import Address

from node.txpool.transaction import PooledTransaction


class SenderTxs:
    """The nonce-indexed transactions of one sender, with the pending/queued boundary."""

    __slots__ = ("base", "nonces", "pending_end", "sender", "tail_mark", "txs")

    def __init__(self, sender: Address, base: int) -> None:
        self.sender = sender
        self.base = base
        self.pending_end = base
        self.txs: dict[int, PooledTransaction] = {}
        self.nonces: list[int] = []
        # The pool's record of the tail it last indexed for eviction: (hash, is_pending).
        self.tail_mark: tuple[bytes, bool] | None = None

    def __len__(self) -> int:
        return len(self.nonces)

    def is_pending(self, nonce: int) -> bool:
        """Whether the transaction at `nonce` is executable now."""
        return nonce < self.pending_end

    def tail(self) -> PooledTransaction | None:
        """The highest-nonce transaction: the only one that can leave without opening a gap."""
        return self.txs[self.nonces[-1]] if self.nonces else None

    def pending(self) -> Iterator[PooledTransaction]:
        """Pending transactions in nonce order."""
        txs = self.txs
        for nonce in range(self.base, self.pending_end):
            yield txs[nonce]

    def insert(self, ptx: PooledTransaction) -> list[PooledTransaction]:
        """Add a transaction at a free nonce; return those that became pending, in order."""
        nonce = ptx.nonce
        self.txs[nonce] = ptx
        nonces = self.nonces
        if not nonces or nonce > nonces[-1]:
            nonces.append(nonce)
        else:
            insort(nonces, nonce)
        if nonce != self.pending_end:
            return []
        return self._extend_pending()

    def replace(self, ptx: PooledTransaction) -> PooledTransaction:
        """Put `ptx` in place of the transaction with its nonce; return the one replaced."""
        old = self.txs[ptx.nonce]
        self.txs[ptx.nonce] = ptx
        return old

    def remove(self, nonce: int) -> PooledTransaction:
        """Remove one transaction; later pending ones are demoted to queued behind the gap."""
        ptx = self.txs.pop(nonce)
        nonces = self.nonces
        if nonces[-1] == nonce:
            nonces.pop()
        else:
            del nonces[bisect_left(nonces, nonce)]
        if nonce < self.pending_end:
            self.pending_end = nonce
        return ptx

    def rebase(self, state_nonce: int) -> tuple[list[PooledTransaction], list[PooledTransaction]]:
        """Move to a new state nonce: return (dropped as stale, newly pending).

        Transactions below the new nonce were included in a block (or replaced by one that
        was); those at and above it keep their places, and queued ones that now start at the
        state nonce are promoted.
        """
        nonces = self.nonces
        cut = bisect_left(nonces, state_nonce)
        stale = [self.txs.pop(nonce) for nonce in nonces[:cut]]
        del nonces[:cut]
        old_end = self.pending_end
        if self.base <= state_nonce <= old_end:
            self.base = state_nonce
        else:
            self.base = self.pending_end = state_nonce
        promoted_from = max(old_end, self.base)
        self._extend_pending()
        promoted = [self.txs[n] for n in range(promoted_from, self.pending_end)]
        return stale, promoted

    def drop_costlier_than(self, balance: int) -> list[PooledTransaction]:
        """Drop every transaction whose cost exceeds `balance`; later ones become queued."""
        dropped = [self.txs[n] for n in self.nonces if self.txs[n].cost > balance]
        for ptx in dropped:
            self.remove(ptx.nonce)
        return dropped

    def _extend_pending(self) -> list[PooledTransaction]:
        """Walk `pending_end` over consecutive held nonces; return the transactions passed."""
        txs = self.txs
        start = end = self.pending_end
        while end in txs:
            end += 1
        self.pending_end = end
        return [txs[n] for n in range(start, end)]
