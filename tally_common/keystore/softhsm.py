"""Processes sharing one SoftHSM2 token directory take turns to read and rewrite its tokens.

SoftHSM2 rewrites a token's file when a session logs in or out, and its `C_Initialize` reads
every token in the directory. A process initialising while another rewrites a token aborts
inside SoftHSM2 (`SlotManager::insertToken`: Assertion `result.second' failed), and an abort
cannot be caught or retried. Seen in `tests/test_client_softhsm.py`'s four processes logging
in 40 times each: 2 runs of 12 on a loaded machine, none of 15 on an idle one. That is the
shape of several validators of one host starting together.

So loading the module, logging in and logging out hold an advisory lock on a file in the
token directory (`flock`, released if the process dies). Other PKCS#11 modules are not
touched: the lock is taken only for SoftHSM2, whose token directory is read from its
configuration file (`SOFTHSM2_CONF`, or Debian's default path).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_CONF = "/etc/softhsm/softhsm2.conf"
LOCK_NAME = ".tally-token-turn.lock"
"""A plain file: SoftHSM2 takes only the directory's subdirectories for tokens."""


def token_directory(module: str) -> Path | None:
    """SoftHSM2's token directory if `module` is SoftHSM2 and its configuration names one."""
    if "softhsm" not in Path(module).name:
        return None
    try:
        text = Path(os.environ.get("SOFTHSM2_CONF", DEFAULT_CONF)).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "directories.tokendir":
            return Path(value.strip())
    return None


@contextmanager
def token_files_turn(module: str) -> Iterator[None]:
    """Hold this host's turn at `module`'s token files (a no-op for anything but SoftHSM2)."""
    directory = token_directory(module)
    if directory is None:
        yield
        return
    try:
        handle = open(directory / LOCK_NAME, "a")  # noqa: SIM115 - closed below, after unlock
    except OSError:
        yield  # a directory this process cannot write to: it cannot rewrite tokens either
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
