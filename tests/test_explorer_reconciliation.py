"""The explorer's operations page for the bank gateway's reconciliation, in a real headless
Chromium (Debian's `chromium`, through Playwright): a `tally dev` node serving the explorer with
`--explorer-connect` naming the gateway, a real card simulator and `tally bank gateway` (SQLite,
no setup) with `--cors-origins` naming the node, and a top-up made through the gateway.

The page must show the gateway's matched totals and its CSV; a wrong or a customer's key, the
gateway's own 401/403 message; and the gateway must answer cross-origin only on the
reconciliation routes, only to the listed origin.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from node.api.headers import explorer_policy
from node.rpc.errors import ListenerConfigError
from tests.bank_support import (
    CUSTOMER,
    ISSUER,
    Service,
    Stack,
    api_key,
    gateway,
    node_api_key,
    simulator,
    write_keys,
)
from tests.conftest import NodeProcess, free_port
from tests.test_cli_errors import tally

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed"
)
TODAY = datetime.datetime.now(datetime.UTC).date().isoformat()
STRANGER = "http://127.0.0.1:1"  # an origin the gateway does not list


@dataclass(frozen=True)
class Setup:
    node: NodeProcess
    gateway: Service
    operations_key: str
    customer_key: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, dev_accounts: list) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("recon")
    gateway_port = free_port()
    node = NodeProcess(
        tmp / "node",
        free_port(),
        free_port(),
        extra_args=("--explorer-connect", f"http://127.0.0.1:{gateway_port}"),
    )
    sim = simulator(tmp, gateway_port)
    keys = write_keys(tmp / "keys", dev_accounts, {ISSUER: "issuer"})
    gw = gateway(tmp, gateway_port, node.url, sim.url, keys, None, node_key="")
    gw.args += ["--cors-origins", f"https://other.example,{node.url}"]
    try:
        node.start()
        gw.env["TALLY_BANK_NODE_API_KEY"] = node_api_key(node.url, node.datadir)
        sim.start()
        gw.start()
        customer = dev_accounts[CUSTOMER].address
        stack = Stack(node.url, sim, gw, keys, "", customer,
                      api_key(gw, "customer", customer), api_key(gw, "operations"))  # fmt: skip
        response = stack.topup("recon-page-topup-1", 2_50)
        assert response.status_code == 201, response.text
        stack.wait_topup(response.json()["id"])
        yield Setup(node, gw, stack.operations_key, stack.customer_key)
    finally:
        gw.stop()
        sim.stop()
        node.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, setup: Setup) -> Iterator[Page]:
    """A tab on the reconciliation page; fails the test on any uncaught script error."""
    context = browser.new_context(accept_downloads=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(f"{setup.node.url}/explorer/#/reconciliation/{TODAY}")
    expect(tab.locator("main")).to_have_attribute("data-rendered", f"#/reconciliation/{TODAY}")
    yield tab
    context.close()
    assert errors == [], errors


def show(page: Page, setup: Setup, key: str) -> None:
    page.get_by_label("Gateway URL").fill(setup.gateway.url)
    page.get_by_label("Operations API key of the gateway").fill(key)
    page.get_by_role("button", name="Show").click()


def test_page_shows_the_gateways_matched_totals_and_csv(
    page: Page, setup: Setup, tmp_path: Path
) -> None:
    show(page, setup, setup.operations_key)
    expect(page.get_by_test_id("recon-topups")).to_have_text("1")
    expect(page.get_by_test_id("recon-topup-total")).to_have_text("2.50")
    expect(page.get_by_test_id("recon-file")).to_have_text("yes")
    expect(page.get_by_test_id("recon-break-count")).to_have_text("0")
    expect(page.get_by_test_id("recon-breaks")).to_contain_text("No breaks")
    # The key is kept for the tab, never put in the page's URL or the field's attributes.
    assert setup.operations_key not in page.url
    assert setup.operations_key in page.evaluate("sessionStorage.getItem('tally.gateway')")
    assert setup.operations_key not in page.content()

    with page.expect_download() as download:
        page.get_by_test_id("reconciliation-csv").click()
    assert download.value.suggested_filename == f"reconciliation-{TODAY}.csv"
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("day,line,reference")
    assert lines[1] == f"{TODAY},matched top-ups,,,,250,1"
    page.screenshot(path=str(tmp_path / "reconciliation.png"), full_page=True)


@pytest.mark.parametrize(
    ("which", "status", "message"),
    [
        ("wrong", "Error 401", "missing or unknown API key"),
        ("customer", "Error 403", "this needs the operations role"),
    ],
)
def test_refused_keys_show_the_gateways_message(
    page: Page, setup: Setup, which: str, status: str, message: str
) -> None:
    key = "tbk_not-a-real-key" if which == "wrong" else setup.customer_key
    show(page, setup, key)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(status)
    expect(alert).to_contain_text(message)
    expect(page.get_by_test_id("recon-topups")).to_have_count(0)


def preflight(setup: Setup, path: str, origin: str) -> httpx.Response:
    return httpx.options(
        setup.gateway.url + path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
        timeout=10,
    )


def test_gateway_answers_cross_origin_only_listed_origins_on_reconciliation(
    setup: Setup,
) -> None:
    listed = preflight(setup, f"/reconciliation/{TODAY}", setup.node.url)
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == setup.node.url
    assert "authorization" in listed.headers["access-control-allow-headers"].lower()

    stranger = preflight(setup, f"/reconciliation/{TODAY}", STRANGER)
    assert "access-control-allow-origin" not in stranger.headers
    for path in ("/topups", "/totals"):  # other routes stay same-origin, even for the listed
        other = preflight(setup, path, setup.node.url)
        assert "access-control-allow-origin" not in other.headers, path

    read = httpx.get(
        setup.gateway.url + f"/reconciliation/{TODAY}",
        headers={"Origin": STRANGER, "Authorization": f"Bearer {setup.operations_key}"},
        timeout=30,
    )
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers


def test_explorer_may_fetch_only_from_the_listed_gateway(setup: Setup) -> None:
    policy = httpx.get(f"{setup.node.url}/explorer/", timeout=10).headers["content-security-policy"]
    assert f"connect-src 'self' {setup.gateway.url}" in policy
    assert "connect-src" not in explorer_policy(())
    with pytest.raises(ListenerConfigError, match="--explorer-connect"):
        explorer_policy(["https://gateway.example/path"])


def test_gateway_refuses_a_malformed_cors_origin(tmp_path: Path) -> None:
    result = tally(
        "bank", "gateway", "--cors-origins", "gateway.example",
        env={"TALLY_BANK_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "--cors-origins" in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())  # refused before the database was made
