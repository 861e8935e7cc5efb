"""Importing a finished block from a peer: verify its QBFT seal, then re-execute and commit.

Used by block sync and by followers (member nodes, lagging validators). The checks follow
Besu's QBFT header rules (shared/QBFT.md §1): the parent link, the timestamp, the coinbase
and extraData validator list against the validators in force at that height, and at least a
quorum of distinct commit seals from those validators; then re-execution must reproduce the
header's state, transaction and receipt roots.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from eth.abc import BlockHeaderAPI, SignedTransactionAPI
from eth_keys.exceptions import BadSignature

from node.chain.admitted import AdmittedTransaction, Executable
from node.chain.chain import Chain, PendingBlock
from node.chain.executor import BlockRejected, check_reexecuted, tx_hash_of
from node.chain.genesis import QBFT_MIX_HASH
from node.consensus.extra_data import ExtraDataError, QbftExtraData
from node.consensus.hashing import onchain_hash, recover_seal_signer


def quorum(validator_count: int) -> int:
    """ceil(2n/3): Besu's `BftHelpers.calculateRequiredValidatorQuorum`."""
    return math.ceil(2 * validator_count / 3)


def verify_seals(chain: Chain, header: BlockHeaderAPI) -> QbftExtraData:
    """Raise `BlockRejected` unless `header` is a correctly sealed child of the head."""
    if header.parent_hash != chain.head_hash:
        raise BlockRejected("block does not extend the current head")
    if header.block_number != chain.head.block_number + 1:
        raise BlockRejected("block number does not follow the head")
    if header.timestamp < chain.head.timestamp + chain.genesis.block_period_seconds:
        raise BlockRejected("timestamp is earlier than the block period allows")
    if header.mix_hash != QBFT_MIX_HASH:
        raise BlockRejected("mixHash is not QBFT's")
    try:
        extra = QbftExtraData.decode(header.extra_data)
    except ExtraDataError as exc:
        raise BlockRejected(str(exc)) from exc
    validators = chain.validator_tally(chain.head_hash).validators
    if tuple(sorted(extra.validators)) != tuple(validators) or list(extra.validators) != sorted(
        extra.validators
    ):
        raise BlockRejected("extraData validators differ from the validators in force")
    if header.coinbase not in validators:
        raise BlockRejected("coinbase is not a validator")
    signers: set[bytes] = set()
    for seal in extra.seals:
        try:
            signer = recover_seal_signer(header, seal)
        except (BadSignature, ValueError) as exc:
            raise BlockRejected(f"unreadable commit seal: {exc}") from exc
        if signer not in validators:
            raise BlockRejected(f"commit seal from non-validator 0x{signer.hex()}")
        if signer in signers:
            raise BlockRejected(f"duplicate commit seal from 0x{signer.hex()}")
        signers.add(signer)
    if len(signers) < quorum(len(validators)):
        raise BlockRejected(f"{len(signers)} commit seals, {quorum(len(validators))} required")
    return extra


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
    pending = executed(onchain_hash(header)) if executed is not None else None
    if pending is not None and pending.parent_hash == chain.head_hash:
        check_reexecuted(header, pending.executed.header)
    else:
        executable: Sequence[Executable] = transactions
        if admitted is not None:
            executable = substitute_admitted(transactions, admitted)
        pending = chain.reexecute(header, executable)
    return chain.commit(pending, header)
