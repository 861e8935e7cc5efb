"""Batched trie updates must reach `HexaryTrie`'s root, leave a trie it can read, and report
the values they replaced."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie
from trie.constants import BLANK_NODE_HASH
from trie.exceptions import MissingTrieNode

from node.chain.trie_updates import apply_updates, lookup

# Keys drawn so that many share long prefixes (extensions, deep branches, tiny embedded
# leaves) and values from one byte (embedded nodes) to long (hashed nodes).
_prefixes = st.sampled_from([b"", b"\x00", b"\x12\x34", b"\xab" * 16, b"\xcd" * 31])
_keys = st.builds(
    lambda prefix, tail: (prefix + tail)[:32].ljust(32, b"\x00"),
    _prefixes,
    st.binary(min_size=0, max_size=32),
)
_values = st.one_of(st.binary(min_size=1, max_size=2), st.binary(min_size=1, max_size=60))


def reference(
    initial: dict[bytes, bytes], updates: dict[bytes, bytes]
) -> tuple[dict[bytes, bytes], bytes, bytes]:
    db: dict[bytes, bytes] = {}
    trie = HexaryTrie(db)
    for key, value in initial.items():
        trie[key] = value
    start_root = trie.root_hash
    for key, value in updates.items():
        if value:
            trie[key] = value
        else:
            del trie[key]
    return db, start_root, trie.root_hash


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(_keys, _values, max_size=40),
    st.dictionaries(_keys, st.one_of(st.just(b""), _values), max_size=40),
    st.data(),
)
def test_batched_updates_match_hexary_trie(
    initial: dict[bytes, bytes], updates: dict[bytes, bytes], data: st.DataObject
) -> None:
    # Also delete and rewrite some of the keys already present.
    for key in data.draw(
        st.lists(st.sampled_from(sorted(initial)), max_size=10) if initial else st.just([])
    ):
        updates[key] = data.draw(st.one_of(st.just(b""), _values))
    db, start_root, expected_root = reference(initial, updates)
    store = dict(db)
    replaced: dict[bytes, bytes] = {}
    root, nodes = apply_updates(store.__getitem__, start_root, updates, replaced)
    assert root == expected_root
    assert replaced == {key: initial[key] for key in updates if key in initial}
    store.update(nodes)
    final = {**initial, **updates}
    trie = HexaryTrie(store, root)
    for key, value in final.items():
        assert trie[key] == value
    if updates and root != BLANK_NODE_HASH:
        assert root in nodes


def test_no_updates_keep_the_root() -> None:
    assert apply_updates(dict[bytes, bytes]().__getitem__, BLANK_NODE_HASH, {}) == (
        BLANK_NODE_HASH,
        {},
    )


def test_deleting_everything_gives_the_blank_root() -> None:
    keys = [bytes([i]) * 32 for i in range(5)]
    db, start_root, _ = reference({key: b"v" for key in keys}, {})
    root, _ = apply_updates(db.__getitem__, start_root, {key: b"" for key in keys})
    assert root == BLANK_NODE_HASH


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=60), st.lists(_keys, max_size=20))
def test_lookup_reads_what_hexary_trie_reads(
    contents: dict[bytes, bytes], others: list[bytes]
) -> None:
    """Present keys, absent ones (sharing prefixes with present ones, so the walk ends in a
    branch, a leaf or an extension), embedded and hashed nodes."""
    db: dict[bytes, bytes] = {}
    trie = HexaryTrie(db)
    for key, value in contents.items():
        trie[key] = value
    for key in [*contents, *others]:
        assert lookup(db.__getitem__, trie.root_hash, key) == trie.get(key)


def test_lookup_of_a_missing_node_raises_as_hexary_trie_does() -> None:
    db: dict[bytes, bytes] = {}
    trie = HexaryTrie(db)
    keys = [bytes([i]) + b"\x00" * 31 for i in range(0, 256, 16)]
    for key in keys:
        trie[key] = b"v" * 40
    root = trie.root_hash
    partial = {root: db[root]}  # the root only: its children are missing
    with pytest.raises(MissingTrieNode) as raised:
        lookup(partial.__getitem__, root, keys[3])
    with pytest.raises(MissingTrieNode) as expected:
        HexaryTrie(partial, root)[keys[3]]
    assert raised.value.missing_node_hash == expected.value.missing_node_hash
    assert raised.value.root_hash == root
