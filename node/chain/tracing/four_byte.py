"""geth's `4byteTracer`: how often each selector was called, with how many argument bytes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from eth.abc import ComputationAPI

from node.chain.evm.internals import PRECOMPILE_ADDRESSES
from node.chain.tracing.hooks import Frame, Tracer

_CALLS = frozenset({"CALL", "CALLCODE", "DELEGATECALL", "STATICCALL"})


class FourByteTracer(Tracer):
    """Keys "0x<selector>-<len(input) - 4>"; creations and precompile calls are not counted."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def enter(self, frame: Frame, parent: ComputationAPI | None) -> None:
        if len(frame.input) < 4 or frame.kind not in _CALLS or frame.to in PRECOMPILE_ADDRESSES:
            return
        self.counts[f"0x{frame.input[:4].hex()}-{len(frame.input) - 4}"] += 1

    def result(self) -> Any:
        return dict(self.counts)
