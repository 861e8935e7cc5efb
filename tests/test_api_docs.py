"""The node's pages for people, on a machine without internet: the API docs (Swagger UI at
/docs, ReDoc at /redoc) load every script, stylesheet and icon from the node itself, and a
browser opening the node's root URL lands on the explorer, while JSON-RPC on / (POST and
WebSocket) is unchanged.

A real `tally dev` node serves them; the pages are fetched over HTTP (every asset they name is
fetched in turn) and rendered in Debian's Chromium through Playwright, with every request to
another host refused and recorded, as it would fail on an offline bank network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright
from websockets.sync.client import connect

from tests.conftest import NodeProcess

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed"
)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CHAIN_ID = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}


class AssetLinks(HTMLParser):
    """The URLs a page makes the browser load: scripts, stylesheets and icons, images, and
    ReDoc's spec URL."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        wanted = {"script": "src", "link": "href", "img": "src", "redoc": "spec-url"}.get(tag)
        if wanted is not None and named.get(wanted):
            self.urls.append(str(named[wanted]))


def asset_urls(page_url: str, html: str) -> list[str]:
    """Every URL `html` loads, absolute; Swagger UI's spec URL is in its inline script."""
    parser = AssetLinks()
    parser.feed(html)
    inline_spec = re.findall(r"""\burl:\s*['"]([^'"]+)['"]""", html)
    return [urljoin(page_url, url) for url in [*parser.urls, *inline_spec]]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_loads_every_asset_from_the_node(shared_node: NodeProcess, page: str) -> None:
    page_url = shared_node.url + page
    response = httpx.get(page_url, timeout=30)
    assert response.status_code == 200
    urls = asset_urls(page_url, response.text)
    assert any(url.endswith(".js") for url in urls), urls  # the UI itself
    assert f"{shared_node.url}/openapi.json" in urls, urls
    host = urlsplit(shared_node.url).netloc
    assert [url for url in urls if urlsplit(url).netloc != host] == []
    for url in urls:
        asset = httpx.get(url, timeout=30)
        assert asset.status_code == 200, url
        assert asset.content, url
    assert json.loads(httpx.get(f"{shared_node.url}/openapi.json", timeout=30).text)["paths"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def offline_page(browser: Browser, shared_node: NodeProcess) -> Iterator[tuple[Page, list[str]]]:
    """A tab that may reach only the node: other requests are refused and listed."""
    context = browser.new_context()
    off_host: list[str] = []
    host = urlsplit(shared_node.url).netloc

    def only_the_node(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != host:
            off_host.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", only_the_node)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page, off_host
    context.close()
    assert errors == []


@needs_chromium
def test_swagger_ui_renders_offline(
    shared_node: NodeProcess, offline_page: tuple[Page, list[str]]
) -> None:
    page, off_host = offline_page
    page.goto(f"{shared_node.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Tally REST API")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/status")).to_be_visible()
    assert off_host == []


@needs_chromium
def test_redoc_renders_offline(
    shared_node: NodeProcess, offline_page: tuple[Page, list[str]]
) -> None:
    page, off_host = offline_page
    page.goto(f"{shared_node.url}/redoc")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Tally REST API")
    expect(page.get_by_text("/api/v1/status").first).to_be_attached()
    assert off_host == []


def test_browser_at_the_root_is_sent_to_the_explorer(shared_node: NodeProcess) -> None:
    response = httpx.get(shared_node.url + "/", headers={"Accept": BROWSER_ACCEPT}, timeout=30)
    assert response.status_code == 307
    assert response.headers["location"] == "/explorer/"
    followed = httpx.get(
        shared_node.url + "/", headers={"Accept": BROWSER_ACCEPT}, follow_redirects=True
    )
    assert followed.status_code == 200
    assert "<title>Tally explorer</title>" in followed.text


@needs_chromium
def test_chromium_opening_the_root_shows_the_explorer(
    shared_node: NodeProcess, offline_page: tuple[Page, list[str]]
) -> None:
    page, _ = offline_page
    page.goto(shared_node.url)
    expect(page).to_have_url(re.compile(rf"^{re.escape(shared_node.url)}/explorer/(#.*)?$"))
    expect(page).to_have_title(re.compile(r"Tally explorer$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def test_json_rpc_on_the_root_is_unchanged(shared_node: NodeProcess) -> None:
    """POST / and WebSocket / still speak JSON-RPC; a GET not asking for a page is told to
    POST rather than redirected."""
    posted = httpx.post(shared_node.url, json=CHAIN_ID, timeout=30)
    assert posted.json()["result"] == "0x539"
    for accept in ("application/json", "*/*"):
        got = httpx.get(shared_node.url, headers={"Accept": accept}, timeout=30)
        assert got.status_code == 405
        assert got.json()["error"]["code"] == -32600
    for port in (shared_node.rpc_port, shared_node.ws_port):
        with connect(f"ws://127.0.0.1:{port}/") as websocket:
            websocket.send(json.dumps(CHAIN_ID))
            assert json.loads(websocket.recv(timeout=30))["result"] == "0x539"


def test_root_without_the_rest_api_has_no_page_to_redirect_to(
    node_factory: Callable[..., NodeProcess],
) -> None:
    node = node_factory(extra_args=("--no-api",))
    response = httpx.get(node.url + "/", headers={"Accept": BROWSER_ACCEPT}, timeout=30)
    assert response.status_code == 405
    assert response.json()["error"]["message"] == "JSON-RPC requests must be POSTed"
