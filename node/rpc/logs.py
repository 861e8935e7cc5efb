"""`eth_getLogs`: logs of committed blocks by range or block hash, address and topics.

Parsing happens here, on the loop, so malformed filters fail fast; the scan itself runs on
`LogSearch`'s worker threads (see there for why).
"""

from __future__ import annotations

from typing import Any

from node.rpc.dispatch import rpc_method
from node.rpc.logquery import LogSearch, parse_filter


class LogsApi:
    """The `eth_getLogs` method over a shared `LogSearch` (filters use the same one)."""

    def __init__(self, search: LogSearch) -> None:
        self.search = search

    @rpc_method("eth_getLogs", 1)
    async def get_logs(self, filter_object: Any) -> list[dict[str, Any]]:
        log_filter = parse_filter(filter_object)
        return await self.search.run_async(log_filter)
