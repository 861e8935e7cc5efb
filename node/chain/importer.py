"""Importing a finished block from a peer: verify its QBFT seal, then re-execute and commit.

Used by block sync and by followers (member nodes, lagging validators). The checks follow
Besu's QBFT header rules (shared/QBFT.md §1): the parent link and the timestamp here, then the
chain's consensus rules (`node.qbftheader.verify`: the coinbase and extraData validator list
against the validators in force at that height, and at least a quorum of distinct commit seals
from those validators); then re-execution must reproduce the header's state, transaction and
receipt roots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eth.abc import BlockHeaderAPI, SignedTransactionAPI

from node.chain.admitted import AdmittedTransaction, Executable
from node.chain.chain import Chain, PendingBlock
from node.chain.executor import BlockRejected, check_reexecuted, tx_hash_of


def verify_seals(chain: Chain, header: BlockHeaderAPI) -> None:
    """Raise `BlockRejected` unless `header` is a correctly sealed child of the head."""
    if header.parent_hash != chain.head_hash:
        raise BlockRejected("block does not extend the current head")
    if header.block_number != chain.head.block_number + 1:
        raise BlockRejected("block number does not follow the head")
    if header.timestamp < chain.head.timestamp + chain.genesis.block_period_seconds:
        raise BlockRejected("timestamp is earlier than the block period allows")
    validators = chain.validator_tally(chain.head_hash).validators
    try:
        chain.consensus.verify_sealed(header, validators)
    except ValueError as exc:
        raise BlockRejected(str(exc)) from exc


AdmittedLookup = Callable[[bytes], AdmittedTransaction | None]
"""Transaction hash -> the transaction this node's pool admitted (signature checked), if any."""


def substitute_admitted(
    transactions: Sequence[SignedTransactionAPI], admitted: AdmittedLookup
) -> list[Executable]:
    """The block's transactions, with this node's admitted ones where it has them.

    A node usually received a block's transactions by gossip before the block: their
    signatures were checked and senders recovered at admission, so re-execution skips that
    (the largest per-transaction cost outside the EVM).
    """
    result: list[Executable] = []
    for tx in transactions:
        own = admitted(tx_hash_of(tx))
        result.append(tx if own is None else own)
    return result


def import_block(
    chain: Chain,
    header: BlockHeaderAPI,
    transactions: Sequence[SignedTransactionAPI],
    *,
    executed: Callable[[bytes], PendingBlock | None] | None = None,
    admitted: AdmittedLookup | None = None,
) -> bytes:
    """Verify, re-execute and commit a sealed block on the head; returns its hash.

    `executed` may hold this block's execution already (a validator that validated the
    proposal): then only its roots are compared, instead of executing it again.
    """
    verify_seals(chain, header)
    pending = executed(chain.block_hash(header)) if executed is not None else None
    if pending is not None and pending.parent_hash == chain.head_hash:
        check_reexecuted(header, pending.executed.header)
    else:
        executable: Sequence[Executable] = transactions
        if admitted is not None:
            executable = substitute_admitted(transactions, admitted)
        pending = chain.reexecute(header, executable)
    return chain.commit(pending, header)
