"""geth's `callTracer`: the transaction's call tree, with `onlyTopCall` and `withLog`."""

from __future__ import annotations

from typing import Any

import eth_abi
from eth.exceptions import Revert

from node.chain.tracing.frames import FrameCollector
from node.chain.tracing.hooks import FrameRecord, geth_error

_ERROR_SELECTOR = bytes.fromhex("08c379a0")
_PANIC_SELECTOR = bytes.fromhex("4e487b71")
_CREATES = ("CREATE", "CREATE2")


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def revert_reason(output: bytes) -> str | None:
    """geth's `abi.UnpackRevert`: an `Error(string)` message or a panic's description."""
    if output[:4] == _ERROR_SELECTOR:
        try:
            (reason,) = eth_abi.decode(["string"], output[4:])
        except Exception:
            return None
        return str(reason)
    if output[:4] == _PANIC_SELECTOR and len(output) == 36:
        return f"assert(false) (panic code 0x{int.from_bytes(output[4:], 'big'):x})"
    return None


class CallTracer(FrameCollector):
    """Options as geth takes them: `onlyTopCall`, `withLog`."""

    def __init__(self, *, only_top_call: bool = False, with_log: bool = False) -> None:
        super().__init__()
        self.only_top_call = only_top_call
        self.with_log = with_log

    def result(self) -> Any:
        if self.root is None or self.tx is None or self.outcome is None:
            return None
        top = self._frame_json(self.root, top=True, in_failed=False)
        top["gasUsed"] = hex(self.outcome.gas_used)
        return top

    def _frame_json(
        self, record: FrameRecord, *, top: bool = False, in_failed: bool
    ) -> dict[str, Any]:
        """One frame; a failed frame's logs, and its callees', are dropped (geth's
        `clearFailedLogs`): they never happened."""
        frame = record.frame
        out: dict[str, Any] = {
            "from": _hex(frame.sender),
            "gas": hex(frame.gas),
            "gasUsed": hex(record.gas_used),
            "to": _hex(frame.to),
            "input": _hex(frame.input),
        }
        if frame.kind == "SELFDESTRUCT":
            out["gas"] = out["gasUsed"] = "0x0"
        failed = record.error is not None
        in_failed = in_failed or failed
        if not failed:
            if record.output:
                out["output"] = _hex(record.output)
        else:
            out["error"] = geth_error(record.error)
            if frame.kind in _CREATES:
                del out["to"]
            if isinstance(record.error, Revert) and record.output:
                out["output"] = _hex(record.output)
                reason = revert_reason(record.output)
                if reason is not None:
                    out["revertReason"] = reason
        if not self.only_top_call and record.calls:
            out["calls"] = [self._frame_json(call, in_failed=in_failed) for call in record.calls]
        if self.with_log and not in_failed:
            logs = _logs(record)
            if logs:
                out["logs"] = logs
        if frame.kind not in ("STATICCALL",) or top:
            out["value"] = hex(frame.value)
        out["type"] = frame.kind
        return out


def _logs(record: FrameRecord) -> list[dict[str, Any]]:
    return [
        {
            "address": _hex(address),
            "topics": [_hex(topic.to_bytes(32, "big")) for topic in topics],
            "data": _hex(data),
            "index": hex(index),
            "position": hex(position),
        }
        for address, topics, data, position, index in record.logs
    ]
