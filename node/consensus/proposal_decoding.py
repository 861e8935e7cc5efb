"""Decoding a round-0 PROPOSAL without re-encoding it, reusing transactions already pooled.

`messages.Proposal.decode` is general: pyrlp decodes the whole message into nested items,
then every legacy transaction is RLP-encoded again to be decoded by py-evm, and the signed
payload (the whole block) is encoded again to hash it for the signature. For a block of a few
hundred transfers that is ~100 ms per validator per block, a tenth of a validator's CPU
under load. Here the message is scanned once for item boundaries (strict, canonical RLP, as
pyrlp's decoder insists on), the signature is checked over the payload's own bytes, and each
transaction is looked up by the hash of its bytes among the transactions this node's pool
admitted (their signatures already checked), decoding only the ones it has not seen.

Only the common shape is handled: a round-0 style proposal with empty justification and a
three-item payload. Anything else, and any error, returns None and the caller decodes with
`decode_message`, so the error reported for a malformed message is always the general one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import rlp
from eth_hash.auto import keccak

from node.consensus.qbft.messages import (
    PROPOSAL,
    SIGNATURE_LENGTH,
    BlockCodec,
    Proposal,
    ProposalPayload,
    QbftBlock,
    Signed,
    recover_author,
)

if TYPE_CHECKING:  # py-evm's types only: importing `eth` at run time loads the whole EVM
    from eth.abc import SignedTransactionAPI

KnownTransaction = Callable[[bytes], "SignedTransactionAPI | None"]
"""Transaction hash -> the decoded object this node already holds (signature checked)."""

_EMPTY_LIST = 0xC0


class _NotHandled(Exception):
    """Not the common shape, or not valid: leave it to the general decoder."""


def decode_proposal(data: bytes, known: KnownTransaction, codec: BlockCodec) -> Proposal | None:
    """The PROPOSAL in `data`, or None if it is not the common shape (see the module doc);
    headers and transactions not in `known` are decoded by `codec`."""
    try:
        return _decode(data, known, codec)
    except Exception:  # anything unusual is the general decoder's to judge and report
        return None


def _item(data: bytes, start: int, limit: int) -> tuple[bool, int, int]:
    """(is a list, payload start, end) of the canonical RLP item at `start`, within `limit`."""
    if start >= limit:
        raise _NotHandled("item beyond its parent")
    first = data[start]
    if first < 0x80:
        return False, start, start + 1
    if first < 0xB8:
        length = first - 0x80
        if length == 1 and data[start + 1] < 0x80:
            raise _NotHandled("single byte encoded as a string")
        end = start + 1 + length
        payload = start + 1
        is_list = False
    elif first < 0xC0:
        payload, end = _long(data, start, first - 0xB7)
        is_list = False
    elif first < 0xF8:
        payload, end = start + 1, start + 1 + first - 0xC0
        is_list = True
    else:
        payload, end = _long(data, start, first - 0xF7)
        is_list = True
    if end > limit:
        raise _NotHandled("item runs past its parent")
    return is_list, payload, end


def _long(data: bytes, start: int, size_length: int) -> tuple[int, int]:
    size_bytes = data[start + 1 : start + 1 + size_length]
    if len(size_bytes) != size_length or size_bytes[0] == 0:
        raise _NotHandled("bad long length")
    length = int.from_bytes(size_bytes, "big")
    if length < 56:
        raise _NotHandled("long form for a short item")
    payload = start + 1 + size_length
    return payload, payload + length


def _children(data: bytes, start: int, end: int) -> list[tuple[bool, int, int, int]]:
    """(is a list, item start, payload start, end) of each item of the list payload."""
    out = []
    position = start
    while position < end:
        is_list, payload, item_end = _item(data, position, end)
        out.append((is_list, position, payload, item_end))
        position = item_end
    return out


def _scalar(data: bytes, child: tuple[bool, int, int, int]) -> int:
    is_list, _, payload, end = child
    value = data[payload:end]
    if is_list or value[:1] == b"\x00" or len(value) > 8:
        raise _NotHandled("bad scalar")
    return int.from_bytes(value, "big")


def _decode(data: bytes, known: KnownTransaction, codec: BlockCodec) -> Proposal:
    is_list, payload, end = _item(data, 0, len(data))
    if not is_list or end != len(data):
        raise _NotHandled("not one list")
    outer = _children(data, payload, end)
    if len(outer) != 2 or not outer[0][0]:
        raise _NotHandled("proposal shape")
    justification = data[outer[1][1] : outer[1][3]]
    if justification != bytes([_EMPTY_LIST + 2, _EMPTY_LIST, _EMPTY_LIST]):
        raise _NotHandled("justified proposal")
    signed = _children(data, outer[0][2], outer[0][3])
    if len(signed) != 2 or not signed[0][0] or signed[1][0]:
        raise _NotHandled("signed payload shape")
    payload_item = signed[0]
    signature = data[signed[1][2] : signed[1][3]]
    if len(signature) != SIGNATURE_LENGTH:
        raise _NotHandled("signature length")
    fields = _children(data, payload_item[2], payload_item[3])
    if len(fields) != 3 or not fields[2][0]:
        raise _NotHandled("payload shape")
    height, round_number = _scalar(data, fields[0]), _scalar(data, fields[1])
    block = _block(data, fields[2], known, codec)
    payload_bytes = data[payload_item[1] : payload_item[3]]
    body = rlp.encode(PROPOSAL) + payload_bytes
    author = recover_author(keccak(_list_prefix(len(body)) + body), signature)
    payload_value = ProposalPayload(height, round_number, block)
    message = Proposal(Signed(payload_value, signature, author, payload_value.to_rlp()))
    message.__dict__["data"] = data
    return message


def _block(
    data: bytes, item: tuple[bool, int, int, int], known: KnownTransaction, codec: BlockCodec
) -> QbftBlock:
    parts = _children(data, item[2], item[3])
    if len(parts) != 4 or not all(part[0] for part in parts[:2]):
        raise _NotHandled("block shape")
    if any(data[part[1] : part[3]] != bytes([_EMPTY_LIST]) for part in parts[2:]):
        raise _NotHandled("uncles or withdrawals")
    header = codec.decode_header(rlp.decode(data[parts[0][1] : parts[0][3]]))
    transactions = []
    for is_list, start, payload, end in _children(data, parts[1][2], parts[1][3]):
        raw = data[start:end] if is_list else data[payload:end]
        tx = known(keccak(raw))
        transactions.append(tx if tx is not None else codec.decode_transaction(raw))
    return QbftBlock(header, tuple(transactions))


def _list_prefix(length: int) -> bytes:
    if length < 56:
        return bytes([_EMPTY_LIST + length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0xF7 + len(size)]) + size
