"""Decoding a log by its event's ABI: what the auditor indexes and the REST API share.

The indexed arguments come from the topics after topic0, the others from the data, each
decoded with eth-abi; values are eth-abi's (ints, bytes, lowercase hex address strings), and a
caller that shows them converts them itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_typing import ABIEvent
from eth_utils import event_abi_to_log_topic

from node.storage.records import LogRecord


@dataclass(frozen=True, slots=True)
class EventAbi:
    name: str
    indexed: tuple[tuple[str, str], ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]

    @classmethod
    def from_abi(cls, item: dict[str, Any]) -> EventAbi:
        inputs = item["inputs"]
        return cls(
            item["name"],
            tuple((i["name"], i["type"]) for i in inputs if i["indexed"]),
            tuple(i["name"] for i in inputs if not i["indexed"]),
            tuple(i["type"] for i in inputs if not i["indexed"]),
        )

    def decode(self, log: LogRecord) -> dict[str, Any]:
        """The log's arguments by name; ValueError when its topics do not fit the event."""
        if len(self.indexed) != len(log.topics) - 1:
            raise ValueError("topic count does not match the event")
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(self.indexed, log.topics[1:], strict=True):
            args[name] = abi_decode([kind], topic)[0]
        args.update(zip(self.data_names, abi_decode(list(self.data_types), log.data), strict=True))
        return args


def event_table(abi: list[dict[str, Any]]) -> dict[bytes, EventAbi]:
    """topic0 -> decoder for each (non-anonymous) event of a contract ABI."""
    # The JSON entries are untyped dicts; those of type "event" have `ABIEvent`'s shape.
    return {
        event_abi_to_log_topic(cast(ABIEvent, item)): EventAbi.from_abi(item)
        for item in abi
        if item["type"] == "event" and not item.get("anonymous")
    }
