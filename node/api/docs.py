"""The API's documentation pages, Swagger UI at /docs and ReDoc at /redoc, served with every
asset from the node itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, which leaves a blank page on the
offline networks banks run. The pages here are FastAPI's (`get_swagger_ui_html`,
`get_redoc_html`, as its guide to self-hosting the assets shows) pointed at the files the pinned
`fastapi-offline` package ships, mounted under /docs/assets. Each page also carries a Content
Security Policy allowing nothing but the node: ReDoc's sidebar links a logo on Redocly's CDN,
and an offline bank network should see no attempt to reach out, not a failed one.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS_URL = "/docs/assets"
ASSETS_DIR = files("fastapi_offline") / "static"
"""Swagger UI's bundle and stylesheet, ReDoc's standalone bundle and a favicon."""

CONTENT_SECURITY_POLICY = "default-src 'self' 'unsafe-inline' data: blob:"
"""Scripts, styles, images, fonts, workers and "try it out" requests: from the node only. Inline
code stays allowed: FastAPI's Swagger page starts the UI from an inline script, and both UIs
set inline styles."""


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve the docs pages and their assets on `app` (made with `docs_url=None,
    redoc_url=None`, so FastAPI adds no CDN-loading pages of its own)."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the docs pages need the app's OpenAPI document (openapi_url)")
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS_DIR)), name="docs-assets")
    favicon = f"{ASSETS_URL}/favicon.png"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _confined(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=favicon,
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _confined(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=favicon,
                with_google_fonts=False,
            )
        )


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page
