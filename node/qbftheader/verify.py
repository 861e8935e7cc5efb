"""A sealed QBFT header's own checks: mixHash, extraData, coinbase and a quorum of seals.

Besu's QBFT header rules (shared/QBFT.md §1) as far as they depend only on the header and the
validators in force at its height; the parent link and timestamp are the chain's to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eth_keys.exceptions import BadSignature

from node.qbftheader.extra_data import ExtraDataError, QbftExtraData
from node.qbftheader.hashing import recover_seal_signer
from node.qbftheader.quorum import quorum

if TYPE_CHECKING:  # py-evm's types only: importing `eth` at run time loads the whole EVM
    from eth.abc import BlockHeaderAPI

QBFT_MIX_HASH = bytes.fromhex("63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365")
"""The mixHash of every QBFT header: ASCII "ctical byzantine fault tolerance" (Besu's constant)."""


class HeaderError(ValueError):
    """A header that breaks a QBFT rule; the text says which."""


def verify_sealed_header(header: BlockHeaderAPI, validators: Sequence[bytes]) -> QbftExtraData:
    """Raise `HeaderError` unless `header` is sealed by a quorum of `validators` (sorted, in
    force at its height) and its extraData names exactly them; returns the decoded extraData."""
    if header.mix_hash != QBFT_MIX_HASH:
        raise HeaderError("mixHash is not QBFT's")
    try:
        extra = QbftExtraData.decode(header.extra_data)
    except ExtraDataError as exc:
        raise HeaderError(str(exc)) from exc
    if tuple(sorted(extra.validators)) != tuple(validators) or list(extra.validators) != sorted(
        extra.validators
    ):
        raise HeaderError("extraData validators differ from the validators in force")
    if header.coinbase not in validators:
        raise HeaderError("coinbase is not a validator")
    signers: set[bytes] = set()
    for seal in extra.seals:
        try:
            signer = recover_seal_signer(header, seal)
        except (BadSignature, ValueError) as exc:
            raise HeaderError(f"unreadable commit seal: {exc}") from exc
        if signer not in validators:
            raise HeaderError(f"commit seal from non-validator 0x{signer.hex()}")
        if signer in signers:
            raise HeaderError(f"duplicate commit seal from 0x{signer.hex()}")
        signers.add(signer)
    if len(signers) < quorum(len(validators)):
        raise HeaderError(f"{len(signers)} commit seals, {quorum(len(validators))} required")
    return extra
