"""pyrlp runs on its Rust backend (rusty-rlp), which must agree with its pure-Python one.

pyrlp uses rusty-rlp whenever it can import it, for every encode and decode py-evm, trie and
Tally make: 9-14 % of a block's execution time (`benchmarks/execution.py`). These tests pin
that the backend is there, and that it encodes, decodes and rejects exactly what the
pure-Python codec does, which a subprocess that cannot import rusty-rlp provides.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap

import pytest
import rlp
import rlp.codec
from rlp.exceptions import DecodingError

pytestmark = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or sys.version_info >= (3, 13),
    reason="rusty-rlp has wheels for x86-64 and CPython 3.11-3.12 only (pyproject.toml)",
)

NESTED = [b"", b"\x00", b"\x7f", b"\x80", b"a" * 55, b"b" * 56, b"c" * 1024, [], [[b"", []]]]
"""Values at every length-prefix boundary, and nested empty lists."""

MALFORMED = [
    "8105",  # one byte below 0x80 written as a string
    "b800",  # long-string length with a leading zero
    "b9000100",
    "f800",  # long-list length with a leading zero
    "c3010203ff",  # trailing bytes
    "c2",  # a list shorter than its prefix
    "",
    "bf",
    "b8380102",
]
"""Non-canonical or truncated encodings a decoder must refuse."""

PURE_PYTHON = textwrap.dedent(
    """
    import json, sys
    sys.modules["rusty_rlp"] = None  # pyrlp falls back to its pure-Python codec
    import rlp, rlp.codec
    assert not hasattr(rlp.codec, "rusty_rlp")
    nested, malformed = json.load(sys.stdin)
    def to_bytes(value):
        return bytes.fromhex(value) if isinstance(value, str) else [to_bytes(v) for v in value]
    def to_hex(value):
        return value.hex() if isinstance(value, bytes) else [to_hex(v) for v in value]
    out = {"encoded": rlp.encode(to_bytes(nested)).hex(), "refused": []}
    for item in malformed:
        try:
            rlp.decode(bytes.fromhex(item))
        except rlp.DecodingError:
            out["refused"].append(item)
    print(json.dumps(out))
    """
)


def _hex(value: bytes | list) -> str | list:
    return value.hex() if isinstance(value, bytes) else [_hex(item) for item in value]


def test_pyrlp_runs_on_the_rust_backend() -> None:
    assert hasattr(rlp.codec, "rusty_rlp"), "rusty-rlp is not installed (constraints.txt)"


def test_the_rust_backend_encodes_and_refuses_what_the_python_one_does() -> None:
    answer = subprocess.run(
        [sys.executable, "-c", PURE_PYTHON],
        input=json.dumps([_hex(NESTED), MALFORMED]),
        capture_output=True,
        text=True,
        check=True,
    )
    pure = json.loads(answer.stdout)

    encoded = rlp.encode(NESTED)
    assert encoded.hex() == pure["encoded"]
    assert rlp.decode(encoded) == NESTED
    refused = []
    for item in MALFORMED:
        try:
            rlp.decode(bytes.fromhex(item))
        except DecodingError:
            refused.append(item)
    assert refused == pure["refused"] == MALFORMED
