"""The REST API's HTTP edge, as pure ASGI middleware: body-size limit and request metrics.

Only `/api/` paths (and the Etherscan-compatible `/api`) are touched; JSON-RPC (POST /, WS /)
keeps its own, larger limit in `node.rpc.server`. A body is refused with 413 from its declared
length before anything is read, and, when no length is declared (chunked), as soon as the
bytes received pass the limit: the 413 is sent then, the app sees the client gone, and
whatever it answers is dropped.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.api.errors import error_response
from node.metrics import NodeMetrics

API_PREFIX = "/api/"


class ApiEdge:
    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: NodeMetrics | None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["type"] != "http" or not (path.startswith(API_PREFIX) or path == "/api"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        limit = self.max_body_bytes

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        declared = _content_length(scope)
        try:
            if declared is not None and declared > limit:
                response = error_response(
                    413, "payload_too_large", f"request body above {limit} bytes"
                )
                await response(scope, receive, send_status)
                return
            received = 0
            refused = False

            async def limited_receive() -> Message:
                nonlocal received, refused
                if refused:
                    return {"type": "http.disconnect"}
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        refused = True
                        response = error_response(
                            413, "payload_too_large", f"request body above {limit} bytes"
                        )
                        await response(scope, receive, send_status)
                        return {"type": "http.disconnect"}
                return message

            async def guarded_send(message: Message) -> None:
                if not refused:  # the app's answer to a body cut short is dropped
                    await send_status(message)

            try:
                await self.app(scope, limited_receive, guarded_send)
            except Exception:
                if not refused:
                    raise
        finally:
            self._observe(scope, status["code"], time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        if self.metrics is None:
            return
        template = _template(scope)
        self.metrics.api_requests.labels(template, scope["method"], str(status)).inc()
        self.metrics.api_latency.labels(template).observe(seconds)


def _template(scope: Scope) -> str:
    """The matched route as a template (/api/v1/accounts/{address}), from the path with each
    path parameter's segment named: routers nest, so no single route object holds it."""
    if scope.get("route") is None:
        return "unmatched"
    params: dict[str, Any] = scope.get("path_params") or {}
    names = {str(value): name for name, value in params.items()}
    return "/".join(
        "{" + names[segment] + "}" if segment in names else segment
        for segment in scope["path"].split("/")
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
