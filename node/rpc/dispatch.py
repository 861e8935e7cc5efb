"""JSON-RPC 2.0 dispatch: one request, a batch, or a notification, to registered methods.

Methods are plain functions registered by name with their arity; they take parsed positional
params and return JSON-ready values. Transport (HTTP, WebSocket) lives in `node.rpc.server`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from node.rpc.errors import InternalError, InvalidRequest, MethodNotFound, ParseError, RpcError
from node.rpc.params import arguments

log = logging.getLogger(__name__)

Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Method:
    handler: Handler
    min_params: int
    max_params: int
    needs_connection: bool = False


def rpc_method(
    name: str, min_params: int = 0, max_params: int | None = None, *, needs_connection: bool = False
) -> Callable[[Handler], Handler]:
    """Mark a namespace method as the handler of JSON-RPC method `name`."""

    def mark(fn: Handler) -> Handler:
        # A function attribute, read back by `Dispatcher.register_namespace`.
        fn.__rpc__ = (  # type: ignore[attr-defined]
            name,
            min_params,
            min_params if max_params is None else max_params,
            needs_connection,
        )
        return fn

    return mark


class Dispatcher:
    """Routes decoded JSON-RPC objects to methods and shapes their responses."""

    def __init__(self, max_batch: int = 5000) -> None:
        self._methods: dict[str, Method] = {}
        self.max_batch = max_batch

    def register_namespace(self, namespace: object) -> None:
        for attribute in dir(namespace):
            fn = getattr(namespace, attribute)
            spec = getattr(fn, "__rpc__", None)
            if spec is not None:
                name, low, high, needs_connection = spec
                self._methods[name] = Method(fn, low, high, needs_connection)

    @property
    def method_names(self) -> list[str]:
        return sorted(self._methods)

    async def handle_body(self, body: bytes, connection: object | None = None) -> bytes | None:
        """A raw request body in, a raw response body out (None: nothing to send back)."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return orjson.dumps(_error_response(None, ParseError("parse error")))
        response = await self.handle_payload(payload, connection)
        return None if response is None else orjson.dumps(response)

    async def handle_payload(self, payload: Any, connection: object | None) -> Any:
        if isinstance(payload, list):
            if not payload:
                return _error_response(None, InvalidRequest("empty batch"))
            if len(payload) > self.max_batch:
                return _error_response(
                    None, InvalidRequest(f"batch too large: {len(payload)} > {self.max_batch}")
                )
            responses = [await self.handle_one(item, connection) for item in payload]
            answered = [response for response in responses if response is not None]
            return answered or None
        return await self.handle_one(payload, connection)

    async def handle_one(self, request: Any, connection: object | None) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return _error_response(None, InvalidRequest("request must be an object"))
        request_id = request.get("id")
        is_notification = "id" not in request
        if request.get("jsonrpc") != "2.0":
            return _error_response(request_id, InvalidRequest('jsonrpc must be "2.0"'))
        if not isinstance(request_id, (str, int, float, type(None))) or isinstance(
            request_id, bool
        ):
            return _error_response(None, InvalidRequest("id must be a string, number or null"))
        name = request.get("method")
        if not isinstance(name, str):
            return _error_response(request_id, InvalidRequest("method must be a string"))
        try:
            result = await self.call(name, request.get("params"), connection)
        except RpcError as error:
            return None if is_notification else _error_response(request_id, error)
        except Exception:
            log.exception("internal error in %s", name)
            internal = InternalError("internal error")
            return None if is_notification else _error_response(request_id, internal)
        if is_notification:
            return None
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    async def call(self, name: str, params: Any, connection: object | None) -> Any:
        method = self._methods.get(name)
        if method is None:
            raise MethodNotFound(f"the method {name} does not exist/is not available")
        args = arguments(params, method.min_params, method.max_params)
        if method.needs_connection:
            result = method.handler(connection, *args)
        else:
            result = method.handler(*args)
        if isinstance(result, Awaitable):
            result = await result
        return result


def _error_response(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}
