"""The node's HTTP app: the REST API under /api/v1, the Etherscan-compatible reads at /api
(`node.api.routes.etherscan`), its OpenAPI at /openapi.json (Swagger UI
at /docs, ReDoc at /redoc), the explorer page at /explorer/, and the JSON-RPC routes (POST /,
WS /, GET /metrics) on the same listener.

The docs pages load every asset from the node, not from a CDN (`node.api.docs`). A browser
opening the node's root URL is sent to the explorer by the JSON-RPC GET handler
(`node.rpc.server`), which finds it by its route name, `EXPLORER_ROUTE`.

`create_api` is the factory: it takes the chain reader (`ApiContext`) and the JSON-RPC routes,
and wires one router per resource, structured errors, rate limits per client address and per
caller, the body limit and request metrics. Security headers are added around the whole
listener by `node.service` (`node.api.headers`), so JSON-RPC alone (`--no-api`) has them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute

from node import __version__
from node.api.auth import rate_limited
from node.api.context import ApiContext
from node.api.docs import install_docs
from node.api.edge import ApiEdge
from node.api.errors import install_error_handlers
from node.api.headers import EXPLORER_PATH
from node.api.routes import (
    accounts,
    admin,
    auth,
    blocks,
    etherscan,
    me,
    merchants,
    payments,
    proofs,
    settlements,
    status,
    streams,
    transactions,
    validators,
)
from node.rpc.server import EXPLORER_ROUTE

API_PREFIX = "/api/v1"
EXPLORER_DIR = Path(__file__).resolve().parent / "static" / "explorer"

DESCRIPTION = """\
The bank's chain for enterprise systems, auditors and wallets.

**Credentials:** `Authorization: Bearer <credential>` (or `X-API-Key`), where the credential
is an API key (`tk_...`, created by an admin) or a session token from sign-in with Ethereum
(`POST /api/v1/auth/challenge`, sign the message with the wallet, `POST /api/v1/auth/token`).

**Errors:** an HTTP status and `{"error": {"code": "...", "message": "..."}}`.

**Pages:** `?limit=` (≤ 500) and `?cursor=` from the previous page's `next_cursor`, newest first.
"""


def create_api(ctx: ApiContext, rpc_routes: Sequence[BaseRoute] = ()) -> FastAPI:
    """The whole HTTP app of a node; `rpc_routes` are JSON-RPC's, served unchanged."""
    app = FastAPI(
        title="Tally REST API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    app.state.context = ctx
    install_error_handlers(app)
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(rate_limited)])
    for module in (
        status,
        auth,
        me,
        admin,
        blocks,
        transactions,
        accounts,
        settlements,
        proofs,
        validators,
        merchants,
        payments,
        streams,
    ):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(streams.socket_router)
    app.include_router(etherscan.router)
    if EXPLORER_DIR.is_dir():
        app.mount(
            EXPLORER_PATH, StaticFiles(directory=EXPLORER_DIR, html=True), name=EXPLORER_ROUTE
        )
    app.router.routes.extend(rpc_routes)
    app.add_middleware(ApiEdge, max_body_bytes=ctx.max_body_bytes, metrics=ctx.metrics)
    return app
