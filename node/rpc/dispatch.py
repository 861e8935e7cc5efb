"""JSON-RPC 2.0 dispatch: one request, a batch, or a notification, to registered methods.

Methods are plain functions registered by name with their arity; they take parsed positional
params and return JSON-ready values. Transport (HTTP, WebSocket) lives in `node.rpc.server`.

Every method is public or admin (`rpc_method(..., admin=True)`), as geth keeps `admin_`,
`miner_` and `clique_propose` off its public listeners. An admin method changes what this node
does (a validator vote) or reveals how it is run (its peers' addresses); one request from a web
page an operator happens to have open must not reach them. `Dispatcher.public` is the view the
public HTTP/WS listener serves: only public methods, of the namespaces the operator enabled
(`--rpc-api`). The whole dispatcher is served only on the authenticated loopback admin listener
(`node.rpc.admin`). Both answer `rpc_modules` (geth's) with the namespaces they serve.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from node.query.callpool import CallAborted, CallsBusy
from node.rpc.errors import (
    InternalError,
    InvalidRequest,
    LimitExceeded,
    ListenerConfigError,
    MethodNotFound,
    ParseError,
    RpcError,
    ServerError,
)
from node.rpc.params import arguments

log = logging.getLogger(__name__)

Handler = Callable[..., Any]
BatchHook = Callable[..., contextlib.AbstractContextManager[object]]
"""Entered with the params of every request of one method in a batch (see `rpc_batch`)."""

NAMESPACES = ("eth", "net", "web3", "qbft", "tally", "debug", "trace", "admin", "rpc")
"""Every namespace Tally serves; registering a method of another is a programming error."""
DEFAULT_PUBLIC_NAMESPACES = ("eth", "net", "web3", "qbft", "tally", "debug", "trace")
"""What the public listener serves unless `--rpc-api` says otherwise (qbft: its getters;
debug/trace: traces, bounded like eth_call, which explorers and auditors' tools need)."""
BATCH_BUDGET = 10.0
"""Seconds of wall time one JSON-RPC batch may take before its remaining requests get -32005."""
_ALWAYS = "rpc"
"""`rpc_modules` is served on every listener: it is how a client learns what one serves."""


def namespace_of(method_name: str) -> str:
    return method_name.split("_", 1)[0]


@dataclass(frozen=True, slots=True)
class Method:
    handler: Handler
    min_params: int
    max_params: int
    needs_connection: bool = False
    admin: bool = False


def rpc_method(
    name: str,
    min_params: int = 0,
    max_params: int | None = None,
    *,
    needs_connection: bool = False,
    admin: bool = False,
) -> Callable[[Handler], Handler]:
    """Mark a namespace method as the handler of JSON-RPC method `name`; `admin` keeps it off
    the public listener (see the module docstring)."""

    def mark(fn: Handler) -> Handler:
        # A function attribute, read back by `Dispatcher.register_namespace`.
        fn.__rpc__ = (  # type: ignore[attr-defined]
            name,
            min_params,
            min_params if max_params is None else max_params,
            needs_connection,
            admin,
        )
        return fn

    return mark


def rpc_batch(name: str) -> Callable[[BatchHook], BatchHook]:
    """Mark a namespace method as the batch hook of JSON-RPC method `name`.

    Before a batch runs, the hook is entered with the params of all its requests of `name`
    (as sent, unchecked), and left once the batch is answered: it may start work for them all
    at once (e.g. in other processes) that the handler then finds ready. It must not change
    any answer, only when work is done; a hook that raises is logged and the batch runs as is.
    """

    def mark(fn: BatchHook) -> BatchHook:
        fn.__rpc_batch__ = name  # type: ignore[attr-defined]
        return fn

    return mark


def public_namespaces(names: Iterable[str]) -> frozenset[str]:
    """The namespaces a public listener is to serve, checked before anything starts: one Tally
    does not have, or `admin` (never served publicly), is a `ListenerConfigError`."""
    chosen = frozenset(name.strip().lower() for name in names if name.strip())
    if "admin" in chosen:
        raise ListenerConfigError(
            "--rpc-api: the admin namespace is served only on the admin listener "
            "(--admin-port), never on the public JSON-RPC port"
        )
    unknown = sorted(chosen - set(NAMESPACES))
    if unknown:
        known = ", ".join(n for n in NAMESPACES if n not in ("admin", _ALWAYS))
        raise ListenerConfigError(
            f"--rpc-api: unknown namespace {', '.join(unknown)} (the public listener can "
            f"serve {known})"
        )
    return chosen | {_ALWAYS}


class Dispatcher:
    """Routes decoded JSON-RPC objects to methods and shapes their responses.

    `namespaces` None serves every method (the admin listener); `public()` makes the view that
    serves the public ones of some namespaces, over the same registry of methods."""

    def __init__(self, max_batch: int = 5000, batch_budget: float = BATCH_BUDGET) -> None:
        self._methods: dict[str, Method] = {}
        self._batch_hooks: dict[str, BatchHook] = {}
        self.max_batch = max_batch
        self.batch_budget = batch_budget
        self.namespaces: frozenset[str] | None = None
        # Bound to this dispatcher, not shared with its views: each reports what it serves.
        self._own = {"rpc_modules": Method(self.modules, 0, 0)}

    def public(self, namespaces: Iterable[str]) -> Dispatcher:
        """The view a public listener serves: the methods registered here (before or after),
        less admin ones and those outside `namespaces` (checked by `public_namespaces`)."""
        view = Dispatcher(self.max_batch, self.batch_budget)
        view._methods = self._methods
        view._batch_hooks = self._batch_hooks
        view.namespaces = public_namespaces(namespaces)
        return view

    def register_namespace(self, namespace: object) -> None:
        for attribute in dir(namespace):
            fn = getattr(namespace, attribute)
            hooked = getattr(fn, "__rpc_batch__", None)
            if hooked is not None:
                self._batch_hooks[hooked] = fn
            spec = getattr(fn, "__rpc__", None)
            if spec is not None:
                name, low, high, needs_connection, admin = spec
                group = namespace_of(name)
                if group not in NAMESPACES or group == _ALWAYS or (group == "admin" and not admin):
                    raise ValueError(f"{name}: not a namespace Tally serves, or admin_ not admin")
                self._methods[name] = Method(fn, low, high, needs_connection, admin)

    def _refusal(self, name: str, method: Method) -> str | None:
        """Why this listener does not serve `method` (None: it does)."""
        if self.namespaces is None:
            return None
        if method.admin:
            return "it is an admin method, served only on the admin listener (--admin-port)"
        if namespace_of(name) not in self.namespaces:
            return f"the {namespace_of(name)} namespace is not enabled (--rpc-api)"
        return None

    def modules(self) -> dict[str, str]:
        """geth's `rpc_modules`: each namespace this listener serves a method of, "1.0"."""
        served = {_ALWAYS} | {
            namespace_of(name)
            for name, method in self._methods.items()
            if self._refusal(name, method) is None
        }
        return dict.fromkeys(sorted(served), "1.0")

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
            responses = await self._handle_batch(payload, connection)
            answered = [response for response in responses if response is not None]
            return answered or None
        return await self.handle_one(payload, connection)

    async def _handle_batch(
        self, batch: list[Any], connection: object | None
    ) -> list[dict[str, Any] | None]:
        """Requests in order, within `batch_budget` seconds of wall time in all: once it is
        spent, the rest are answered -32005 unrun (each call alone is bounded by the call
        pool's timeout, but 5,000 of them in one batch would hold a pool thread for hours)."""
        deadline = time.monotonic() + self.batch_budget
        responses = []
        with self._hooked(batch):
            for item in batch:
                if time.monotonic() < deadline or not isinstance(item, dict):
                    responses.append(await self.handle_one(item, connection))
                elif "id" in item:  # a notification past the budget is dropped, unanswered
                    spent = LimitExceeded(f"batch time budget of {self.batch_budget:g}s exceeded")
                    responses.append(_error_response(item.get("id"), spent))
        return responses

    @contextlib.contextmanager
    def _hooked(self, batch: list[Any]) -> Iterator[None]:
        """The batch hooks (`rpc_batch`) of the methods `batch` calls that this listener
        serves, entered for the batch's duration."""
        calls: dict[str, list[Any]] = {}
        if self._batch_hooks:
            for item in batch:
                name = item.get("method") if isinstance(item, dict) else None
                if isinstance(name, str) and name in self._batch_hooks:
                    calls.setdefault(name, []).append(item.get("params"))
        with contextlib.ExitStack() as hooks:
            for name, params in calls.items():
                method = self._methods.get(name)
                if method is None or self._refusal(name, method) is not None:
                    continue
                try:
                    hooks.enter_context(self._batch_hooks[name](params))
                except Exception:
                    log.exception("batch hook of %s failed", name)
            yield

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
        method = self._own.get(name) or self._methods.get(name)
        if method is None:
            raise MethodNotFound(f"the method {name} does not exist/is not available")
        refusal = self._refusal(name, method)
        if refusal is not None:
            raise MethodNotFound(f"the method {name} is not available on this listener: {refusal}")
        args = arguments(params, method.min_params, method.max_params)
        if method.needs_connection:
            result = method.handler(connection, *args)
        else:
            result = method.handler(*args)
        if isinstance(result, Awaitable):
            try:
                result = await result
            except CallsBusy as exc:  # the call threads' refusals, in JSON-RPC's codes
                raise LimitExceeded(str(exc)) from None
            except CallAborted as exc:
                raise ServerError(str(exc)) from None
        return result


def _error_response(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}
