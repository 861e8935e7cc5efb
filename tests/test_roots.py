"""The bottom-up list root must equal py-evm's HexaryTrie root for every list."""

from __future__ import annotations

import rlp
from eth.constants import BLANK_ROOT_HASH
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from node.chain.roots import ordered_trie_root


def hexary_root(items: list[bytes]) -> bytes:
    trie = HexaryTrie({})
    for index, item in enumerate(items):
        trie[rlp.encode(index)] = item
    return trie.root_hash


def test_empty_list_is_the_blank_root() -> None:
    assert ordered_trie_root([]) == BLANK_ROOT_HASH


def test_boundary_sizes_match_hexary_trie() -> None:
    for size in (1, 2, 15, 16, 17, 127, 128, 129, 255, 256, 257, 1000):
        items = [index.to_bytes(4, "big") * (1 + index % 40) for index in range(size)]
        assert ordered_trie_root(items) == hexary_root(items), size


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=120), min_size=1, max_size=300))
def test_random_lists_match_hexary_trie(items: list[bytes]) -> None:
    assert ordered_trie_root(items) == hexary_root(items)


def test_changing_one_item_changes_the_root() -> None:
    items = [bytes([index]) * 50 for index in range(1, 60)]
    changed = list(items)
    changed[37] = b"\x00" * 50
    assert ordered_trie_root(items) != ordered_trie_root(changed)
