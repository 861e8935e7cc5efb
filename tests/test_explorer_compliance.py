"""The explorer's compliance page for the risk service's cases, in a real headless Chromium
(Debian's `chromium`, through Playwright): a dev node serving the explorer with
`--explorer-connect` naming the risk service, `tally bank risk serve` on PostgreSQL following
the node with `--cors-origins` naming the node, and real payments the chain held for review.

An analyst key sees the queue and works a case, but its close is refused with the service's
reason; the officer notes and releases another, and the payee is paid on chain. The service
answers cross-origin only on the case routes, only to the listed origin.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from client import FileKeyStore
from client.policy import Payment as PolicyPayment
from client.tokens import HoldStatus, WalletToken
from client.wallet import Wallet
from tests.bank_support import PASSWORD, PostgresCluster, Service, make_key, wait_for, write_keys
from tests.conftest import NodeProcess, free_port
from tests.test_api_support import TOKEN, admin_key, start_node
from tests.test_cli_errors import tally

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed"
)
LABELS = {1: "issuer", 2: "compliance", 6: "c-6", 7: "c-7"}
STRANGER = "http://127.0.0.1:1"  # an origin the service does not list


@dataclass(frozen=True)
class Setup:
    node: NodeProcess
    risk: Service
    analyst_key: str
    officer_key: str
    payee: WalletToken
    cases: dict[str, dict[str, Any]]  # "analyst" / "officer": the case each test works


def held_payments(tokens: dict[int, WalletToken], amounts: list[int]) -> list[str]:
    """Payments of 6 to 7 the chain holds (over tier 1's review threshold while they are sent)."""
    issuer = tokens[1]
    issuer.mint(tokens[6].wallet.address, sum(amounts), secrets.token_bytes(32), wait=True)
    policy = PolicyPayment(TOKEN, TOKEN, 0)
    issuer.transact("setReviewThreshold", 1, min(amounts) - 1, payment=policy)
    try:
        sent = [tokens[6].transfer(tokens[7].wallet.address, a, wait=False) for a in amounts]
        for submitted in sent:
            issuer.wallet.wait_for_finality(submitted.tx_hash, timeout=60)
    finally:
        issuer.transact("setReviewThreshold", 1, 0, payment=policy)
    return [s.tx_hash for s in sent]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, dev_accounts: list) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("compliance")
    risk_port = free_port()
    node = start_node(tmp, "--explorer-connect", f"http://127.0.0.1:{risk_port}")
    postgres = PostgresCluster().start()
    service: Service | None = None
    try:
        db = postgres.create_database()
        keys = write_keys(tmp / "keys", dev_accounts, LABELS)
        env = {
            "TALLY_RPC_URL": node.url,
            "TALLY_BANK_DB": db,
            "TALLY_KEYSTORE_DIR": str(keys),
            "TALLY_KEYSTORE_PASSWORD": PASSWORD,
            "TALLY_BANK_NODE_API_KEY": admin_key(node),
            "TALLY_BANK_DATA_DIR": str(tmp / "bank-data"),
        }
        args = ["risk", "serve", "--cors-origins", f"https://other.example,{node.url}"]
        service = Service(args, risk_port, env, tmp / "risk.log").start()
        risk = service
        wait_for(lambda: httpx.get(risk.url + "/health").json()["monitor"] == "following",
                 60, "the monitor connected")  # fmt: skip
        store = FileKeyStore(keys, PASSWORD)
        tokens = {
            i: Wallet(store, label, node.url).wallet_token(TOKEN) for i, label in LABELS.items()
        }
        analyst, officer = make_key(db, "analyst"), make_key(db, "compliance")
        hashes = held_payments(tokens, [60_00, 75_00])

        def both() -> dict[str, dict[str, Any]] | None:
            queue = httpx.get(risk.url + "/risk/cases", timeout=30,
                              headers={"Authorization": f"Bearer {analyst}"}).json()  # fmt: skip
            found = {c["decision"]["tx_hash"]: c for c in queue}
            return (
                {"analyst": found[hashes[0]], "officer": found[hashes[1]]}
                if all(h in found for h in hashes)
                else None
            )

        cases = wait_for(both, 60, "a case for each held payment")
        yield Setup(node, risk, analyst, officer, tokens[7], cases)
    finally:
        if service is not None:
            service.stop()
        postgres.stop()
        node.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, setup: Setup) -> Iterator[Page]:
    """A tab on the compliance page; fails the test on any uncaught script error."""
    context = browser.new_context()
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(f"{setup.node.url}/explorer/#/compliance")
    expect(tab.locator("main")).to_have_attribute("data-rendered", "#/compliance")
    yield tab
    context.close()
    assert errors == [], errors


def open_case(page: Page, setup: Setup, key: str, case: dict[str, Any]) -> None:
    """Connect with `key`, see the case in the queue (by score) and open it."""
    page.get_by_label("Risk service URL").fill(setup.risk.url)
    page.get_by_label("Bank API key (analyst or compliance)").fill(key)
    page.get_by_role("button", name="Show").click()
    queue = page.get_by_test_id("case-queue")
    expect(queue.locator("tbody tr")).to_have_count(2)
    queue.get_by_role("link", name=f"#{case['id']}", exact=True).click()
    expect(page.get_by_role("heading", name=f"Case #{case['id']}")).to_be_visible()
    expect(page.get_by_test_id("case-reason-list")).to_contain_text("held_on_chain")
    assert key not in page.url and key not in page.content()


def test_analyst_works_the_queue_but_may_not_close(
    page: Page, setup: Setup, tmp_path: Path
) -> None:
    case = setup.cases["analyst"]
    open_case(page, setup, setup.analyst_key, case)
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.get_by_test_id("case-assignee")).to_have_text("test-analyst")
    expect(page.get_by_test_id("case-state")).to_have_text("assigned")

    page.get_by_label("Resolution", exact=True).select_option("release")
    page.get_by_role("button", name="Close case").click()
    alert = page.get_by_test_id("case-close-problem").get_by_role("alert")
    expect(alert).to_contain_text("Error 403")
    expect(alert).to_contain_text("this needs the compliance role")
    expect(page.get_by_test_id("case-state")).to_have_text("assigned")  # the case as it was
    assert setup.payee.hold(case["decision"]["hold_id"]).status == HoldStatus.HELD
    page.screenshot(path=str(tmp_path / "compliance-case.png"), full_page=True)


def test_officer_notes_and_releases_the_payee_is_paid(page: Page, setup: Setup) -> None:
    case = setup.cases["officer"]
    before = setup.payee.balance_of(setup.payee.wallet.address)
    open_case(page, setup, setup.officer_key, case)
    page.get_by_label("Note", exact=True).fill("called the customer: rent")
    page.get_by_role("button", name="Add note").click()
    notes = page.get_by_test_id("case-note-list")
    expect(notes).to_contain_text("called the customer: rent")
    expect(notes).to_contain_text("test-compliance")

    page.get_by_label("Resolution", exact=True).select_option("release")
    page.get_by_label("Reason", exact=True).fill("known landlord")
    page.get_by_role("button", name="Close case").click()
    expect(page.get_by_test_id("case-state")).to_have_text("closed", timeout=60_000)
    expect(page.get_by_test_id("case-resolution")).to_have_text("release")
    expect(notes).to_contain_text("known landlord")
    expect(page.get_by_role("button", name="Close case")).to_have_count(0)
    assert setup.payee.hold(case["decision"]["hold_id"]).status == HoldStatus.RELEASED
    assert setup.payee.balance_of(setup.payee.wallet.address) == before + 75_00

    page.get_by_label("Cases", exact=True).select_option("closed")  # the closed queue lists it
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("case-queue")).to_contain_text(f"#{case['id']}")


def preflight(setup: Setup, path: str, origin: str, method: str = "POST") -> httpx.Response:
    return httpx.options(
        setup.risk.url + path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=10,
    )


def test_service_answers_cross_origin_only_listed_origins_on_cases(setup: Setup) -> None:
    listed = preflight(setup, "/risk/cases/1/close", setup.node.url)
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == setup.node.url
    allowed = listed.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert (
        "access-control-allow-origin"
        not in preflight(setup, "/risk/cases", STRANGER, "GET").headers
    )
    for path in ("/risk/screening", "/risk/accounts/0x" + "11" * 20 + "/flag"):
        other = preflight(setup, path, setup.node.url)  # other routes stay same-origin
        assert "access-control-allow-origin" not in other.headers, path


def test_risk_serve_refuses_a_malformed_cors_origin(tmp_path: Path) -> None:
    result = tally(
        "bank", "risk", "serve", "--cors-origins", "risk.example",
        env={"TALLY_BANK_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "--cors-origins" in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())  # refused before the database was made
