"""JSON-RPC 2.0 protocol behaviour of a real node, as raw HTTP bodies and WebSocket frames.

Covers the envelope (parse errors, invalid requests, unknown methods, invalid params, batches,
notifications, ids), the transport (GET, oversize bodies), block lookups that miss, reverts
with their ABI data (code 3), state overrides, and the static chain facts clients read first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import eth_abi
import httpx
import pytest
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from websockets.sync.client import ClientConnection, connect

from contracts import load_artifact
from tests.conftest import NodeProcess

MAX_BODY = 16 * 1024 * 1024
ZERO = "0x" + "00" * 20
STRANGER = "0x" + "33" * 20
ERROR_SELECTOR = "0x08c379a0"


def selector(signature: str) -> str:
    return "0x" + keccak(signature.encode()).hex()[:8]


def request(method: str, params: list | None = None, request_id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or []}


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(shared_node: NodeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_node.url, timeout=30) as client:
        yield client


def post(http: httpx.Client, payload: Any) -> httpx.Response:
    """POST `payload` (JSON-encoded unless already bytes) and return the raw response."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return http.post("/", content=body, headers={"content-type": "application/json"})


def call(http: httpx.Client, method: str, params: list | None = None) -> dict[str, Any]:
    """The whole response object of one request (result or error)."""
    response = post(http, request(method, params))
    assert response.status_code == 200
    answer = response.json()
    assert answer["jsonrpc"] == "2.0"
    assert answer["id"] == 1
    return answer


def result(http: httpx.Client, method: str, params: list | None = None) -> Any:
    answer = call(http, method, params)
    assert "error" not in answer, answer
    return answer["result"]


def error(http: httpx.Client, method: str, params: list | None = None) -> dict[str, Any]:
    answer = call(http, method, params)
    assert "result" not in answer, answer
    return answer["error"]


@pytest.fixture(scope="module")
def probe(http: httpx.Client, dev_accounts: list) -> str:
    """The Probe contract, deployed by a real signed transaction; returns its address."""
    deployer: LocalAccount = dev_accounts[0]
    artifact = load_artifact("Probe")
    nonce = int(result(http, "eth_getTransactionCount", [deployer.address, "pending"]), 16)
    signed = deployer.sign_transaction(
        {
            "chainId": 1337,
            "nonce": nonce,
            "gas": 2_000_000,
            "gasPrice": 0,
            "data": artifact["bytecode"],
        }
    )
    tx_hash = result(http, "eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
    deadline = time.monotonic() + 20
    while (receipt := result(http, "eth_getTransactionReceipt", [tx_hash])) is None:
        assert time.monotonic() < deadline, "Probe deployment did not mine"
        time.sleep(0.05)
    assert receipt["status"] == "0x1"
    address = receipt["contractAddress"]
    assert result(http, "eth_getCode", [address, "latest"]) == artifact["deployedBytecode"]
    return address


# --- the envelope -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{bad", b'{"jsonrpc":"2.0","id":1,', b"", b"[1,2"])
def test_malformed_json_is_parse_error_with_null_id(http: httpx.Client, body: bytes) -> None:
    response = post(http, body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["id"] is None
    assert answer["error"]["code"] == -32700


@pytest.mark.parametrize("payload", [1, "x", None, True])
def test_non_object_request_is_invalid(http: httpx.Client, payload: Any) -> None:
    answer = post(http, payload).json()
    assert answer["id"] is None
    assert answer["error"]["code"] == -32600


@pytest.mark.parametrize("version", ["missing", "1.0", 2.0, None])
def test_wrong_jsonrpc_version_is_invalid(http: httpx.Client, version: Any) -> None:
    payload: dict[str, Any] = {"id": 7, "method": "eth_chainId", "params": []}
    if version != "missing":
        payload["jsonrpc"] = version
    answer = post(http, payload).json()
    assert answer["error"]["code"] == -32600
    assert answer["id"] == 7
    assert "result" not in answer


@pytest.mark.parametrize("method", [5, None, ["eth_chainId"], "missing"])
def test_method_must_be_a_string(http: httpx.Client, method: Any) -> None:
    payload: dict[str, Any] = {"jsonrpc": "2.0", "id": 3, "params": []}
    if method != "missing":
        payload["method"] = method
    answer = post(http, payload).json()
    assert answer == {
        "jsonrpc": "2.0",
        "id": 3,
        "error": {"code": -32600, "message": "method must be a string"},
    }


def test_unknown_method(http: httpx.Client) -> None:
    assert error(http, "eth_doesNotExist") == {
        "code": -32601,
        "message": "the method eth_doesNotExist does not exist/is not available",
    }


@pytest.mark.parametrize(
    ("method", "params"),
    [
        pytest.param("eth_getBalance", ["0x12", "latest"], id="short-address"),
        pytest.param("eth_getBalance", ["not an address", "latest"], id="non-hex-address"),
        pytest.param("eth_getBalance", [ZERO, "0xzz"], id="non-hex-quantity"),
        pytest.param("eth_getBalance", [ZERO, "12"], id="unprefixed-quantity"),
        pytest.param("eth_getBalance", [ZERO, -1], id="negative-quantity"),
        pytest.param("eth_getBalance", [ZERO, "0x1" + "0" * 64], id="quantity-over-256-bits"),
        pytest.param("eth_getBalance", [], id="too-few"),
        pytest.param("eth_getBalance", [ZERO, "latest", "extra"], id="too-many"),
        pytest.param("eth_chainId", ["unexpected"], id="params-for-nullary"),
        pytest.param("eth_getBlockByNumber", ["latest", "yes"], id="non-bool-full"),
        pytest.param("eth_getBlockByNumber", ["latest", 1], id="int-as-bool"),
        pytest.param("eth_getBlockByNumber", [{"neither": 1}, False], id="bad-block-object"),
        pytest.param("eth_getTransactionByHash", ["0x1234"], id="short-hash"),
        pytest.param("eth_sendRawTransaction", ["f86c"], id="unprefixed-raw"),
        pytest.param("eth_sendRawTransaction", ["0xabc"], id="odd-length-raw"),
        pytest.param("eth_call", ["not an object", "latest"], id="call-not-object"),
    ],
)
def test_invalid_params(http: httpx.Client, method: str, params: list) -> None:
    assert error(http, method, params)["code"] == -32602


def test_params_must_be_an_array(http: httpx.Client) -> None:
    answer = post(http, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": {}}).json()
    assert answer["error"] == {"code": -32602, "message": "params must be an array"}


@pytest.mark.parametrize("request_id", ["abc", "", 42, 0, 2**53, -5])
def test_ids_are_echoed(http: httpx.Client, request_id: Any) -> None:
    answer = post(http, request("eth_chainId", request_id=request_id)).json()
    assert answer == {"jsonrpc": "2.0", "id": request_id, "result": "0x539"}


def test_object_id_is_invalid(http: httpx.Client) -> None:
    answer = post(http, request("eth_chainId", request_id={"a": 1})).json()
    assert answer["error"]["code"] == -32600
    assert answer["id"] is None


# --- batches and notifications ------------------------------------------------------------------


def test_empty_batch_is_one_invalid_request(http: httpx.Client) -> None:
    answer = post(http, []).json()
    assert isinstance(answer, dict)
    assert answer["id"] is None
    assert answer["error"]["code"] == -32600


def test_mixed_batch_answers_each_item_in_order(http: httpx.Client) -> None:
    batch = [
        request("eth_chainId", request_id=1),
        request("eth_noSuchMethod", request_id="two"),
        {"jsonrpc": "2.0", "method": "eth_chainId", "params": []},  # notification: no answer
        request("eth_getBalance", ["0x12"], request_id=3),
        17,
        {"jsonrpc": "1.0", "id": 4, "method": "eth_chainId"},
        request("net_version", request_id=5),
    ]
    answers = post(http, batch).json()
    assert isinstance(answers, list)
    assert [a["id"] for a in answers] == [1, "two", 3, None, 4, 5]
    assert answers[0]["result"] == "0x539"
    assert answers[1]["error"]["code"] == -32601
    assert answers[2]["error"]["code"] == -32602
    assert answers[3]["error"]["code"] == -32600
    assert answers[4]["error"]["code"] == -32600
    assert answers[5]["result"] == "1337"


def test_batch_of_notifications_gets_no_body(http: httpx.Client) -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "method": "eth_noSuchMethod"},
    ]
    response = post(http, batch)
    assert response.status_code == 204
    assert response.content == b""


@pytest.mark.parametrize("method", ["eth_blockNumber", "eth_noSuchMethod"])
def test_notification_gets_no_response(http: httpx.Client, method: str) -> None:
    response = post(http, {"jsonrpc": "2.0", "method": method, "params": []})
    assert response.status_code == 204
    assert response.content == b""


# --- transport ----------------------------------------------------------------------------------


def test_get_is_method_not_allowed(http: httpx.Client) -> None:
    response = http.get("/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == -32600


def test_oversize_body_is_refused(http: httpx.Client) -> None:
    body = b" " * (MAX_BODY + 1)
    response = http.post("/", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == {"code": -32600, "message": "request body too large"}


def test_oversize_chunked_body_is_refused(http: httpx.Client) -> None:
    """Without a Content-Length the node must still count what it reads."""

    def chunks() -> Iterator[bytes]:
        for _ in range(17):
            yield b" " * (1024 * 1024)

    response = http.post("/", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_body_at_the_limit_is_served(http: httpx.Client) -> None:
    payload = json.dumps(request("eth_chainId")).encode()
    body = payload + b" " * (MAX_BODY - len(payload))
    response = http.post("/", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json()["result"] == "0x539"


# --- blocks that do not exist -------------------------------------------------------------------


def test_state_at_unknown_block_is_header_not_found(http: httpx.Client) -> None:
    future = hex(int(result(http, "eth_blockNumber"), 16) + 1000)
    assert error(http, "eth_getBalance", [ZERO, future]) == {
        "code": -32000,
        "message": "header not found",
    }
    unknown_hash = {"blockHash": "0x" + "ab" * 32}
    assert error(http, "eth_getBalance", [ZERO, unknown_hash])["message"] == "header not found"
    assert error(http, "eth_call", [{"to": ZERO}, future])["message"] == "header not found"


def test_future_block_is_null(http: httpx.Client) -> None:
    future = hex(int(result(http, "eth_blockNumber"), 16) + 1000)
    assert result(http, "eth_getBlockByNumber", [future, False]) is None
    assert result(http, "eth_getBlockByHash", ["0x" + "ab" * 32, False]) is None
    assert result(http, "eth_getTransactionByHash", ["0x" + "ab" * 32]) is None
    assert result(http, "eth_getTransactionReceipt", ["0x" + "ab" * 32]) is None


# --- reverts ------------------------------------------------------------------------------------


def probe_input(signature: str, *args: int) -> str:
    types = signature[signature.index("(") + 1 : -1].split(",") if args else []
    return selector(signature) + eth_abi.encode(types, list(args)).hex()


@pytest.mark.parametrize("method", ["eth_call", "eth_estimateGas"])
def test_revert_with_reason(http: httpx.Client, probe: str, method: str) -> None:
    params: list = [{"to": probe, "data": probe_input("failRequire()")}, "latest"]
    failure = error(http, method, params)
    assert failure["code"] == 3
    assert failure["message"] == "execution reverted: probe: nope"
    data = failure["data"]
    assert data.startswith(ERROR_SELECTOR)
    assert eth_abi.decode(["string"], bytes.fromhex(data[10:])) == ("probe: nope",)


@pytest.mark.parametrize("method", ["eth_call", "eth_estimateGas"])
def test_revert_with_custom_error(http: httpx.Client, probe: str, method: str) -> None:
    params: list = [{"to": probe, "input": probe_input("failCustom(uint256)", 42)}, "latest"]
    failure = error(http, method, params)
    assert failure["code"] == 3
    assert failure["message"] == "execution reverted"
    assert failure["data"] == selector("ProbeError(uint256)") + (42).to_bytes(32, "big").hex()
    assert selector("ProbeError(uint256)") == "0x9ad53d89"


def test_successful_call_and_estimate(http: httpx.Client, probe: str) -> None:
    value_call = {"to": probe, "data": probe_input("value()")}
    assert result(http, "eth_call", [value_call, "latest"]) == "0x" + "00" * 32
    poke = {"from": STRANGER, "to": probe, "data": probe_input("poke(uint256)", 5)}
    gas = int(result(http, "eth_estimateGas", [poke]), 16)
    assert 21_000 < gas < 100_000


# --- state overrides ----------------------------------------------------------------------------


def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def test_state_diff_override(http: httpx.Client, probe: str) -> None:
    value_call = {"to": probe, "data": probe_input("value()")}
    override = {probe: {"stateDiff": {_word(0): _word(7)}}}
    assert result(http, "eth_call", [value_call, "latest", override]) == _word(7)
    assert result(http, "eth_call", [value_call, "latest"]) == _word(0)
    assert result(http, "eth_getStorageAt", [probe, "0x0", "latest"]) == _word(0)


def test_state_override_replaces_all_storage(http: httpx.Client, probe: str) -> None:
    value_call = {"to": probe, "data": probe_input("value()")}
    seeded = {probe: {"stateDiff": {_word(0): _word(9)}}}
    assert result(http, "eth_call", [value_call, "latest", seeded]) == _word(9)
    replaced = {probe: {"state": {_word(1): _word(9)}}}  # slot 0 is wiped, not kept
    assert result(http, "eth_call", [value_call, "latest", replaced]) == _word(0)


def test_balance_override(http: httpx.Client) -> None:
    transfer = {"from": STRANGER, "to": ZERO, "value": "0x10"}
    assert error(http, "eth_call", [transfer, "latest"])["code"] == -32000
    rich = {STRANGER: {"balance": "0x100"}}
    assert result(http, "eth_call", [transfer, "latest", rich]) == "0x"
    assert result(http, "eth_getBalance", [STRANGER, "latest"]) == "0x0"


def test_code_override(http: httpx.Client) -> None:
    target = "0x" + "44" * 20
    returns_42 = "0x602a60005260206000f3"  # PUSH1 42 PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN
    override = {target: {"code": returns_42}}
    assert result(http, "eth_call", [{"to": target}, "latest", override]) == _word(42)
    assert result(http, "eth_call", [{"to": target}, "latest"]) == "0x"
    assert result(http, "eth_getCode", [target, "latest"]) == "0x"


@pytest.mark.parametrize("method", ["eth_call", "eth_estimateGas"])
def test_insufficient_funds_in_call_uses_geth_wording(http: httpx.Client, method: str) -> None:
    failure = error(http, method, [{"from": STRANGER, "to": ZERO, "value": "0x10"}, "latest"])
    assert failure["code"] == -32000
    assert failure["message"].startswith("insufficient funds for gas * price + value"), failure


# --- chain facts --------------------------------------------------------------------------------


def test_safe_and_finalized_are_latest(http: httpx.Client) -> None:
    for _ in range(5):  # the head may move between reads; retry until it held still
        before = result(http, "eth_getBlockByNumber", ["latest", False])
        safe = result(http, "eth_getBlockByNumber", ["safe", False])
        finalized = result(http, "eth_getBlockByNumber", ["finalized", False])
        after = result(http, "eth_getBlockByNumber", ["latest", False])
        if before["hash"] == after["hash"]:
            break
    assert safe["hash"] == finalized["hash"] == before["hash"] == after["hash"]
    assert safe["number"] == before["number"]


def test_static_chain_facts(http: httpx.Client) -> None:
    assert result(http, "web3_clientVersion").startswith("Tally/v")
    assert result(http, "net_version") == "1337"
    assert result(http, "eth_chainId") == "0x539"
    assert result(http, "eth_accounts") == []
    assert result(http, "eth_syncing") is False


# --- the same over WebSocket --------------------------------------------------------------------


@pytest.fixture
def ws(shared_node: NodeProcess) -> Iterator[ClientConnection]:
    with connect(shared_node.ws_url, open_timeout=10, close_timeout=5) as connection:
        yield connection


def exchange(ws: ClientConnection, message: str) -> Any:
    ws.send(message)
    return json.loads(ws.recv(timeout=10))


def test_ws_single_request(ws: ClientConnection) -> None:
    assert exchange(ws, json.dumps(request("eth_chainId", request_id="w1"))) == {
        "jsonrpc": "2.0",
        "id": "w1",
        "result": "0x539",
    }


def test_ws_parse_error(ws: ClientConnection) -> None:
    answer = exchange(ws, "{bad")
    assert answer["id"] is None
    assert answer["error"]["code"] == -32700
    # the connection survives a bad frame
    assert exchange(ws, json.dumps(request("net_version")))["result"] == "1337"


def test_ws_batch(ws: ClientConnection) -> None:
    batch = [
        request("eth_chainId", request_id=1),
        request("eth_noSuchMethod", request_id=2),
        {"jsonrpc": "2.0", "method": "eth_chainId"},
        request("eth_getBalance", ["0x12"], request_id=3),
    ]
    answers = exchange(ws, json.dumps(batch))
    assert [a["id"] for a in answers] == [1, 2, 3]
    assert answers[0]["result"] == "0x539"
    assert [a["error"]["code"] for a in answers[1:]] == [-32601, -32602]
    empty = exchange(ws, "[]")
    assert empty["error"]["code"] == -32600


def test_ws_notification_gets_no_response(ws: ClientConnection) -> None:
    ws.send(json.dumps({"jsonrpc": "2.0", "method": "eth_chainId"}))
    ws.send(json.dumps([{"jsonrpc": "2.0", "method": "eth_blockNumber"}]))
    # the next frame answers the next request, not the notifications
    assert exchange(ws, json.dumps(request("net_version", request_id="after")))["id"] == "after"


def test_ws_revert_carries_data(ws: ClientConnection, probe: str) -> None:
    call_params = [{"to": probe, "data": probe_input("failRequire()")}, "latest"]
    answer = exchange(ws, json.dumps(request("eth_call", call_params)))
    assert answer["error"]["code"] == 3
    assert answer["error"]["message"] == "execution reverted: probe: nope"
    assert answer["error"]["data"].startswith(ERROR_SELECTOR)
