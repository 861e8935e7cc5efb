"""Transaction and receipt roots: the Merkle-Patricia root of an index-keyed list.

py-evm builds these through a dict-backed `HexaryTrie` (`make_trie_root_and_nodes`), which
costs ~170 us per item on a 1,000-transaction block, a fifth of the node's time per transaction.
Since the whole key set is known up front, the same root is built here bottom-up in one pass
over the sorted keys, using the `trie` package's own node encoders; no node is stored, because
Tally keeps bodies and receipts under its own keys (`node.storage.schema`).
`tests/test_roots.py` checks every result against `HexaryTrie`.
"""

from __future__ import annotations

from collections.abc import Sequence

import rlp
from eth.constants import BLANK_ROOT_HASH
from eth_hash.auto import keccak
from trie.utils.nibbles import bytes_to_nibbles
from trie.utils.nodes import compute_extension_key, compute_leaf_key

_EMPTY_BRANCH_SLOT = b""


def ordered_trie_root(items: Sequence[bytes]) -> bytes:
    """The root of the trie mapping `rlp(index)` to `items[index]` (Ethereum's list root)."""
    if not items:
        return BLANK_ROOT_HASH
    entries = sorted(
        (tuple(bytes_to_nibbles(rlp.encode(index))), value) for index, value in enumerate(items)
    )
    node = _build(entries, 0)
    return keccak(rlp.encode(node))


def _reference(node: list) -> list | bytes:
    """How a parent refers to a child: inline when its RLP is shorter than 32 bytes."""
    encoded = rlp.encode(node)
    return node if len(encoded) < 32 else keccak(encoded)


def _build(entries: list[tuple[tuple[int, ...], bytes]], depth: int) -> list:
    """The trie node (as an RLP-able list) for `entries`, all sharing `depth` nibbles."""
    if len(entries) == 1:
        key, value = entries[0]
        return [compute_leaf_key(key[depth:]), value]
    prefix_length = _common_prefix_length(entries, depth)
    if prefix_length:
        child = _build(entries, depth + prefix_length)
        shared = entries[0][0][depth : depth + prefix_length]
        return [compute_extension_key(shared), _reference(child)]
    branch: list = [_EMPTY_BRANCH_SLOT] * 17
    start = 0
    while start < len(entries):
        key = entries[start][0]
        if len(key) == depth:
            branch[16] = entries[start][1]
            start += 1
            continue
        nibble = key[depth]
        end = start + 1
        while end < len(entries) and entries[end][0][depth] == nibble:
            end += 1
        branch[nibble] = _reference(_build(entries[start:end], depth + 1))
        start = end
    return branch


def _common_prefix_length(entries: list[tuple[tuple[int, ...], bytes]], depth: int) -> int:
    """Nibbles shared by every key below `depth` (keys are sorted: compare first and last)."""
    first, last = entries[0][0], entries[-1][0]
    length = 0
    limit = min(len(first), len(last)) - depth
    while length < limit and first[depth + length] == last[depth + length]:
        length += 1
    return length
