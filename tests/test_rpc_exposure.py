"""Who may call what, from where (issue 12 point 1), against real node processes over HTTP/WS.

The public port serves no admin method (votes, admin_); the loopback admin listener serves
every method to a caller with the datadir's token and to no one else; a web page cannot reach
the public port through a foreign Host, a foreign Origin or a non-JSON body, while the REST
API, the explorer and ordinary clients (no Origin, JSON bodies) are unaffected; and a
validator vote that would halt the network is refused with its reason unless forced.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from node import localnet
from tests.conftest import (
    REPO,
    NodeProcess,
    RpcFailure,
    admin_token,
    free_port,
    rpc_call,
)

STRANGER = "0x" + "33" * 20
WALLET_ORIGIN = "http://wallet.example:3000"
ADMIN_CALLS: dict[str, list[Any]] = {
    "qbft_proposeValidatorVote": [STRANGER, True],
    "qbft_discardValidatorVote": [STRANGER],
    "qbft_getPendingVotes": [],
    "admin_peers": [],
    "admin_nodeInfo": [],
}
PUBLIC_NAMESPACES = {"debug", "eth", "net", "qbft", "rpc", "tally", "trace", "web3"}


def body(method: str, params: list[Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A dev node whose public port lets one foreign web origin in."""
    started = NodeProcess(
        tmp_path_factory.mktemp("exposure") / "node",
        free_port(),
        free_port(),
        admin_port=free_port(),
        extra_args=("--cors-domains", WALLET_ORIGIN),
    )
    started.start()
    yield started
    started.stop()


def post(url: str, payload: Any, **headers: str) -> httpx.Response:
    headers = {"content-type": "application/json", **headers}
    return httpx.post(url, content=json.dumps(payload), headers=headers, timeout=30)


# --- methods per listener ---------------------------------------------------------------------


def test_admin_methods_are_not_served_on_the_public_port(node: NodeProcess) -> None:
    for method, params in ADMIN_CALLS.items():
        with pytest.raises(RpcFailure) as refused:
            node.rpc(method, params)
        assert refused.value.code == -32601
        assert "admin listener" in refused.value.message, method
    with connect(node.ws_url, open_timeout=10) as ws:
        for method, params in ADMIN_CALLS.items():
            ws.send(json.dumps(body(method, params)))
            answer = json.loads(ws.recv(timeout=10))
            assert answer["error"]["code"] == -32601, method
    assert node.admin("qbft_getPendingVotes") == {}  # nothing got through
    assert node.rpc("rpc_modules") == dict.fromkeys(sorted(PUBLIC_NAMESPACES), "1.0")
    assert set(node.admin("rpc_modules")) == PUBLIC_NAMESPACES | {"admin"}


def test_the_admin_listener_serves_every_method_to_the_token_holder(node: NodeProcess) -> None:
    assert node.admin("eth_chainId") == node.rpc("eth_chainId")
    info = node.admin("admin_nodeInfo")
    assert isinstance(info, dict) and "protocols" in info
    headers = {"Authorization": f"Bearer {node.admin_token}"}
    with connect(f"ws://127.0.0.1:{node.admin_port}", additional_headers=headers) as ws:
        ws.send(json.dumps(body("admin_peers")))
        assert json.loads(ws.recv(timeout=10))["result"] == []


def test_the_admin_listener_refuses_everyone_else(node: NodeProcess) -> None:
    token = node.admin_token
    wrong = ("0" if token[0] != "0" else "1") + token[1:]
    for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": f"Basic {token}"}):
        response = post(node.admin_url, body("admin_nodeInfo"), **headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "result" not in response.json()
    from_a_page = post(
        node.admin_url, body("admin_nodeInfo"), Authorization=f"Bearer {token}", Origin=node.url
    )
    assert from_a_page.status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{node.admin_port}", open_timeout=10)
    assert refused.value.response.status_code == 403
    as_text = post(
        node.admin_url,
        body("admin_nodeInfo"),
        Authorization=f"Bearer {token}",
        **{"content-type": "text/plain"},
    )
    assert as_text.status_code == 415


def test_the_admin_token_is_written_once_for_the_owner_only(node: NodeProcess) -> None:
    path = node.datadir / "admin-rpc.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(node.admin_token) == 64 and int(node.admin_token, 16) >= 0


def test_rpc_api_chooses_the_public_namespaces_and_restarts_keep_the_token(
    node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    narrow = node_factory(tmp_path / "narrow", extra_args=("--rpc-api", "eth,net"))
    assert narrow.rpc("rpc_modules") == {"eth": "1.0", "net": "1.0", "rpc": "1.0"}
    with pytest.raises(RpcFailure) as refused:
        narrow.rpc("web3_clientVersion")
    assert refused.value.code == -32601 and "--rpc-api" in refused.value.message
    assert str(narrow.admin("web3_clientVersion")).startswith("Tally")
    token = narrow.admin_token
    narrow.stop()
    again = node_factory(tmp_path / "narrow")
    assert again.admin_token == token
    assert again.admin("web3_clientVersion") == again.rpc("web3_clientVersion")


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--rpc-api", "eth,admin", "admin listener"),
        ("--rpc-api", "eth,txpool", "unknown namespace txpool"),
        ("--admin-host", "0.0.0.0", "loopback"),
        ("--cors-domains", "wallet.example", "not an origin"),
    ],
)
def test_unusable_listener_settings_are_refused_before_the_datadir_is_made(
    tmp_path: Path, option: str, value: str, says: str
) -> None:
    datadir = tmp_path / "never"
    ports = ["--rpc-port", str(free_port()), "--ws-port", str(free_port())]
    ports += ["--admin-port", str(free_port())]
    command = [sys.executable, "-m", "node.cli", "dev", "--datadir", str(datadir), *ports]
    result = subprocess.run(
        [*command, option, value], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert not datadir.exists()


# --- browser rules on the public port ---------------------------------------------------------


def test_json_rpc_must_be_posted_as_json(node: NodeProcess) -> None:
    payload = body("eth_chainId")
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        response = post(node.url, payload, **{"content-type": content_type})
        assert response.status_code == 415, content_type
        assert response.json()["error"]["code"] == -32600
    for content_type in ("application/json; charset=utf-8", "application/json-rpc"):
        response = post(node.url, payload, **{"content-type": content_type})
        assert response.status_code == 200 and response.json()["result"] == "0x539"


def test_a_host_name_not_allowed_is_refused_everywhere(node: NodeProcess) -> None:
    evil = {"Host": f"rebind.attacker.example:{node.rpc_port}"}
    assert post(node.url, body("eth_chainId"), **evil).status_code == 403
    for path in ("/api/v1/status", "/explorer/", "/metrics"):
        assert httpx.get(node.url + path, headers=evil, timeout=30).status_code == 403, path
    for host in (f"localhost:{node.rpc_port}", "127.0.0.1", f"[::1]:{node.rpc_port}"):
        response = post(node.url, body("eth_chainId"), Host=host)
        assert response.status_code == 200, host


def test_a_foreign_origin_is_refused_unless_listed(node: NodeProcess) -> None:
    evil = "http://attacker.example"
    refused = post(node.url, body("eth_blockNumber"), Origin=evil)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_origin"
    assert "access-control-allow-origin" not in refused.headers
    rest = httpx.get(node.url + "/api/v1/status", headers={"Origin": evil}, timeout=30)
    assert rest.status_code == 403
    preflight = {"Origin": evil, "Access-Control-Request-Method": "POST"}
    assert httpx.options(node.url, headers=preflight, timeout=30).status_code == 403
    with pytest.raises(InvalidStatus) as handshake:
        connect(node.ws_url, origin=Origin(evil), open_timeout=10)
    assert handshake.value.response.status_code == 403

    listed = post(node.url, body("eth_blockNumber"), Origin=WALLET_ORIGIN)
    assert listed.status_code == 200 and "result" in listed.json()
    assert listed.headers["access-control-allow-origin"] == WALLET_ORIGIN
    assert "Origin" in listed.headers["vary"]
    asked = {
        "Origin": WALLET_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    answer = httpx.options(node.url, headers=asked, timeout=30)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == WALLET_ORIGIN
    assert "POST" in answer.headers["access-control-allow-methods"]
    with connect(node.ws_url, origin=Origin(WALLET_ORIGIN), open_timeout=10) as ws:
        ws.send(json.dumps(body("eth_chainId")))
        assert json.loads(ws.recv(timeout=10))["result"] == "0x539"


def test_the_nodes_own_pages_are_not_foreign(node: NodeProcess) -> None:
    """The explorer (served on the HTTP port) fetches the REST API and may open the WS port."""
    own = f"http://127.0.0.1:{node.rpc_port}"
    response = post(node.url, body("eth_chainId"), Origin=own)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers  # same origin: no CORS needed
    status = httpx.get(node.url + "/api/v1/status", headers={"Origin": own}, timeout=30)
    assert status.status_code == 200
    with connect(node.ws_url, origin=Origin(own), open_timeout=10) as ws:
        ws.send(json.dumps(body("eth_chainId")))
        assert json.loads(ws.recv(timeout=10))["result"] == "0x539"
    other_port = post(node.url, body("eth_chainId"), Origin=f"http://127.0.0.1:{free_port()}")
    assert other_port.status_code == 403


def test_clients_that_are_not_browsers_see_no_change(node: NodeProcess) -> None:
    get = httpx.get(node.url + "/", timeout=30)
    assert get.status_code == 405 and get.json()["error"]["code"] == -32600
    assert httpx.get(node.url + "/explorer/", timeout=30).status_code == 200
    assert httpx.get(node.url + "/api/v1/status", timeout=30).json()["chain_id"] == 1337
    assert httpx.get(node.url + "/metrics", timeout=30).status_code == 200
    with connect(node.ws_url, open_timeout=10) as ws:
        ws.send(json.dumps(body("eth_chainId")))
        assert json.loads(ws.recv(timeout=10))["result"] == "0x539"


# --- vote safety ------------------------------------------------------------------------------


def test_a_vote_that_would_halt_a_lone_validator_is_refused_unless_forced(
    node: NodeProcess,
) -> None:
    validator = _validator(node)
    for params, says in (
        ([STRANGER, True], "1 live validator(s) of 2, fewer than the quorum of 2"),
        ([validator, False], "would leave no validator"),
    ):
        with pytest.raises(RpcFailure) as refused:
            node.admin("qbft_proposeValidatorVote", params)
        assert refused.value.code == -32000 and says in refused.value.message
        assert "force" in refused.value.message
    with pytest.raises(RpcFailure) as malformed:
        node.admin("qbft_proposeValidatorVote", [STRANGER, True, "yes"])
    assert malformed.value.code == -32602
    assert node.admin("qbft_getPendingVotes") == {}
    assert node.admin("qbft_proposeValidatorVote", [STRANGER, True, True]) is True
    assert node.admin("qbft_getPendingVotes") == {STRANGER: True}
    assert node.admin("qbft_discardValidatorVote", [STRANGER]) is True
    assert node.admin("qbft_getPendingVotes") == {}


def _validator(node: NodeProcess) -> str:
    validators = node.rpc("qbft_getValidatorsByBlockNumber", ["latest"])
    assert isinstance(validators, list) and len(validators) == 1
    return validators[0]


def test_votes_on_a_network_are_checked_against_its_nodes_and_who_is_up(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    validator, member = localnet.up(directory, validators=1, members=1)
    token = admin_token(directory / validator.name)

    def propose(*params: object) -> object:
        return rpc_call(validator.admin_url, "qbft_proposeValidatorVote", list(params), token)

    try:
        _wait(lambda: localnet.rpc(validator, "net_peerCount") == "0x1", "the member's link")
        with pytest.raises(RpcFailure) as stranger:
            propose(STRANGER, True)
        assert stranger.value.code == -32000 and "not an allowed node" in stranger.value.message
        assert propose(member.address, True) is True  # 2 live of 2 make the quorum of 2
        rpc_call(validator.admin_url, "qbft_discardValidatorVote", [member.address], token)
        localnet.stop_node(member)
        _wait(lambda: localnet.rpc(validator, "net_peerCount") == "0x0", "the link to drop")
        with pytest.raises(RpcFailure) as down:
            propose(member.address, True)
        assert "1 live validator(s) of 2" in down.value.message
        assert rpc_call(validator.admin_url, "qbft_getPendingVotes", [], token) == {}
    finally:
        localnet.down(directory)


def _wait(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
