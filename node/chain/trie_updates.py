"""Apply a block's worth of writes to a Merkle-Patricia trie in one pass, each node hashed once;
and read a key in one lean walk (`lookup`).

py-evm hands storage writes to `HexaryTrie` one key at a time: every write reads, decodes,
re-encodes and re-hashes the whole path from the root, so the root node of a busy contract's
storage (an ERC-20's balances) is rebuilt once per write, hundreds of times a block. Here the
writes are sorted and merged into the trie top-down: a node is read once, and each new node is
encoded and hashed once, when its parent needs its reference.

Keys must all have the same length (storage and account tries key by 32-byte hashes), so no
key is a prefix of another, branch nodes never hold a value, and a leaf reached along a key's
path ends it. The trie shape is canonical
for its contents, so the root equals `HexaryTrie`'s for the same writes; `tests/
test_trie_updates.py` checks that against `HexaryTrie` over random write sets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import rlp
from eth_hash.auto import keccak
from eth_typing import Hash32
from rlp.codec import encode_raw
from trie.constants import BLANK_NODE, BLANK_NODE_HASH
from trie.exceptions import MissingTrieNode
from trie.typing import Nibbles

from node.chain.evm.bounded_cache import ENTRY_OVERHEAD, BoundedCache

Node = list | bytes
"""A decoded node: b"" (blank), [path, value-or-child] (leaf or extension), 17 items (branch)."""
Ref = list | bytes
"""How a parent holds a child: b"" (none), a 32-byte hash, or the child itself if it is small."""
Entry = tuple[tuple[int, ...], bytes, bytes]
"""A key as nibbles (relative to the node it is applied at), its new value (b"": delete) and
the whole key."""

_EMPTY_BRANCH: list[Ref] = [BLANK_NODE] * 17

DECODED_NODE_CACHE_BYTES = 16 * 1024 * 1024
"""Decoded trie nodes `lookup` keeps by hash (a branch node's some 1.5 KB: about 10,000, the
paths of several blocks' reads)."""


def _decoded_cost(node_hash: bytes, node: list[Any]) -> int:
    """What a decoded node holds: its items' bytes and their objects' headers."""
    return ENTRY_OVERHEAD + sum(len(item) + 48 for item in node)


_decoded: BoundedCache[bytes, list[Any]] = BoundedCache(DECODED_NODE_CACHE_BYTES, _decoded_cost)
"""Nodes by hash, so never stale: what a hash names cannot change."""


def _stored(load: Callable[[bytes], bytes], node_hash: bytes) -> list[Any]:
    """The node stored under `node_hash`, decoded: from `_decoded`, or loaded (a KeyError if
    `load` has none) and kept there. The lists are shared, so nothing may change them: an
    update builds new nodes (`_Builder` copies a branch before it changes it), and the nodes a
    block's writes pass through are mostly the ones its reads decoded."""
    node = _decoded.get(node_hash)
    if node is None:
        node = rlp.decode(load(node_hash))
        _decoded.put(node_hash, node)
    return node


def apply_updates(
    load: Callable[[bytes], bytes],
    root_hash: bytes,
    updates: Mapping[bytes, bytes],
    replaced: dict[bytes, bytes] | None = None,
) -> tuple[bytes, dict[bytes, bytes]]:
    """The root after writing `updates` (value b"" deletes), and the new nodes by hash.

    `load` returns a stored node's encoding by its hash. Only the nodes of the final trie that
    are new and referenced by hash are returned (plus the root, which is always stored by
    hash, as `HexaryTrie` does); nodes no longer reachable are left where they are. If
    `replaced` is given, it receives the previous value of every updated key that had one
    (found on the way, at no extra read).
    """
    if not updates:
        return root_hash, {}
    builder = _Builder(load, replaced)
    entries = sorted((_nibbles(key), value, key) for key, value in updates.items())
    lengths = {len(key) for key, _, _ in entries}
    if len(lengths) != 1:
        raise ValueError("all keys must have the same length")
    root = builder.resolve(root_hash) if root_hash != BLANK_NODE_HASH else BLANK_NODE
    new_root = builder.update(root, entries)
    if new_root == BLANK_NODE:
        return BLANK_NODE_HASH, builder.nodes
    encoded = encode_raw(new_root)
    new_hash = keccak(encoded)
    builder.nodes[new_hash] = encoded
    return new_hash, builder.nodes


def lookup(load: Callable[[bytes], bytes], root_hash: bytes, key: bytes) -> bytes:
    """The value under `key` (b"" if none): one walk down from the root, each node on the
    path read and decoded once.

    `HexaryTrie.get` answers the same, but builds a trie object, converts the key to nibbles
    through generic helpers and wraps every node it passes in annotated objects; and it
    RLP-decodes every node again, which is most of what is left of a lean walk (13 us for a
    branch node). A block's reads all start from the same roots, so the nodes near them are
    decoded once here and kept by hash (`_decoded`, bounded): a read of a 20,000-slot trie
    took 121 us through `HexaryTrie` and 15 us here. A node `load` does not have raises
    `MissingTrieNode`, as `HexaryTrie` does.
    """
    if root_hash == BLANK_NODE_HASH:
        return BLANK_NODE
    nibbles = _nibbles(key)
    position = 0
    ref: Any = root_hash  # a child reference: b"", a hash, or an embedded node (a list)
    while True:
        if isinstance(ref, list):
            node = ref
        elif ref == BLANK_NODE:
            return BLANK_NODE
        else:
            try:
                node = _stored(load, ref)
            except KeyError:
                raise MissingTrieNode(
                    Hash32(ref), Hash32(root_hash), key, cast(Nibbles, nibbles[:position])
                ) from None
        if len(node) == 17:
            ref = node[nibbles[position]]
            position += 1
            continue
        leaf, path = _decode_path(node[0])
        end = position + len(path)
        if nibbles[position:end] != path:
            return BLANK_NODE
        if leaf:
            return node[1]
        ref = node[1]
        position = end


def _nibbles(key: bytes) -> tuple[int, ...]:
    out = []
    for byte in key:
        out.append(byte >> 4)
        out.append(byte & 0x0F)
    return tuple(out)


def _encode_path(nibbles: tuple[int, ...], leaf: bool) -> bytes:
    """Hex-prefix encoding (Yellow Paper appendix C)."""
    flag = 2 if leaf else 0
    if len(nibbles) % 2:
        first = ((flag + 1) << 4) | nibbles[0]
        rest = nibbles[1:]
    else:
        first = flag << 4
        rest = nibbles
    return bytes([first]) + bytes((rest[i] << 4) | rest[i + 1] for i in range(0, len(rest), 2))


def _decode_path(encoded: bytes) -> tuple[bool, tuple[int, ...]]:
    """(is a leaf, path nibbles) of a leaf or extension node's hex-prefix encoded path."""
    flag = encoded[0] >> 4
    nibbles = [encoded[0] & 0x0F] if flag & 1 else []
    for byte in encoded[1:]:
        nibbles.append(byte >> 4)
        nibbles.append(byte & 0x0F)
    return flag >= 2, tuple(nibbles)


class _Builder:
    """One update pass: reads through `load`, collects the new nodes it encodes."""

    def __init__(self, load: Callable[[bytes], bytes], replaced: dict[bytes, bytes] | None) -> None:
        self._load = load
        self._replaced = replaced
        self.nodes: dict[bytes, bytes] = {}

    def resolve(self, ref: Ref) -> Node:
        if isinstance(ref, list):
            return ref
        if ref == BLANK_NODE:
            return BLANK_NODE
        return _stored(self._load, ref)

    def ref(self, node: Node) -> Ref:
        """A parent's reference to `node` (embedded below 32 bytes, else hashed and kept)."""
        if node == BLANK_NODE:
            return BLANK_NODE
        encoded = encode_raw(node)
        if len(encoded) < 32:
            return node
        node_hash = keccak(encoded)
        self.nodes[node_hash] = encoded
        return node_hash

    def update(self, node: Node, entries: list[Entry]) -> Node:
        """`node` with `entries` (sorted, keys relative to it) applied."""
        if not entries:
            return node
        if node == BLANK_NODE:
            return self.build([entry for entry in entries if entry[1]])
        assert isinstance(node, list)  # only the blank node is bytes
        if len(node) == 17:
            return self._update_branch(list(node), entries, {})
        leaf, path = _decode_path(node[0])
        if leaf:
            return self._merge_leaf(path, node[1], entries)
        size = len(path)
        if all(key[:size] == path for key, _, _ in entries):
            child = self.update(
                self.resolve(node[1]), [(k[size:], v, full) for k, v, full in entries]
            )
            return self.prefixed(path, child)
        # Some keys leave the extension's path: continue as the equivalent branch.
        branch = list(_EMPTY_BRANCH)
        decoded: dict[int, Node] = {}
        if size == 1:
            branch[path[0]] = node[1]
        else:
            decoded[path[0]] = [_encode_path(path[1:], False), node[1]]
            branch[path[0]] = b"\x00"  # placeholder: a child exists, see `decoded`
        return self._update_branch(branch, entries, decoded)

    def _merge_leaf(self, path: tuple[int, ...], value: bytes, entries: list[Entry]) -> Node:
        """A leaf with `entries` applied: rebuilt from its one key and theirs."""
        merged: dict[tuple[int, ...], tuple[bytes, bytes]] = {}
        leaf_kept = True
        for key, new_value, full in entries:
            if key == path:
                leaf_kept = False
                if self._replaced is not None:
                    self._replaced[full] = value
            if new_value:
                merged[key] = (new_value, full)
        if leaf_kept:
            merged[path] = (value, b"")
        return self.build([(key, v, full) for key, (v, full) in sorted(merged.items())])

    def _update_branch(self, children: list, entries: list[Entry], decoded: dict) -> Node:
        """Apply entries grouped by first nibble; `decoded` holds children already at hand."""
        start = 0
        while start < len(entries):
            nibble = entries[start][0][0]
            end = start + 1
            while end < len(entries) and entries[end][0][0] == nibble:
                end += 1
            base = decoded[nibble] if nibble in decoded else self.resolve(children[nibble])
            updated = self.update(base, [(k[1:], v, full) for k, v, full in entries[start:end]])
            decoded[nibble] = updated
            children[nibble] = b"\x00" if updated != BLANK_NODE else BLANK_NODE
            start = end
        present = [nibble for nibble in range(16) if children[nibble] != BLANK_NODE]
        if not present:
            return BLANK_NODE
        if len(present) == 1:
            nibble = present[0]
            child = decoded[nibble] if nibble in decoded else self.resolve(children[nibble])
            return self.prefixed((nibble,), child)
        for nibble in present:
            if nibble in decoded:
                children[nibble] = self.ref(decoded[nibble])
        return children

    def prefixed(self, path: tuple[int, ...], child: Node) -> Node:
        """`child` reached through `path`: merged into a leaf or extension, or extended."""
        if child == BLANK_NODE:
            return BLANK_NODE
        assert isinstance(child, list)  # only the blank node is bytes
        if len(child) == 17:
            return [_encode_path(path, False), self.ref(child)]
        leaf, rest = _decode_path(child[0])
        return [_encode_path(path + rest, leaf), child[1]]

    def build(self, entries: list[Entry]) -> Node:
        """A fresh subtree holding `entries` (sorted, non-empty values, distinct keys)."""
        if not entries:
            return BLANK_NODE
        if len(entries) == 1:
            key, value, _ = entries[0]
            return [_encode_path(key, True), value]
        first, last = entries[0][0], entries[-1][0]
        shared = 0
        while first[shared] == last[shared]:
            shared += 1
        if shared:
            child = self.build([(k[shared:], v, full) for k, v, full in entries])
            return [_encode_path(first[:shared], False), self.ref(child)]
        branch = list(_EMPTY_BRANCH)
        start = 0
        while start < len(entries):
            nibble = entries[start][0][0]
            end = start + 1
            while end < len(entries) and entries[end][0][0] == nibble:
                end += 1
            part = [(k[1:], v, full) for k, v, full in entries[start:end]]
            branch[nibble] = self.ref(self.build(part))
            start = end
        return branch
