"""The three QBFT header hashes (shared/QBFT.md §1.3).

All hash the RLP of the full header with only `extraData` swapped: the on-chain hash drops
the seals and zeroes the round (so it does not depend on which round committed the block), the
commit-seal hash keeps the round. The genesis block hashes its extraData unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from eth_keys import keys
from eth_keys.datatypes import Signature
from eth_typing import Hash32

from node.qbftheader.extra_data import QbftExtraData

if TYPE_CHECKING:  # py-evm's types only: importing `eth` at run time loads the whole EVM
    from eth.abc import BlockHeaderAPI


class HashSigner(Protocol):
    """What signs a commit seal (a `node.signer.NodeSigner` is one)."""

    def sign_msg_hash(self, message_hash: bytes) -> Signature: ...


def onchain_hash(header: BlockHeaderAPI) -> Hash32:
    """The block hash clients see and children link to."""
    if header.block_number == 0:
        return header.hash
    extra = QbftExtraData.decode(header.extra_data).without_seals(0)
    return header.copy(extra_data=extra.encode()).hash


def commit_seal_hash(header: BlockHeaderAPI, round_number: int) -> bytes:
    """What a validator's commit seal signs for this block at `round_number`."""
    extra = QbftExtraData.decode(header.extra_data).without_seals(round_number)
    return header.copy(extra_data=extra.encode()).hash


def sign_commit_seal(header: BlockHeaderAPI, round_number: int, key: HashSigner) -> bytes:
    """A raw recoverable secp256k1 signature r||s||recId over the commit-seal hash."""
    return key.sign_msg_hash(commit_seal_hash(header, round_number)).to_bytes()


def recover_seal_signer(header: BlockHeaderAPI, seal: bytes) -> bytes:
    """The validator address that produced `seal` over this header at its own round."""
    extra = QbftExtraData.decode(header.extra_data)
    digest = commit_seal_hash(header, extra.round)
    return keys.Signature(seal).recover_public_key_from_msg_hash(digest).to_canonical_address()
