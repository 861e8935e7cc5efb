"""Where each key of a TOML document is written: `tomllib` gives values without positions, and
an error that names the line is the one an operator fixes at once.

A line scanner, not a parser (`tomllib` has parsed the file already): it records the line of
every `[table]`, `[[array]]` entry and `key = value`, by the key path pydantic reports
(`("nodes", 2, "address")`). Values spanning lines are skipped over, so their lines are never
taken for keys.
"""

from __future__ import annotations

import re

_ARRAY_TABLE = re.compile(r"\[\[\s*(?P<key>[^\]]+?)\s*\]\]")
_TABLE = re.compile(r"\[\s*(?P<key>[^\]]+?)\s*\]")
_KEY = re.compile(r"(?P<key>[A-Za-z0-9_\-.\"' ]+?)\s*=(?P<value>.*)")

Path = tuple[str | int, ...]


def key_lines(text: str) -> dict[Path, int]:
    """The line (1-based) of every table, array-of-tables entry and key, by its path."""
    lines: dict[Path, int] = {}
    table: Path = ()
    entries: dict[Path, int] = {}
    depth = 0  # brackets still open in a value that spans lines
    quoted = False  # inside a multi-line string
    for number, raw in enumerate(text.splitlines(), start=1):
        if quoted or depth > 0:
            quoted ^= raw.count('"""') % 2 == 1
            depth = max(0, depth + _balance(_uncommented(raw)))
            continue
        line = _uncommented(raw).strip()
        if (match := _ARRAY_TABLE.fullmatch(line)) is not None:
            path = tuple(_split(match["key"]))
            index = entries[path] = entries.get(path, -1) + 1
            table = (*path, index)
            lines.setdefault(table, number)
        elif (match := _TABLE.fullmatch(line)) is not None:
            table = tuple(_split(match["key"]))
            lines.setdefault(table, number)
        elif (match := _KEY.match(line)) is not None:
            lines.setdefault((*table, *_split(match["key"])), number)
            quoted = match["value"].count('"""') % 2 == 1
            depth = max(0, _balance(match["value"]))
    return lines


def line_of(lines: dict[Path, int], loc: Path) -> int | None:
    """The line of `loc`, else of its nearest enclosing key or table (a missing key is
    reported where its table is); None when nothing on the way is in the file."""
    for end in range(len(loc), 0, -1):
        found = lines.get(tuple(loc[:end]))
        if found is not None:
            return found
    return None


def _split(key: str) -> list[str]:
    """A dotted key's parts, unquoted: `a."b.c"` is ["a", "b.c"]."""
    parts, current, quote = [], "", ""
    for char in key:
        if quote:
            if char == quote:
                quote = ""
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def _uncommented(line: str) -> str:
    """`line` without its comment (a `#` outside quotes)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:index]
    return line


def _balance(value: str) -> int:
    """Brackets and braces opened minus closed, outside strings."""
    total, quote = 0, ""
    for char in value:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            total += 1
        elif char in "]}":
            total -= 1
    return total
