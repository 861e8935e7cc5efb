"""The transaction pool: admitted transactions by sender, ready for the block builder.

Single-threaded by design, like the rest of the node's core: no locks, no I/O, no clock. The
caller serialises `add`, `select` and `on_new_block`.

Structures, and what each operation costs (n transactions, s senders):

- `_by_hash`: hash -> transaction. `get`, "already known": O(1).
- `_senders`: sender -> `SenderTxs` (nonce dict + sorted nonces + pending boundary).
  Insert at the next nonce, replacement, promotion: O(1) per transaction moved.
- Two lazy min-heaps of each sender's *tail* (highest nonce) keyed by price: one for senders
  whose tail is queued, one for those whose tail is pending. Eviction only ever takes a tail, so
  it never opens a nonce gap; it takes from the queued heap first, because a future
  transaction is worth less to the next block than an executable one. Entries are not deleted
  when a tail changes; a stale entry is recognised (its hash is no longer the sender's recorded
  tail) and discarded when it reaches the top, and both heaps are rebuilt when stale entries
  outnumber live ones. O(log n) amortised.
- `select` builds a heap over senders' first pending transactions: O(s + k log s) for k picked.

Prices: eviction and the full-pool comparison use the tip cap (min(max priority fee, max
fee)), then the fee cap, which is the effective tip at a zero base fee, as Tally's networks run.
`select` uses the effective tip at the base fee it is given.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from eth.abc import SignedTransactionAPI
from eth.vm.forks.prague.constants import DELEGATION_DESIGNATION_PREFIX
from eth_typing import Address

from node.chain.admitted import AdmittedTransaction
from node.txpool.account import SenderTxs
from node.txpool.admission import (
    AccountStateReader,
    AdmissionRules,
    check_account,
    decode_checked,
    transaction_hash,
)
from node.txpool.errors import (
    AccountLimitExceeded,
    AlreadyKnown,
    AuthorityNotPermitted,
    AuthorityReserved,
    InflightLimitReached,
    NonceTooHigh,
    OversizedTransaction,
    PoolFull,
    ReplacementUnderpriced,
    SenderNotPermitted,
)
from node.txpool.prechecks import Checked
from node.txpool.transaction import PooledTransaction

logger = logging.getLogger(__name__)

MIN_TX_GAS = 21_000
"""No transaction needs less: `select` stops once the remaining block gas is below it."""

# A heap entry: (tip cap, fee cap, -seq, hash, sender). Lower sorts first = evicted first; among
# equal prices the newest arrival goes first. seq is unique, so hash and sender never compare.
_TailEntry = tuple[int, int, int, bytes, Address]


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Capacity and replacement policy.

    `max_nonce_gap` bounds how far past a sender's next pending nonce a queued transaction may
    be. `min_gas_price` is the admission floor for the tip cap (0: private networks run free
    gas). `price_bump` is the percentage by which a replacement must raise both fee caps.
    """

    max_transactions: int = 8192
    max_per_sender: int = 1024
    max_nonce_gap: int = 1024
    min_gas_price: int = 0
    price_bump: int = 10


class TxPool:
    """Pending and queued transactions of every sender, with geth's admission semantics.

    `on_added` listeners are called with every transaction `add` takes in (a new nonce or a
    replacement, pending or queued), once it is in place and before any `on_pending` listener:
    the journal records each one there, so nothing admitted escapes it. `on_pending` listeners
    are called with each transaction that becomes pending (on arrival, on promotion when a gap
    fills, and for an accepted replacement of a pending one), after the pool is consistent
    again. A listener that raises is logged and otherwise ignored.

    `rules` may be replaced at any time (e.g. `dataclasses.replace(pool.rules, base_fee=...)`);
    its `min_gas_price` is overridden by the config's at construction.
    """

    def __init__(
        self,
        config: PoolConfig,
        rules: AdmissionRules,
        *,
        sender_allowed: Callable[[bytes], bool] | None = None,
        syncing: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.rules = replace(rules, min_gas_price=config.min_gas_price)
        self.on_added: list[Callable[[PooledTransaction], None]] = []
        self.on_pending: list[Callable[[PooledTransaction], None]] = []
        self.sender_allowed = sender_allowed
        """Account permissioning at the head (on-chain AccountRules), when the chain has it."""
        self.syncing = syncing
        """Whether this node knows its head is behind its peers' (block sync): its state nonces
        are then stale, and the nonce-gap limit is not applied (see `add`)."""
        self._by_hash: dict[bytes, PooledTransaction] = {}
        self._set_code: set[bytes] = set()  # hashes of pooled EIP-7702 txs (may be stale)
        self._senders: dict[Address, SenderTxs] = {}
        self._queued_tails: list[_TailEntry] = []
        self._pending_tails: list[_TailEntry] = []
        self._seq = 0
        self.removed: Counter[str] = Counter()

    # --- queries ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_hash)

    @property
    def arrivals(self) -> int:
        """How many transactions the pool has taken in. While it is unchanged (and no block
        came), `select` offers nothing it did not offer before."""
        return self._seq

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

    def admitted(self, tx_hash: bytes) -> AdmittedTransaction | None:
        """The transaction as admission checked it (sender recovered), for block import.

        A single dict read, safe from the block-import worker thread."""
        pooled = self._by_hash.get(tx_hash)
        return None if pooled is None else pooled.admitted

    def decoded(self, tx_hash: bytes) -> SignedTransactionAPI | None:
        """The object admission decoded, so that decoding a proposal reuses it (and its
        recovered sender); `admitted` then recognises it at import."""
        pooled = self._by_hash.get(tx_hash)
        return None if pooled is None else pooled.tx

    def get(self, tx_hash: bytes) -> PooledTransaction | None:
        """The pooled transaction with this hash, pending or queued."""
        return self._by_hash.get(tx_hash)

    def pending_nonce(self, address: Address, state: AccountStateReader) -> int:
        """The next nonce `address` should use: `eth_getTransactionCount(addr, "pending")`.

        The state nonce plus the sender's consecutive pending transactions. If the state moved
        since the pool last looked (a block this pool was not told about), the sender is
        re-based first, so the answer is never below the state nonce.
        """
        state_nonce = state.get_nonce(address)
        acct = self._senders.get(address)
        if acct is None:
            return state_nonce
        if acct.base != state_nonce:
            self._announce(self._rebase(acct, state_nonce, balance=None, included=frozenset()))
            acct = self._senders.get(address)
            if acct is None:
                return state_nonce
        return acct.pending_end

    def stats(self) -> dict[str, int]:
        """Counts for txpool_status and metrics: pending, queued, senders, total."""
        pending = 0
        for acct in self._senders.values():
            pending += acct.pending_end - acct.base
        total = len(self._by_hash)
        return {
            "pending": pending,
            "queued": total - pending,
            "senders": len(self._senders),
            "total": total,
        }

    def pending_transactions(self) -> Iterable[PooledTransaction]:
        """Every pending transaction, sender by sender in nonce order (for txpool_content)."""
        for acct in self._senders.values():
            yield from acct.pending()

    def transactions(self) -> Iterable[PooledTransaction]:
        """Every transaction, pending and queued, sender by sender in nonce order: an order in
        which `add` takes them all again (what the journal writes when it compacts)."""
        for acct in self._senders.values():
            txs = acct.txs
            for nonce in acct.nonces:
                yield txs[nonce]

    def is_pending(self, tx_hash: bytes) -> bool:
        """Whether the transaction with this hash is held and executable now (not queued)."""
        ptx = self._by_hash.get(tx_hash)
        return ptx is not None and self._is_pending(ptx)

    # --- admission ----------------------------------------------------------------------------

    def add(
        self,
        raw: bytes,
        state: AccountStateReader,
        *,
        restoring: bool = False,
        checked: Checked | None = None,
    ) -> PooledTransaction:
        """Admit `raw`, or raise the `TxPoolError` saying why not.

        Order: size and hash ("already known" costs one keccak), stateless validity and sender
        recovery, the sender's nonce and balance, then pool policy: replacement at the same
        nonce needs `price_bump` percent more on both fee caps; a new nonce must be within
        `max_nonce_gap` of the sender's next pending nonce and within `max_per_sender`; a full
        pool evicts one cheaper transaction of another sender or refuses.

        The gap limit keeps far-future transactions out when the state is current. It is not
        applied while `syncing` says the node is behind (a nonce valid at the network's head
        looks far ahead of a stale state; refusing it made a catching-up node answer "nonce
        too high" to valid transactions), nor when `restoring` a transaction this pool had
        admitted before a restart (the journal), which the node may again be behind. The
        per-sender and pool limits still bound what is held; once the node catches up,
        `on_new_block` drops what was mined and promotes what became executable.

        `checked` is the stateless part already done elsewhere (`node.txpool.prechecks`); it
        is used only if it is of these bytes and of the rules in force, else `raw` is checked
        here, so the answer is the same either way.
        """
        rules = self.rules
        if len(raw) > rules.max_tx_size:
            raise OversizedTransaction(len(raw), rules.max_tx_size)
        tx_hash = transaction_hash(raw)
        if tx_hash in self._by_hash:
            raise AlreadyKnown()
        self._seq += 1
        if checked is not None and checked.rules == rules and checked.ptx.raw == raw:
            ptx = replace(checked.ptx, seq=self._seq)
        else:
            ptx = decode_checked(raw, rules, tx_hash=tx_hash, seq=self._seq)
        sender = ptx.sender
        if self.sender_allowed is not None:
            if not self.sender_allowed(sender):
                raise SenderNotPermitted(sender)
            for authority in ptx.authorities:
                if not self.sender_allowed(authority):
                    raise AuthorityNotPermitted(authority)
        state_nonce = state.get_nonce(sender)
        check_account(ptx, state_nonce, state.get_balance(sender))

        self._check_delegation(ptx, state)
        acct = self._senders.get(sender)
        if acct is not None and acct.base != state_nonce:  # a block the pool was not told of
            self._announce(self._rebase(acct, state_nonce, balance=None, included=frozenset()))
            acct = self._senders.get(sender)
        if acct is not None and ptx.nonce in acct.txs:
            return self._replace(acct, ptx)

        next_nonce = acct.pending_end if acct is not None else state_nonce
        if (
            ptx.nonce - next_nonce > self.config.max_nonce_gap
            and not restoring
            and not (self.syncing is not None and self.syncing())
        ):
            raise NonceTooHigh(sender, ptx.nonce, next_nonce, self.config.max_nonce_gap)
        if acct is not None and len(acct) >= self.config.max_per_sender:
            raise AccountLimitExceeded(sender, self.config.max_per_sender)
        if len(self._by_hash) >= self.config.max_transactions:
            self._make_room(ptx, executable=ptx.nonce == next_nonce)
            acct = self._senders.get(sender)  # never evicted from, but keep it honest

        if acct is None:
            acct = self._senders[sender] = SenderTxs(sender, state_nonce)
        self._by_hash[ptx.hash] = ptx
        if ptx.authorities:
            self._set_code.add(ptx.hash)
        promoted = acct.insert(ptx)
        self._index_tail(acct)
        self._notify(self.on_added, (ptx,))
        self._announce(promoted)
        return ptx

    def _check_delegation(self, ptx: PooledTransaction, state: AccountStateReader) -> None:
        """geth's EIP-7702 pool rules. An authorization bumps its authority's nonce, and a
        delegated account's code can spend its balance, in transactions the pool cannot
        foresee: so a delegated account (or one a pooled authorization names) may have one
        transaction in the pool (a same-nonce replacement is still allowed), and a set-code
        transaction is refused while one of its authorities has more than one pooled."""
        sender = ptx.sender
        held = self._senders.get(sender)
        if held is not None and len(held) and ptx.nonce not in held.txs:
            code = state.get_code(sender)
            if code.startswith(DELEGATION_DESIGNATION_PREFIX) or sender in self._authorities():
                raise InflightLimitReached()
        for authority in ptx.authorities:
            reserved = self._senders.get(authority)
            if reserved is not None and len(reserved) > 1:
                raise AuthorityReserved()

    def _authorities(self) -> set[bytes]:
        """Authorities of the pooled set-code transactions; those that left the pool since
        are forgotten here, so the scan covers only set-code transactions still held."""
        live = {h for h in self._set_code if h in self._by_hash}
        self._set_code = live
        return {a for h in live for a in self._by_hash[h].authorities}

    def _replace(self, acct: SenderTxs, ptx: PooledTransaction) -> PooledTransaction:
        """Swap in `ptx` for the same nonce if it pays `price_bump` percent more on both caps.

        As geth: both caps must rise strictly and reach old * (100 + bump) // 100, so at zero
        fees a transaction cannot be replaced without starting to pay.
        """
        old = acct.txs[ptx.nonce]
        bump = 100 + self.config.price_bump
        fee_needed = max(old.max_fee * bump // 100, old.max_fee + 1)
        tip_needed = max(old.max_priority_fee * bump // 100, old.max_priority_fee + 1)
        if ptx.max_fee < fee_needed or ptx.max_priority_fee < tip_needed:
            raise ReplacementUnderpriced(
                f"max fee {ptx.max_fee} (need {fee_needed}), "
                f"priority fee {ptx.max_priority_fee} (need {tip_needed})"
            )
        acct.replace(ptx)
        del self._by_hash[old.hash]
        self._by_hash[ptx.hash] = ptx
        if ptx.authorities:
            self._set_code.add(ptx.hash)
        self.removed["replaced"] += 1
        self._index_tail(acct)
        self._notify(self.on_added, (ptx,))
        if acct.is_pending(ptx.nonce):
            self._announce((ptx,))
        return ptx

    def _make_room(self, ptx: PooledTransaction, *, executable: bool) -> None:
        """Evict one transaction of another sender that pays less than `ptx`, or raise.

        Queued tails go first; a pending tail only makes room for a transaction that would
        itself be pending (a future transaction never pushes out an executable one).
        """
        price = (ptx.tip_cap, ptx.max_fee)
        heaps = (self._queued_tails, self._pending_tails) if executable else (self._queued_tails,)
        for heap in heaps:
            victim = self._cheapest_tail(heap, heap is self._pending_tails, ptx.sender)
            if victim is not None and (victim[0], victim[1]) < price:
                self._remove_hashes((victim[3],), "evicted")
                return
        raise PoolFull()

    # --- block building -----------------------------------------------------------------------

    def select(self, gas_limit: int, base_fee: int) -> list[PooledTransaction]:
        """Candidates for the next block, in execution order; the pool is not changed.

        Per sender in nonce order; across senders the highest effective tip at `base_fee` first,
        earlier arrival on ties. A sender whose next transaction cannot pay the base fee or
        declares more gas than a block holds (`gas_limit`) contributes nothing further.

        The list is not cut where the gas the transactions declare adds up to `gas_limit`:
        the block builder fills the block by the gas they use, as geth's does (an ERC-20
        transfer declared at 60,000 uses about 37,000, so cutting at the declared gas left
        blocks 40 % empty). It holds at most as many as one block could, `gas_limit` // 21,000.
        The returned objects carry their recovered senders: execute `ptx.tx` as is.
        """
        heap: list[tuple[int, int, PooledTransaction, SenderTxs]] = []
        for acct in self._senders.values():
            if acct.pending_end > acct.base:
                first = acct.txs[acct.base]
                if first.max_fee >= base_fee and first.gas <= gas_limit:
                    heap.append((-first.effective_tip(base_fee), first.seq, first, acct))
        heapq.heapify(heap)
        chosen: list[PooledTransaction] = []
        room = gas_limit // MIN_TX_GAS
        while heap and len(chosen) < room:
            _, _, ptx, acct = heap[0]
            chosen.append(ptx)
            following = ptx.nonce + 1
            if following < acct.pending_end:
                nxt = acct.txs[following]
                if nxt.max_fee >= base_fee and nxt.gas <= gas_limit:
                    heapq.heapreplace(heap, (-nxt.effective_tip(base_fee), nxt.seq, nxt, acct))
                    continue
            heapq.heappop(heap)
        return chosen

    def on_new_block(
        self,
        included_hashes: Iterable[bytes],
        state: AccountStateReader,
        *,
        senders: Iterable[Address] = (),
    ) -> None:
        """Bring the pool up to a newly committed block whose post-state is `state`.

        Re-checks every sender with a transaction in the block that this pool held, plus any
        address in `senders` (pass the senders of all the block's transactions when the block
        came from a peer: the pool cannot know the senders of transactions it never saw). For
        each: transactions below the new state nonce are dropped (included or superseded);
        any transaction whose cost now exceeds the balance is dropped, as geth does, and the
        sender's later nonces fall back to queued behind the gap; queued transactions that are
        now consecutive from the state nonce are promoted and announced.

        Other senders are re-based lazily, at their next `add` or `pending_nonce`; until then a
        stale transaction may reach `select` and fail at execution, which `drop_invalid` handles.
        """
        included = frozenset(included_hashes)
        touched: dict[Address, None] = dict.fromkeys(senders)
        for tx_hash in included:
            ptx = self._by_hash.get(tx_hash)
            if ptx is not None:
                touched[ptx.sender] = None
        promoted: list[PooledTransaction] = []
        for sender in touched:
            acct = self._senders.get(sender)
            if acct is not None:
                promoted += self._rebase(
                    acct, state.get_nonce(sender), state.get_balance(sender), included
                )
        leftovers = [h for h in included if h in self._by_hash]
        if leftovers:  # included, yet at or above the state nonce: the state is not this block's
            self._remove_hashes(leftovers, "included")
        self._announce([p for p in promoted if self._is_pending(p)])

    # --- removal ------------------------------------------------------------------------------

    def remove(self, hashes: Iterable[bytes], reason: str) -> int:
        """Remove transactions by hash; later nonces of their senders become queued.

        `reason` is counted in `removed` (for metrics). Returns how many were in the pool.
        """
        return self._remove_hashes(hashes, reason)

    def drop_invalid(self, tx_hash: bytes) -> PooledTransaction | None:
        """Drop a transaction the block builder found invalid at execution.

        Its sender's later nonces cannot execute before the gap is filled, so they become
        queued; a replacement at the dropped nonce promotes them again.
        """
        ptx = self._by_hash.get(tx_hash)
        if ptx is not None:
            self._remove_hashes((tx_hash,), "invalid")
        return ptx

    # --- internals ----------------------------------------------------------------------------

    def _remove_hashes(self, hashes: Iterable[bytes], reason: str) -> int:
        count = 0
        for tx_hash in hashes:
            ptx = self._by_hash.pop(tx_hash, None)
            if ptx is None:
                continue
            acct = self._senders[ptx.sender]
            acct.remove(ptx.nonce)
            self._settle(acct)
            count += 1
        if count:
            self.removed[reason] += count
        return count

    def _rebase(
        self,
        acct: SenderTxs,
        state_nonce: int,
        balance: int | None,
        included: frozenset[bytes],
    ) -> list[PooledTransaction]:
        """Re-align one sender with the state; return its newly pending transactions."""
        stale, promoted = acct.rebase(state_nonce)
        dropped = acct.drop_costlier_than(balance) if balance is not None else []
        for ptx in stale:
            del self._by_hash[ptx.hash]
            self.removed["included" if ptx.hash in included else "stale"] += 1
        for ptx in dropped:
            del self._by_hash[ptx.hash]
            self.removed["insufficient funds"] += 1
        self._settle(acct)
        if dropped:
            promoted = [p for p in promoted if self._is_pending(p)]
        return promoted

    def _is_pending(self, ptx: PooledTransaction) -> bool:
        acct = self._senders.get(ptx.sender)
        return acct is not None and acct.txs.get(ptx.nonce) is ptx and acct.is_pending(ptx.nonce)

    def _settle(self, acct: SenderTxs) -> None:
        """After a sender changed: forget it if empty, else re-index its tail."""
        if not acct.nonces:
            del self._senders[acct.sender]
            acct.tail_mark = None
            return
        self._index_tail(acct)

    def _index_tail(self, acct: SenderTxs) -> None:
        """Push the sender's tail to the matching eviction heap if it changed."""
        tail = acct.txs[acct.nonces[-1]]
        pending = tail.nonce < acct.pending_end
        mark = (tail.hash, pending)
        if mark == acct.tail_mark:
            return
        acct.tail_mark = mark
        entry = (tail.tip_cap, tail.max_fee, -tail.seq, tail.hash, acct.sender)
        heapq.heappush(self._pending_tails if pending else self._queued_tails, entry)
        if len(self._queued_tails) + len(self._pending_tails) > 2 * len(self._senders) + 1024:
            self._rebuild_tails()

    def _cheapest_tail(
        self, heap: list[_TailEntry], pending: bool, exclude: bytes
    ) -> _TailEntry | None:
        """The live entry at the top of `heap` not belonging to `exclude`; stale ones are
        discarded on the way."""
        held: list[_TailEntry] = []
        found: _TailEntry | None = None
        while heap:
            entry = heap[0]
            acct = self._senders.get(entry[4])
            if acct is None or acct.tail_mark != (entry[3], pending):
                heapq.heappop(heap)
            elif entry[4] == exclude:
                held.append(heapq.heappop(heap))
            else:
                found = entry
                break
        for entry in held:
            heapq.heappush(heap, entry)
        return found

    def _rebuild_tails(self) -> None:
        """Drop stale heap entries: one live entry per sender remains."""
        queued: list[_TailEntry] = []
        pending: list[_TailEntry] = []
        for acct in self._senders.values():
            tail = acct.txs[acct.nonces[-1]]
            is_pending = tail.nonce < acct.pending_end
            acct.tail_mark = (tail.hash, is_pending)
            entry = (tail.tip_cap, tail.max_fee, -tail.seq, tail.hash, acct.sender)
            (pending if is_pending else queued).append(entry)
        heapq.heapify(queued)
        heapq.heapify(pending)
        self._queued_tails = queued
        self._pending_tails = pending

    def _announce(self, txs: Iterable[PooledTransaction]) -> None:
        self._notify(self.on_pending, txs)

    @staticmethod
    def _notify(
        listeners: list[Callable[[PooledTransaction], None]], txs: Iterable[PooledTransaction]
    ) -> None:
        if not listeners:
            return
        for ptx in txs:
            for listener in listeners:
                try:
                    listener(ptx)
                except Exception:
                    logger.exception("pool listener failed for %s", ptx.hash.hex())
