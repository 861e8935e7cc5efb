"""Structured REST errors: every refusal is an HTTP status plus a machine-readable code.

Clients branch on `code`, people read `message`; the body is always
`{"error": {"code": ..., "message": ...}}`, whether the refusal came from a handler, from
request validation, from routing (unknown path, wrong method) or from an unexpected failure.

ApiError                       status  code
├── BadRequest                    400  invalid_request
├── Unauthenticated               401  unauthenticated
├── Forbidden                     403  forbidden
├── NotFound                      404  not_found
├── Conflict                      409  conflict
├── RateLimited                   429  rate_limited (with Retry-After)
├── Unavailable                   503  unavailable (with Retry-After: the node is full, not you)
└── TxRejected                    400  tx_rejected (the node's reason for refusing a relayed tx)
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


class ApiError(Exception):
    """A refusal with its HTTP status, machine code and human message."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "invalid_request"


class Unauthenticated(ApiError):
    status, code = 401, "unauthenticated"

    def __init__(self, message: str) -> None:
        super().__init__(message, {"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"rate limit exceeded; retry in {retry_after} s", {"Retry-After": str(retry_after)}
        )


class Unavailable(ApiError):
    """A shared resource of the node is exhausted by all callers together (not by this one):
    retrying later may work, and nobody else's state was given up to make room."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(f"{message}; retry in {retry_after} s", {"Retry-After": str(retry_after)})


class TxRejected(ApiError):
    status, code = 400, "tx_rejected"


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure through the one error shape."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(part) for part in error.get("loc", ()))
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("REST %s %s failed", request.method, request.url.path)
        return error_response(500, "internal_error", "the node failed to answer this request")
