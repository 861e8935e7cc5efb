"""The REST API's role matrix on a real node: every endpoint against every role (admin,
auditor, enterprise, customer), without a credential, with a garbage one and with a revoked
key; plus the error shape, body limits, OpenAPI, /metrics and the JSON-RPC routes beside it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import NodeProcess
from tests.test_api_support import (
    Api,
    Sender,
    admin_key,
    approve,
    batch_pay,
    mint,
    open_escrow,
    sign_in,
    start_node,
    token_transfer,
)

ROLES = ("admin", "auditor", "enterprise", "customer")
REFUSED = ("none", "garbage", "revoked")


@dataclass
class World:
    node: NodeProcess
    apis: dict[str, Api]
    dev: list
    sender: Sender
    customer_tx: str
    others_tx: str
    escrow_id: int


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, dev_accounts: list) -> Iterator[World]:
    node = start_node(tmp_path_factory.mktemp("roles"))
    try:
        admin = Api(node, admin_key(node))
        dev = dev_accounts
        apis = {
            "admin": admin,
            "auditor": admin.as_(admin.new_key("auditor")),
            "enterprise": admin.as_(admin.new_key("enterprise", [dev[3].address])),
            "customer": admin.as_(admin.new_key("customer", [dev[6].address])),
            "none": admin.as_(None),
            "garbage": admin.as_("tk_not-a-real-key"),
        }
        revoked = admin.new_key("auditor", label="to revoke")
        key_id = next(
            k["id"] for k in admin.ok("/admin/api-keys")["items"] if k["label"] == "to revoke"
        )
        assert admin.delete(f"/admin/api-keys/{key_id}").status_code == 204
        apis["revoked"] = admin.as_(revoked)

        sender = Sender(node)
        issuer, enterprise, payee, customer = dev[1], dev[3], dev[4], dev[6]
        sender.run(
            [
                mint(sender, issuer, enterprise.address, 1_000_000, 1),
                mint(sender, issuer, customer.address, 100_000, 2),
            ]
        )
        receipts = sender.run(
            [
                approve(sender, enterprise, "0x" + "00" * 18 + "a003", 500_000),
                approve(sender, enterprise, "0x" + "00" * 18 + "a004", 500_000),
                token_transfer(sender, enterprise, customer.address, 5_000),
                sender.sign(dev[0], dev[9].address, 1),
            ]
        )
        customer_tx, others_tx = receipts[2]["transactionHash"], receipts[3]["transactionHash"]
        sender.run(
            [
                open_escrow(
                    sender, enterprise, payee.address, dev[0].address, [100, 200], 2**40, 7
                ),
                batch_pay(sender, enterprise, [payee.address, customer.address], [10, 20], 8),
            ]
        )
        yield World(node, apis, dev, sender, customer_tx, others_tx, 1)
    finally:
        node.stop()


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str | Callable[[World], str]
    allowed: tuple[str, ...]
    body: Callable[[World, str], Any] | None = None
    ok: int = 200
    params: dict[str, Any] | None = None


def _addr(i: int) -> Callable[[World], str]:
    return lambda w: w.dev[i].address


def _relay_body(world: World, role: str) -> dict[str, str]:
    """A transaction signed by an address of the role's own (dev 0 for admin and auditor)."""
    signer = {"enterprise": world.dev[3], "customer": world.dev[6]}.get(role, world.dev[0])
    raw = world.sender.sign(signer, world.dev[8].address, 1)
    return {"raw": "0x" + raw.hex()}


ALL = ROLES
CHAIN = ("admin", "auditor", "enterprise")
EVERYTHING = ("admin", "auditor")
CASES = [
    Case("me", "GET", "/me", ALL),
    Case("status", "GET", "/status", (*ALL, *REFUSED)),
    Case("list keys", "GET", "/admin/api-keys", ("admin",)),
    Case(
        "create key",
        "POST",
        "/admin/api-keys",
        ("admin",),
        body=lambda w, r: {"role": "auditor", "label": "matrix", "addresses": []},
        ok=201,
    ),
    Case("revoke key", "DELETE", "/admin/api-keys/{key}", ("admin",), ok=204),
    Case("blocks", "GET", "/blocks", CHAIN),
    Case("block", "GET", "/blocks/1", CHAIN),
    Case("block export", "GET", "/blocks/export", CHAIN, params={"format": "json"}),
    Case("validators", "GET", "/validators", CHAIN),
    Case("own tx", "GET", lambda w: f"/transactions/{w.customer_tx}", ALL),
    Case("others' tx", "GET", lambda w: f"/transactions/{w.others_tx}", CHAIN),
    Case("own tx calls", "GET", lambda w: f"/transactions/{w.customer_tx}/calls", ALL),
    Case("others' tx calls", "GET", lambda w: f"/transactions/{w.others_tx}/calls", CHAIN),
    Case("relay", "POST", "/transactions", ("admin", "enterprise", "customer"), _relay_body, 202),
    Case(
        "customer account",
        "GET",
        lambda w: f"/accounts/{w.dev[6].address}",
        (*EVERYTHING, "customer"),
    ),
    Case("enterprise account", "GET", lambda w: f"/accounts/{w.dev[3].address}", CHAIN),
    Case("other account", "GET", lambda w: f"/accounts/{w.dev[9].address}", EVERYTHING),
    *[
        Case(
            f"customer {part}",
            "GET",
            # mypy cannot infer the type of a lambda with a default argument
            lambda w, part=part: f"/accounts/{w.dev[6].address}/{part}",  # type: ignore[misc]
            (*EVERYTHING, "customer"),
        )
        for part in ("transactions", "transfers", "fees", "points", "spending", "export")
    ],
    *[
        Case(
            f"enterprise {part}",
            "GET",
            # mypy cannot infer the type of a lambda with a default argument
            lambda w, part=part: f"/accounts/{w.dev[3].address}/{part}",  # type: ignore[misc]
            CHAIN,
        )
        for part in ("transactions", "transfers", "fees", "points", "spending", "export")
    ],
    Case("settlements", "GET", "/settlements", ALL),
    Case("others' settlements", "GET", "/settlements", EVERYTHING, params={"party": "dev9"}),
    Case(
        "own settlements",
        "GET",
        "/settlements",
        (*EVERYTHING, "enterprise"),
        params={"party": "dev3"},
    ),
    Case("escrow", "GET", "/settlements/escrow/1", CHAIN),
    Case("batch", "GET", "/settlements/batch/1", ALL),
    Case(
        "customer proof", "GET", lambda w: f"/proofs/{w.dev[6].address}", (*EVERYTHING, "customer")
    ),
    Case("other proof", "GET", lambda w: f"/proofs/{w.dev[9].address}", EVERYTHING),
    Case("merchants", "GET", "/merchants", ALL),
    Case(
        "put merchant",
        "PUT",
        lambda w: f"/merchants/{w.dev[9].address}",
        ("admin",),
        body=lambda w, r: {"name": "Shop", "category": "groceries"},
    ),
    Case(
        "delete merchant", "DELETE", lambda w: f"/merchants/{w.dev[8].address}", ("admin",), ok=204
    ),
    Case(
        "fee quote",
        "GET",
        "/fees/quote",
        ALL,
        params={"from": "dev6", "to": "dev7", "amount": 1000, "kind": "external"},
    ),
    Case("payment request", "GET", "/payment-requests", ALL, params={"to": "dev6", "amount": 5}),
]


def _resolve(world: World, case: Case, role: str) -> tuple[str, dict[str, Any]]:
    path = case.path(world) if callable(case.path) else case.path
    if "{key}" in path:
        fresh = world.apis["admin"].post(
            "/admin/api-keys", {"role": "auditor", "label": "doomed", "addresses": []}
        )
        path = path.replace("{key}", fresh.json()["id"])
    if case.name == "delete merchant":
        world.apis["admin"].put(path, {"name": "Doomed", "category": "misc"})
    params = {}
    for key, value in (case.params or {}).items():
        if isinstance(value, str) and value.startswith("dev"):
            value = world.dev[int(value[3:])].address
        params[key] = value
    return path, params


@pytest.mark.parametrize("role", [*ROLES, *REFUSED])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_role_matrix(world: World, case: Case, role: str) -> None:
    api = world.apis[role]
    path, params = _resolve(world, case, role)
    body = case.body(world, role) if case.body else None
    response = api.http.request(
        case.method, "/api/v1" + path, params=params, json=body if body is not None else None
    )
    if role in case.allowed:
        assert response.status_code == case.ok, (role, case.name, response.text)
        return
    expected = 401 if role in REFUSED else 403
    assert response.status_code == expected, (role, case.name, response.text)
    error = response.json()["error"]
    assert error["code"] == ("unauthenticated" if expected == 401 else "forbidden")
    assert error["message"]


def test_signed_in_wallets_get_their_on_chain_roles(world: World) -> None:
    admin = world.apis["admin"]
    expected = {0: "admin", 1: "admin", 2: "admin", 3: "enterprise", 5: "auditor", 6: "customer"}
    for index, role in expected.items():
        answer = sign_in(admin.as_(None), world.dev[index])
        assert answer["role"] == role
        assert answer["address"] == world.dev[index].address
        me = admin.as_(answer["token"]).ok("/me")
        assert me["role"] == role and me["addresses"] == [world.dev[index].address]
    enterprise = admin.as_(sign_in(admin.as_(None), world.dev[3])["token"])
    assert enterprise.get(f"/accounts/{world.dev[3].address}").status_code == 200
    assert enterprise.get(f"/accounts/{world.dev[6].address}").status_code == 403
    auditor = admin.as_(sign_in(admin.as_(None), world.dev[5])["token"])
    assert auditor.post("/transactions", _relay_body(world, "auditor")).status_code == 403


def test_restricted_roles_see_only_their_settlements(world: World) -> None:
    dev = world.dev
    customer = world.apis["customer"].ok("/settlements")["items"]
    assert [(s["kind"], s["id"]) for s in customer] == [("batch", 1)]
    enterprise = world.apis["enterprise"].ok("/settlements")["items"]
    assert {(s["kind"], s["id"]) for s in enterprise} == {("batch", 1), ("escrow", 1)}
    escrow = world.apis["auditor"].ok("/settlements/escrow/1")
    assert escrow["parties"] == [dev[3].address, dev[4].address, dev[0].address]
    assert escrow["state"] == "open" and escrow["total"] == "300"
    assert escrow["events"][0]["name"] == "EscrowOpened"
    batch = world.apis["auditor"].ok("/settlements/batch/1")
    assert batch["state"] == "paid" and batch["total"] == "30"
    assert batch["parties"] == [dev[3].address, dev[4].address, dev[6].address]
    only_batches = world.apis["auditor"].ok("/settlements", kind="batch")["items"]
    assert [s["kind"] for s in only_batches] == ["batch"]
    assert world.apis["auditor"].ok("/settlements", state="closed")["items"] == []


def test_errors_are_structured(world: World) -> None:
    api = world.apis["auditor"]
    cases = [
        (api.get("/no-such-thing"), 404, "not_found"),
        (api.get("/accounts/0x1234"), 400, "invalid_request"),
        (api.get("/blocks", limit=0), 422, "invalid_request"),
        (api.get("/blocks", limit=501), 422, "invalid_request"),
        (api.get("/blocks", cursor="garbage!"), 400, "invalid_request"),
        (api.get("/blocks/99999999"), 404, "not_found"),
        (api.get("/transactions/0x" + "ab" * 32), 404, "not_found"),
        (api.get("/settlements/escrow/999"), 404, "not_found"),
        (api.http.patch("/api/v1/status"), 405, "method_not_allowed"),
        (world.apis["admin"].delete("/admin/api-keys/nope"), 404, "not_found"),
        (
            world.apis["admin"].post("/admin/api-keys", {"role": "customer", "label": "x"}),
            400,
            "invalid_request",
        ),
        (
            world.apis["admin"].post("/admin/api-keys", {"role": "wizard", "label": "x"}),
            422,
            "invalid_request",
        ),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]


def test_oversized_bodies_are_refused_and_change_nothing(world: World) -> None:
    admin = world.apis["admin"]
    before = len(admin.ok("/admin/api-keys")["items"])
    huge = {"role": "auditor", "label": "x" * (600 * 1024), "addresses": []}
    response = admin.post("/admin/api-keys", huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        yield b'{"role": "auditor", "label": "'
        for _ in range(700):
            yield b"y" * 1024
        yield b'", "addresses": []}'

    streamed = admin.http.post(
        "/api/v1/admin/api-keys", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert len(admin.ok("/admin/api-keys")["items"]) == before
    # JSON-RPC keeps its own (larger) limit on the same listener.
    rpc = httpx.post(
        world.node.url,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_chainId",
            "params": [],
            "pad": "z" * (600 * 1024),
        },
    )
    assert rpc.status_code == 200 and rpc.json()["result"] == "0x539"


def test_openapi_docs_metrics_and_json_rpc_share_the_listener(world: World) -> None:
    http = world.apis["none"].http
    spec = http.get("/openapi.json").json()
    assert spec["info"]["title"] == "Tally REST API"
    assert "/api/v1/accounts/{address}/transactions" in spec["paths"]
    assert http.get("/docs").status_code == 200
    assert world.node.rpc("eth_blockNumber") is not None
    metrics = http.get("/metrics").text
    assert 'tally_api_requests_total{method="GET",route="/api/v1/me"' in metrics
    assert "tally_api_request_seconds_bucket" in metrics
    assert "tally_chain_height" in metrics


def test_bootstrap_admin_key_file_is_private(world: World) -> None:
    path = world.node.datadir / "api-admin.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().startswith("tk_")
