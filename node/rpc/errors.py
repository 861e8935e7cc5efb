"""JSON-RPC errors with the numeric codes Ethereum clients act on.

RpcError
├── ParseError        -32700  body is not JSON
├── InvalidRequest    -32600  not a JSON-RPC 2.0 request object
├── MethodNotFound    -32601  unknown method
├── InvalidParams     -32602  wrong number, type or form of params
├── InternalError     -32603  the node failed (never the caller's fault)
├── ServerError       -32000  request understood but refused (rejected tx, unknown block...)
├── LimitExceeded     -32005  a configured cap (log range, batch size) was exceeded
└── ExecutionReverted      3  eth_call / eth_estimateGas reverted; data = ABI revert data

ListenerConfigError (a ValueError, no code: never sent to a client) is raised before anything
is bound when a listener's settings cannot be used: an unknown `--rpc-api` namespace, an admin
listener on a non-loopback host, a CORS entry that is not an origin, an empty token file.
"""

from __future__ import annotations

from typing import Any


class RpcError(Exception):
    code = -32603

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ParseError(RpcError):
    code = -32700


class InvalidRequest(RpcError):
    code = -32600


class MethodNotFound(RpcError):
    code = -32601


class InvalidParams(RpcError):
    code = -32602


class InternalError(RpcError):
    code = -32603


class ServerError(RpcError):
    code = -32000


class LimitExceeded(RpcError):
    code = -32005


class ExecutionReverted(RpcError):
    code = 3


class ListenerConfigError(ValueError):
    """A JSON-RPC listener setting that cannot be used; the message names the option."""
