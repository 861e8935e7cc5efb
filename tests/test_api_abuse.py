"""Abuse of the REST API from the network, on real nodes over real HTTP (issue 12 point 4).

Each test is a different client: Linux routes all of 127.0.0.0/8 to the loopback interface, so
a client bound to 127.0.0.N is, to the node, another address. Checked: fresh junk credentials
(and forged X-Forwarded-For) from one address run out, failed sign-ins are throttled, one
address's budget covers all its credentials, a flood of sign-in challenges neither evicts
another client's challenge nor grows the store past its bound, X-Forwarded-For counts only
from trusted proxies, the sign-in domain is the configured one whatever the Host header says,
and every kind of response carries the security headers, which the explorer runs under in a
real browser.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from playwright.sync_api import expect, sync_playwright

from node.api.docs import CONTENT_SECURITY_POLICY as DOCS_POLICY
from tests.conftest import NodeProcess, free_port
from tests.test_api_support import Api, admin_key, sign_in

ADDRESS_LIMIT = 60
SIWE_DOMAIN = "bank.example"
CHROMIUM = Path("/usr/bin/chromium")
FAILURES = 10  # the default --api-auth-failure-limit, 10/minute


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """Default per-caller and failure limits; a small per-address one; a configured domain."""
    node = NodeProcess(
        tmp_path_factory.mktemp("abuse") / "node",
        free_port(),
        free_port(),
        extra_args=(
            "--api-address-rate-limit",
            f"{ADDRESS_LIMIT}/minute",
            "--api-siwe-domain",
            f"https://{SIWE_DOMAIN}",
        ),
    )
    node.start()
    yield node
    node.stop()


def junk() -> str:
    """A credential nobody issued, different every time, shaped like each kind that exists."""
    return secrets.choice(
        [
            "tk_" + secrets.token_urlsafe(32),
            "eyJhbGciOiJIUzI1NiJ9." + secrets.token_urlsafe(24) + "." + secrets.token_urlsafe(32),
            secrets.token_hex(20),
        ]
    )


def signature(account: LocalAccount, message: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=message)).signature.hex()


def assert_limited(response: httpx.Response, code: str = "rate_limited", most: int = 60) -> None:
    assert response.status_code == (503 if code == "unavailable" else 429), response.text
    assert response.json()["error"]["code"] == code
    assert 0 < int(response.headers["Retry-After"]) <= most


def test_junk_bearers_from_one_address_run_out(node: NodeProcess) -> None:
    client = Api(node, source="127.0.0.11")
    answers = [client.as_(junk()).get("/me") for _ in range(FAILURES + 1)]
    assert [a.status_code for a in answers[:FAILURES]] == [401] * FAILURES
    assert_limited(answers[FAILURES])
    # Now no credential from that address is even looked up, a real one included...
    admin = admin_key(node)
    assert_limited(client.as_(admin).get("/me"))
    assert_limited(client.http.get("/api/v1/me", headers={"X-API-Key": junk()}))
    # ...while it may still read what is public, and other addresses are not affected.
    assert client.get("/status").status_code == 200
    assert Api(node, admin, source="127.0.0.12").get("/me").status_code == 200


def test_failed_sign_ins_are_throttled(node: NodeProcess) -> None:
    wallet, stranger = Account.create(), Account.create()
    client = Api(node, source="127.0.0.13")
    for _ in range(FAILURES):
        message = client.post("/auth/challenge", {"address": wallet.address}).json()["message"]
        wrong = client.post(
            "/auth/token", {"message": message, "signature": signature(stranger, message)}
        )
        assert wrong.status_code == 401, wrong.text
    message = client.post("/auth/challenge", {"address": wallet.address}).json()["message"]
    right = client.post(
        "/auth/token", {"message": message, "signature": signature(wallet, message)}
    )
    assert_limited(right)  # refused before the signature is even checked
    assert sign_in(Api(node, source="127.0.0.14"), wallet)["role"] == "customer"


def test_one_address_budget_covers_all_its_credentials(node: NodeProcess) -> None:
    admin = Api(node, admin_key(node), source="127.0.0.15")
    keys = [admin.new_key("auditor") for _ in range(3)]
    client = Api(node, source="127.0.0.16")
    callers = [client, *(client.as_(key) for key in keys)]
    answers = [callers[i % len(callers)].get("/status").status_code for i in range(ADDRESS_LIMIT)]
    assert answers == [200] * ADDRESS_LIMIT
    # No caller is near its own budget (50/second), but together they used the address's.
    assert_limited(client.as_(keys[0]).get("/me"))
    assert_limited(client.as_(admin.new_key("auditor")).get("/me"))
    assert_limited(client.get("/status"))
    assert admin.as_(keys[0]).get("/me").status_code == 200  # the same key from elsewhere


def test_a_challenge_flood_evicts_nobody(node_factory: Callable[..., NodeProcess]) -> None:
    """5 open challenges per address, 8 on the node: the flood is refused, not the others."""
    small = node_factory(extra_args=("--api-max-challenges", "8"))
    user, attacker = Account.create(), Account.create()
    mine = Api(small, source="127.0.0.21")
    message = mine.post("/auth/challenge", {"address": user.address}).json()["message"]
    assert message.startswith(f"127.0.0.1:{small.rpc_port} wants you to sign in")  # the default

    flood = Api(small, source="127.0.0.22")
    answers = [flood.post("/auth/challenge", {"address": attacker.address}) for _ in range(20)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    for refused in answers[5:]:
        assert_limited(refused, most=300)  # until its oldest challenge expires
    others = Api(small, source="127.0.0.23")
    for _ in range(2):
        assert others.post("/auth/challenge", {"address": attacker.address}).status_code == 200
    # 8 open: a newcomer is told the node is busy rather than handed someone else's slot.
    newcomer = Api(small, source="127.0.0.24")
    assert_limited(newcomer.post("/auth/challenge", {"address": user.address}), "unavailable", 300)

    token = mine.post("/auth/token", {"message": message, "signature": signature(user, message)})
    assert token.status_code == 200, token.text
    assert mine.as_(token.json()["token"]).ok("/me")["addresses"] == [user.address]
    assert sign_in(newcomer, user)["address"] == user.address  # the answer made room


def test_forwarded_for_is_ignored_without_trusted_proxies(
    node_factory: Callable[..., NodeProcess],
) -> None:
    """Even from loopback, where uvicorn would believe X-Forwarded-For by default."""
    plain = node_factory()
    client = Api(plain, source="127.0.0.1")
    answers = [
        client.http.get(
            "/api/v1/me",
            headers={"Authorization": f"Bearer {junk()}", "X-Forwarded-For": f"198.51.100.{i}"},
        ).status_code
        for i in range(FAILURES + 1)
    ]
    assert answers == [401] * FAILURES + [429]


def test_forwarded_for_counts_only_from_trusted_proxies(
    node_factory: Callable[..., NodeProcess],
) -> None:
    proxied = node_factory(extra_args=("--api-trusted-proxies", "127.0.0.1,10.0.0.0/8"))

    def failures(source: str, forwarded_for: str) -> list[int]:
        client = Api(proxied, source=source)
        return [
            client.http.get(
                "/api/v1/me",
                headers={"Authorization": f"Bearer {junk()}", "X-Forwarded-For": forwarded_for},
            ).status_code
            for _ in range(FAILURES + 1)
        ]

    # Through the proxy, each client behind it is counted on its own...
    assert failures("127.0.0.1", "203.0.113.7") == [401] * FAILURES + [429]
    assert failures("127.0.0.1", "203.0.113.8") == [401] * FAILURES + [429]
    # ...by the last hop no trusted proxy added, whatever the client wrote before it.
    forged = Api(proxied, junk(), source="127.0.0.1").http.get(
        "/api/v1/me", headers={"X-Forwarded-For": "192.0.2.1, 203.0.113.7, 10.1.2.3"}
    )
    assert_limited(forged)
    # A client that is not a trusted proxy is counted as itself, whatever it forwards.
    assert failures("127.0.0.31", "203.0.113.9") == [401] * FAILURES + [429]
    assert failures("127.0.0.31", "203.0.113.10") == [429] * (FAILURES + 1)


def test_sign_in_domain_is_configured_not_taken_from_the_host_header(
    node: NodeProcess,
) -> None:
    wallet = Account.create()
    client = Api(node, source="127.0.0.41")
    for host in ("localhost:1", "10.6.6.6", f"127.0.0.1:{node.rpc_port}"):
        answer = client.http.post(
            "/api/v1/auth/challenge", json={"address": wallet.address}, headers={"Host": host}
        )
        assert answer.status_code == 200, answer.text
        lines = answer.json()["message"].split("\n")
        assert lines[0] == f"{SIWE_DOMAIN} wants you to sign in with your Ethereum account:"
        assert f"URI: https://{SIWE_DOMAIN}/api/v1" in lines
    message = answer.json()["message"]
    token = client.post(
        "/auth/token", {"message": message, "signature": signature(wallet, message)}
    )
    assert token.status_code == 200, token.text

    # A message naming another domain is refused, though the wallet did sign it.
    message = client.post("/auth/challenge", {"address": wallet.address}).json()["message"]
    elsewhere = message.replace(SIWE_DOMAIN, f"127.0.0.1:{node.rpc_port}", 1)
    refused = client.post(
        "/auth/token", {"message": elsewhere, "signature": signature(wallet, elsewhere)}
    )
    assert refused.status_code == 401
    assert "not for this node's sign-in domain, bank.example" in refused.json()["error"]["message"]


def _common_headers(response: httpx.Response) -> str:
    """The headers every response carries; returns its Content-Security-Policy."""
    assert response.headers["X-Content-Type-Options"] == "nosniff", response.url
    assert response.headers["X-Frame-Options"] == "DENY", response.url
    assert response.headers["Referrer-Policy"] == "no-referrer", response.url
    return response.headers["Content-Security-Policy"]


def test_security_headers_on_every_kind_of_response(node: NodeProcess) -> None:
    http = httpx.Client(
        base_url=node.url, timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.51")
    )
    data = [
        http.get("/api/v1/status"),
        http.get("/api/v1/me"),  # 401
        http.get("/api/v1/no-such-route"),  # 404
        http.get("/openapi.json"),
        http.get("/metrics"),
        http.post("/", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}),
        http.get("/api/v1/status", headers={"Host": "evil.example"}),  # the browser guard's 403
    ]
    assert [r.status_code for r in data] == [200, 401, 404, 200, 200, 200, 403]
    for response in data:
        policy = _common_headers(response)
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    for path in ("/explorer/", "/explorer/js/app.js", "/explorer/style.css"):
        response = http.get(path)
        assert response.status_code == 200
        policy = _common_headers(response)
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    for path in ("/docs", "/redoc"):
        response = http.get(path)
        assert response.status_code == 200
        assert _common_headers(response) == DOCS_POLICY  # the docs pages keep their own


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_explorer_runs_under_its_policy(node: NodeProcess) -> None:
    """The page signs in and renders with no policy violation, and the policy is in force:
    an inline script added to it does not run."""
    violations: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page()
            page.on(
                "console",
                # playwright types listeners as returning None (it ignores what they return)
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            page.goto(f"{node.url}/explorer/#/signin")
            page.get_by_label("API key", exact=True).fill(admin_key(node))
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_test_id("head")).to_contain_text("1337")
            page.goto(f"{node.url}/explorer/#/blocks/0")
            expect(page.locator("main")).to_have_attribute("data-rendered", "#/blocks/0")
            assert violations == []
            with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
                page.evaluate(
                    """() => {
                        const script = document.createElement("script");
                        script.textContent = "window.inlineRan = true";
                        document.head.appendChild(script);
                    }"""
                )
            assert page.evaluate("window.inlineRan") is None
        finally:
            browser.close()
