"""The explorer web page, driven in a real headless Chromium (Debian's `chromium`) through
Playwright, against the page a real `tally dev` node serves at /explorer/ and its REST API.

The chain gets real signed transactions first (a top-up, wallet-token payments, one with a fee,
an escrow), then an auditor and a customer sign in with API keys an admin created through the
API, and the page must show what the API says: the head, a block's transactions and seal
status, a transaction's decoded events, an account's history page by page, the escrow among
the settlements, the customer's wallet with a QR payment request, and the API's own error
message for a bad address. Screenshots go to pytest's tmp dir.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright
from web3 import Web3

from contracts import load_artifact
from node.domain.contracts import ESCROW, WALLET_TOKEN
from tally_common.eip681 import PaymentRequest
from tests.conftest import NodeProcess, web3_for
from tests.test_contracts_helpers import Chain, Kind, top_up_ref

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed"
)

TOKEN = Web3.to_checksum_address(WALLET_TOKEN)
ESCROW_ADDRESS = Web3.to_checksum_address(ESCROW)
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE_LABEL = '<img src=x onerror="window.pwned=1">'


@dataclass(frozen=True)
class Activity:
    """What the module's transactions left on chain."""

    customer: str
    payee: str
    payment_hash: str
    payment_block: int
    escrow_id: int
    escrow_payer: str
    escrow_payee: str


@dataclass(frozen=True)
class Keys:
    auditor: str
    customer: str


def cents(amount: int) -> str:
    """Base units of the 2-decimal token as the page writes them: 1234567 -> "12,345.67"."""
    return f"{amount // 100:,}.{amount % 100:02d}"


@pytest.fixture(scope="module")
def api(shared_node: NodeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{shared_node.url}/api/v1", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def activity(shared_node: NodeProcess, dev_accounts: list[LocalAccount]) -> Activity:
    """A top-up and three payments by customer 6 (one external, with a fee), an escrow
    opened by enterprise 3 for customer 8, and a payment of customer 6 held for review (to
    customer 9, whom compliance flagged), all real signed transactions."""
    w3 = web3_for(shared_node.url)
    chain = Chain(w3)
    token = w3.eth.contract(address=TOKEN, abi=load_artifact("WalletToken")["abi"])
    escrow = w3.eth.contract(address=ESCROW_ADDRESS, abi=load_artifact("Escrow")["abi"])
    issuer, enterprise, auditor = dev_accounts[1], dev_accounts[3], dev_accounts[5]
    customer, payee, other = dev_accounts[6], dev_accounts[7], dev_accounts[8]

    chain.tx(issuer, token.functions.mint(customer.address, 200_00, top_up_ref()))
    chain.tx(issuer, token.functions.mint(enterprise.address, 300_00, top_up_ref()))
    chain.mine()
    payment = chain.tx(customer, token.functions.transfer(payee.address, 10_00))
    chain.tx(customer, token.functions.transfer(other.address, 5_00))
    chain.tx(customer, token.functions.transferExternal(payee.address, 20_00, Kind.EXTERNAL))
    deal = escrow.functions.dealCount().call() + 1
    deadline = w3.eth.get_block("latest")["timestamp"] + 86_400
    chain.tx(enterprise, token.functions.approve(ESCROW_ADDRESS, 300_00))
    chain.tx(
        enterprise,
        escrow.functions.open(
            other.address, auditor.address, [100_00, 200_00], deadline, b"\x77" * 32
        ),
    )
    receipts = chain.mine()
    chain.tx(dev_accounts[2], token.functions.flag(dev_accounts[9].address, b"\x09" * 32))
    chain.tx(customer, token.functions.transfer(dev_accounts[9].address, 3_00))
    chain.mine()
    return Activity(
        customer=customer.address,
        payee=payee.address,
        payment_hash=payment.to_0x_hex(),
        payment_block=receipts[0]["blockNumber"],
        escrow_id=deal,
        escrow_payer=enterprise.address,
        escrow_payee=other.address,
    )


@pytest.fixture(scope="module")
def keys(shared_node: NodeProcess, api: httpx.Client, activity: Activity) -> Keys:
    """An auditor key and a customer key (for customer 6), created by the bootstrap admin."""
    admin = (shared_node.datadir / "api-admin.key").read_text().strip()
    headers = {"Authorization": f"Bearer {admin}"}

    def create(body: dict) -> str:
        response = api.post("/admin/api-keys", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()["key"]

    return Keys(
        auditor=create({"role": "auditor", "label": "audit team", "addresses": []}),
        customer=create(
            {"role": "customer", "label": HOSTILE_LABEL, "addresses": [activity.customer]}
        ),
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


class ExplorerPage:
    """One browser tab on the explorer; fails the test on any uncaught script error."""

    def __init__(self, browser: Browser, node: NodeProcess, shots: Path, phone: bool = False):
        size: ViewportSize = (
            {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
        )
        self.context = browser.new_context(viewport=size)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.base = f"{node.url}/explorer/"
        self.shots = shots

    def open(self, route: str) -> Page:
        self.page.goto(f"{self.base}#{route}")
        self.settle()
        return self.page

    def settle(self) -> None:
        """Wait until the view of the address bar's route has been rendered."""
        route = self.page.evaluate("location.hash") or "#/"
        expect(self.page.locator("main")).to_have_attribute("data-rendered", route)

    def follow(self, link: Locator) -> None:
        """Click an in-page link and wait for the view it leads to."""
        link.click()
        self.settle()

    def sign_in(self, key: str) -> None:
        self.open("/signin")
        self.page.get_by_label("API key", exact=True).fill(key)
        self.page.get_by_role("button", name="Sign in", exact=True).click()

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], self.errors


@pytest.fixture
def auditor(
    browser: Browser, shared_node: NodeProcess, keys: Keys, tmp_path: Path
) -> Iterator[ExplorerPage]:
    tab = ExplorerPage(browser, shared_node, tmp_path)
    tab.sign_in(keys.auditor)
    expect(tab.page.get_by_test_id("who")).to_have_text("auditor · audit team")
    yield tab
    tab.close()


def test_page_is_served_with_its_modules(shared_node: NodeProcess) -> None:
    page = httpx.get(f"{shared_node.url}/explorer/", timeout=30)
    assert page.status_code == 200
    assert 'type="module"' in page.text
    script = httpx.get(f"{shared_node.url}/explorer/js/app.js", timeout=30)
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]


def test_dashboard_shows_head_validators_and_latest_blocks(
    auditor: ExplorerPage, api: httpx.Client, activity: Activity
) -> None:
    status = api.get("/status").json()
    page = auditor.page
    expect(page).to_have_url(re.compile(r"#/$"))
    head = page.get_by_test_id("head")
    expect(head).to_contain_text("1337")
    expect(head).to_contain_text(status["head"]["hash"])
    expect(head.get_by_role("link", name=f"#{status['head']['number']}")).to_be_visible()
    validators = page.get_by_role("region", name="Validator set")
    expect(validators.get_by_role("listitem")).to_have_count(1)
    latest = page.get_by_test_id("latest-blocks")
    expect(latest.get_by_role("columnheader", name="Block")).to_be_visible()
    expect(latest.get_by_role("link", name=f"#{activity.payment_block}")).to_be_visible()
    auditor.shot("dashboard")


def test_block_page_lists_transactions_and_seal_status(
    auditor: ExplorerPage, api: httpx.Client, activity: Activity
) -> None:
    page = auditor.open(f"/blocks/{activity.payment_block}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Block #{activity.payment_block}")
    transactions = page.get_by_test_id("block-transactions")
    expect(transactions.get_by_role("link", name=activity.payment_hash)).to_be_visible()
    block = api.get(
        f"/blocks/{activity.payment_block}",
        headers={"Authorization": f"Bearer {page_key(page)}"},
    ).json()
    expect(transactions.locator("tbody tr")).to_have_count(block["tx_count"])
    seals = block["commit_seals"]
    assert seals["valid"]
    expect(page.get_by_test_id("seal-status")).to_have_text(
        f"✓ Verified: {seals['count']} commit seal{'' if seals['count'] == 1 else 's'},"
        f" quorum {seals['quorum']}"
    )
    auditor.shot("block")

    auditor.follow(transactions.get_by_role("link", name=activity.payment_hash))
    expect(page.get_by_role("heading", level=1)).to_have_text("Transaction")


def test_block_0_is_shown_as_the_genesis(auditor: ExplorerPage) -> None:
    """Block 0 has no proposer (its coinbase is the zero address) and no seals: every node
    builds it from the genesis document, so the page says so instead of naming 0x000…000."""
    page = auditor.open("/blocks/0")
    expect(page.get_by_role("heading", level=1)).to_have_text("Block #0")
    expect(page.locator("dt:text-is('Proposer') + dd")).to_have_text("genesis")
    expect(page.locator("dt:text-is('Parent') + dd")).to_have_text("none (the first block)")
    expect(page.locator("dt:text-is('Created') + dd")).not_to_contain_text("1970")
    expect(page.get_by_test_id("seal-status")).to_contain_text("Genesis")
    expect(page.locator(f"a[title='0x{'0' * 40}']")).to_have_count(0)
    auditor.shot("genesis-block")

    page = auditor.open("/blocks?limit=500")
    rows = page.get_by_test_id("blocks").locator("tbody tr")
    proposer = {  # the last column, by block
        number: rows.filter(has=page.get_by_role("link", name=f"#{number}", exact=True))
        .locator("td")
        .last
        for number in (0, 1)
    }
    expect(proposer[0]).to_have_text("genesis")
    expect(proposer[1].get_by_role("link")).to_have_count(1)  # block 1 names its proposer


def test_transaction_page_shows_decoded_events(auditor: ExplorerPage, activity: Activity) -> None:
    page = auditor.open(f"/tx/{activity.payment_hash}")
    expect(page.get_by_test_id("tx-status")).to_have_text("success")
    events = page.get_by_test_id("tx-events")
    transfer = events.locator("tbody tr").filter(has_text="Transfer")
    expect(transfer).to_have_count(1)
    expect(transfer).to_contain_text("WalletToken")
    expect(transfer.get_by_role("link", name=activity.customer)).to_be_visible()
    expect(transfer.get_by_role("link", name=activity.payee)).to_be_visible()
    expect(transfer).to_contain_text("10.00 (1000)")
    calls = page.get_by_test_id("tx-calls").locator("tbody tr")
    expect(calls.first).to_contain_text("CALL")  # the node's call trace, top call first
    auditor.shot("transaction")


def test_account_history_pages_through_every_transfer(
    auditor: ExplorerPage, api: httpx.Client, activity: Activity
) -> None:
    headers = {"Authorization": f"Bearer {page_key(auditor.page)}"}
    every = api.get(f"/accounts/{activity.customer}/transfers", headers=headers).json()["items"]
    assert len(every) >= 4  # the top-up, three payments (and the fee leg of the external one)
    account = api.get(f"/accounts/{activity.customer}", headers=headers).json()

    page = auditor.open(f"/accounts/{activity.customer}?tab=transfers&limit=2")
    expect(page.get_by_test_id("token-balance")).to_have_text(
        f"{cents(int(account['token_balance']))} TEUR"
    )
    expect(page.get_by_role("link", name="Token transfers")).to_have_attribute(
        "aria-current", "page"
    )
    seen: list[str] = []
    for number in range(1, len(every) + 1):
        rows = page.get_by_test_id("history").locator("tbody tr")
        expect(rows.first).to_be_visible()
        links = rows.locator("td:nth-child(2) a").all()  # the Tx column; full hash in the title
        seen += [link.get_attribute("title") or "" for link in links]
        if number == 2:
            auditor.shot("account-page-2")
        older = page.get_by_role("link", name=re.compile(r"^Older"))
        if not older.count():
            break
        auditor.follow(older)
        expect(page.get_by_role("link", name=re.compile(r"Newest$"))).to_be_visible()
    expect(page.get_by_role("navigation", name="Pages")).to_contain_text("End of list")
    assert seen == [row["tx_hash"] for row in every]

    auditor.follow(page.get_by_role("link", name="Fees paid"))
    fees = page.get_by_test_id("history")
    expect(fees.locator("tbody tr")).to_have_count(1)
    expect(fees).to_contain_text("external")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    csv_text = Path(download.value.path()).read_text()
    assert csv_text.splitlines()[0].startswith("tx_hash,")
    assert len(csv_text.strip().splitlines()) == 2

    auditor.follow(page.get_by_role("link", name="Held payments"))
    holds = page.get_by_test_id("history")
    expect(holds.locator("tbody tr")).to_have_count(1)
    expect(holds).to_contain_text("held for review")
    expect(holds).to_contain_text("payee flagged")

    auditor.follow(page.get_by_role("link", name="Points", exact=True))
    earned = page.get_by_test_id("history")
    expect(earned.locator("tbody tr")).to_have_count(2)  # the newest two of three, 1% of each
    expect(earned.locator("tbody tr").first).to_contain_text("earned")
    expect(earned.locator("tbody tr").first).to_contain_text("+20")
    expect(earned.locator("tbody tr").last).to_contain_text("+5")


def test_settlements_list_shows_the_escrow(auditor: ExplorerPage, activity: Activity) -> None:
    page = auditor.open("/settlements")
    page.get_by_label("Kind").select_option("escrow")
    page.get_by_label("Party").fill(activity.escrow_payee)
    page.get_by_role("button", name="Filter").click()
    auditor.settle()
    expect(page).to_have_url(re.compile(r"kind=escrow"))
    table = page.get_by_test_id("settlements")
    row = table.locator("tbody tr").filter(has_text=f"Escrow {activity.escrow_id}")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("open")
    expect(row).to_contain_text("300.00 TEUR")
    expect(row.get_by_role("link", name=re.compile(activity.escrow_payer[:8]))).to_be_visible()
    auditor.shot("settlements")

    auditor.follow(row.get_by_role("link", name=f"Escrow {activity.escrow_id}"))
    expect(page.get_by_test_id("settlement-state")).to_have_text("open")
    expect(page.get_by_test_id("settlement-events")).to_contain_text("EscrowOpened")


def test_bad_address_shows_the_apis_error(auditor: ExplorerPage) -> None:
    page = auditor.open("/accounts/0x1234not-an-address")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Error 400")
    expect(alert).to_contain_text("invalid_request")
    expect(alert).to_contain_text("address must be a 0x-prefixed 20-byte hex address")
    auditor.shot("bad-address")

    page.get_by_label("Block number, transaction hash or address").fill("nonsense")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter a block number")


def test_wrong_api_key_is_refused_with_the_apis_message(
    browser: Browser, shared_node: NodeProcess, tmp_path: Path
) -> None:
    tab = ExplorerPage(browser, shared_node, tmp_path)
    tab.sign_in("tk_not-a-real-key")
    alert = tab.page.get_by_role("alert")
    expect(alert).to_contain_text("unauthenticated")
    expect(alert).to_contain_text("invalid or revoked API key")
    assert tab.page.evaluate("sessionStorage.length") == 0
    tab.shot("sign-in-refused")
    tab.close()


def test_customer_wallet_and_qr_payment_request(
    browser: Browser,
    shared_node: NodeProcess,
    api: httpx.Client,
    keys: Keys,
    activity: Activity,
    tmp_path: Path,
) -> None:
    tab = ExplorerPage(browser, shared_node, tmp_path, phone=True)
    tab.sign_in(keys.customer)
    page = tab.page
    expect(page).to_have_url(re.compile(r"#/wallet$"))
    # The key's label is shown as text, never parsed as markup.
    expect(page.get_by_test_id("who")).to_have_text(f"customer · {HOSTILE_LABEL}")
    assert page.evaluate("window.pwned") is None
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link", name="Wallet")).to_be_visible()
    expect(navigation.get_by_role("link", name="Blocks")).to_be_hidden()

    headers = {"Authorization": f"Bearer {keys.customer}"}
    account = api.get(f"/accounts/{activity.customer}", headers=headers).json()
    expect(page.get_by_test_id("wallet-balance")).to_have_text(
        f"{cents(int(account['token_balance']))} TEUR"
    )
    history = page.get_by_test_id("wallet-history")
    expect(history.get_by_role("columnheader", name="Amount")).to_be_visible()
    expect(history.locator("tbody tr").filter(has_text="10.00 TEUR")).to_have_count(1)

    page.get_by_label("Amount (TEUR)").fill("12.5x")
    page.get_by_role("button", name="Create QR code").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter an amount like 12.50")

    page.get_by_label("Amount (TEUR)").fill("12.50")
    page.get_by_label("Memo (optional)").fill("lunch")
    page.get_by_role("button", name="Create QR code").click()
    request = page.get_by_test_id("payment-request")
    qr = request.get_by_role("img", name=re.compile("QR code: pay 12.50 TEUR"))
    expect(qr).to_be_visible()
    expected = PaymentRequest(activity.customer, 1250, 1337, TOKEN)
    expect(request.get_by_test_id("payment-uri")).to_have_text(expected.to_uri())
    uri = f"ethereum:{TOKEN}@1337/transfer?address={activity.customer}&uint256=1250"
    assert expected.to_uri() == uri
    expect(request).to_contain_text("lunch")
    # The drawing is the QR code of that URI: the same modules segno draws for it.
    assert qr_path(qr.evaluate("svg => svg.outerHTML")) == qr_path(svg_of(expected))
    tab.shot("wallet-phone")

    # A customer's own pages only: another account is refused with the API's reason.
    tab.open(f"/accounts/{activity.payee}")
    expect(page.get_by_role("alert")).to_contain_text("may not read that account")
    tab.close()


# An EIP-1193 wallet as a browser extension injects it; signing happens in Python (eth-account),
# so the page runs its real Sign-In with Ethereum flow against the node's challenge and token.
INJECTED_WALLET = """
window.ethereum = {
  async request({ method, params }) {
    if (method === "eth_requestAccounts") return [await window.walletAddress()];
    if (method === "personal_sign") return window.walletSign(params[0], params[1]);
    throw new Error(`unsupported method ${method}`);
  },
};
"""


def test_sign_in_with_ethereum_through_an_injected_wallet(
    browser: Browser, shared_node: NodeProcess, dev_accounts: list[LocalAccount], tmp_path: Path
) -> None:
    auditor_account = dev_accounts[5]  # AccountRules role: auditor
    signed: list[str] = []

    def sign(message_hex: str, address: str) -> str:
        assert address == auditor_account.address
        message = bytes.fromhex(message_hex[2:]).decode()
        signed.append(message)
        signature = auditor_account.sign_message(encode_defunct(text=message)).signature
        return "0x" + signature.hex()

    tab = ExplorerPage(browser, shared_node, tmp_path)
    tab.page.expose_function("walletAddress", lambda: auditor_account.address)
    tab.page.expose_function("walletSign", sign)
    tab.page.add_init_script(INJECTED_WALLET)
    tab.open("/signin")
    tab.page.get_by_role("button", name="Sign in with Ethereum").click()
    expect(tab.page.get_by_test_id("who")).to_have_text("auditor · sign-in with Ethereum")
    tab.settle()
    expect(tab.page.get_by_test_id("head")).to_contain_text("1337")
    (message,) = signed
    assert "wants you to sign in with your Ethereum account" in message
    assert auditor_account.address in message
    stored = tab.page.evaluate("JSON.parse(sessionStorage.getItem('tally.session'))")
    assert stored["method"] == "ethereum" and stored["addresses"] == [auditor_account.address]
    assert stored["expiresAt"] > 0
    tab.close()


def page_key(page: Page) -> str:
    """The credential the page keeps in sessionStorage (to ask the API what the page shows)."""
    return page.evaluate("JSON.parse(sessionStorage.getItem('tally.session')).credential")


def svg_of(request: PaymentRequest) -> str:
    out = io.BytesIO()
    request.qr().save(out, kind="svg", scale=4, border=4, xmldecl=False)
    return out.getvalue().decode()


def qr_path(svg: str) -> str:
    """The path data of a QR code's dark modules."""
    root = ET.fromstring(svg)
    paths = root.findall(f".//{SVG}path") or root.findall(".//path")
    assert len(paths) == 1, svg[:200]
    return paths[0].attrib["d"]
