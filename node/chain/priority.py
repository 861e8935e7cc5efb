"""Block work first: client calls and log scans pause while this node builds, re-executes or
commits a block.

Client calls (`node.query.callpool`) run on threads of their own, but the EVM holds the GIL
while it runs. Block building lets go of the GIL often (signature recovery, hashing, LevelDB),
and each time waits up to a switch interval (5 ms) to get it back from a busy call thread:
with two endless calls running, building and committing a 600-transfer block took 4.5 s
instead of 0.45 s, with four 20 s. OS priorities do not reach the GIL, so the calls give way
themselves (then 0.5-0.7 s under two or four, within this machine's noise): `Chain` marks its
block work (`@block_work` on `build`, `reexecute`, `commit` and `import_with_diff`), and a
client call waits for `idle` at its next deadline check (`node.chain.evm.interpreter.Deadline`),
without the GIL. The wait counts against the call's own timeout. Log scans
(`node.rpc.logquery.LogSearch`) wait the same way between blocks.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, Protocol, TypeVar


class BlockWork:
    """Counts the block work in progress; `idle` is set while there is none."""

    def __init__(self) -> None:
        self._active = 0
        self._lock = threading.Lock()
        self.idle = threading.Event()
        self.idle.set()

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._lock:
            self._active += 1
            self.idle.clear()
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if not self._active:
                    self.idle.set()


class _Owner(Protocol):
    @property
    def block_work(self) -> BlockWork: ...


_O = TypeVar("_O", bound=_Owner)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def block_work(method: Callable[Concatenate[_O, _P], _R]) -> Callable[Concatenate[_O, _P], _R]:
    """Run `method` (whose first argument holds the `BlockWork`, a `Chain`) as block work."""

    @functools.wraps(method)
    def run(owner: _O, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with owner.block_work.running():
            return method(owner, *args, **kwargs)

    return run
