"""Malformed hex in JSON-RPC params is a client's mistake: -32602, no traceback, no guessing.

Python's `int(x, 16)` and `bytes.fromhex` take `0x-1`, `0x 1`, `0x1_0` and `0x+5`; a node that
used them answered `eth_getTransactionByBlockNumberAndIndex(latest, "0x-1")` with the last
transaction and logged a traceback per bad value. Every method below is sent each bad form.
"""

from __future__ import annotations

import string
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import NodeProcess

BAD_QUANTITIES = ["0x-1", "0x 1", "0x1_0", "0x+5", " 0x1", "0x1 ", "0x", "0xg", "1", "0x\uff11"]
BAD_DATA = ["0x-1", "0x 12", "0x1_02", "0x+5", "0x1", "0x12 ", "0xzz", "12"]
ADDRESS = "0x" + "11" * 20
HASH = "0x" + "22" * 32


def _calls_with_bad_quantity(bad: str) -> list[tuple[str, list[Any]]]:
    return [
        ("eth_getBlockByNumber", [bad, False]),
        ("eth_getBalance", [ADDRESS, bad]),
        ("eth_getTransactionByBlockNumberAndIndex", ["latest", bad]),
        ("eth_getTransactionByBlockHashAndIndex", [HASH, bad]),
        ("eth_getBlockTransactionCountByNumber", [bad]),
        ("eth_getStorageAt", [ADDRESS, "0x0", bad]),
        ("eth_feeHistory", [bad, "latest", []]),
        ("eth_call", [{"to": ADDRESS, "gas": bad}, "latest"]),
        ("eth_estimateGas", [{"to": ADDRESS, "value": bad}]),
        ("eth_getLogs", [{"fromBlock": bad, "toBlock": "latest"}]),
    ]


def _calls_with_bad_data(bad: str) -> list[tuple[str, list[Any]]]:
    """Storage keys are the exception to even length: geth left-pads `0x1` to slot 1."""
    calls: list[tuple[str, list[Any]]] = [
        ("eth_sendRawTransaction", [bad]),
        ("eth_getCode", [bad, "latest"]),
        ("eth_getTransactionByHash", [bad]),
        ("eth_getBlockByHash", [bad, False]),
        ("eth_call", [{"to": ADDRESS, "data": bad}, "latest"]),
    ]
    return calls + ([] if bad == "0x1" else [("eth_getProof", [ADDRESS, [bad], "latest"])])


def _error(node: NodeProcess, method: str, params: list[Any]) -> dict[str, Any] | None:
    body = httpx.post(
        node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=30
    ).json()
    return body.get("error")


@pytest.mark.parametrize("bad", BAD_QUANTITIES)
def test_bad_quantities_are_invalid_params(shared_node: NodeProcess, bad: str) -> None:
    for method, params in _calls_with_bad_quantity(bad):
        error = _error(shared_node, method, params)
        assert error is not None, f"{method} accepted {bad!r}"
        assert error["code"] == -32602, (method, bad, error)


@pytest.mark.parametrize("bad", [b for b in BAD_QUANTITIES if b != "0x"])
def test_bad_storage_keys_get_the_execution_apis_error(shared_node: NodeProcess, bad: str) -> None:
    """execution-apis (get-storage-invalid-key*.io) answers a key it cannot decode with
    -32000 "unable to decode storage key: ..."; "0x" is the zero key, as geth reads it."""
    error = _error(shared_node, "eth_getStorageAt", [ADDRESS, bad, "latest"])
    assert error is not None, bad
    assert error["code"] == -32000
    assert error["message"].startswith("unable to decode storage key: ")


@pytest.mark.parametrize("bad", BAD_DATA)
def test_bad_data_is_invalid_params(shared_node: NodeProcess, bad: str) -> None:
    for method, params in _calls_with_bad_data(bad):
        error = _error(shared_node, method, params)
        assert error is not None, f"{method} accepted {bad!r}"
        assert error["code"] == -32602, (method, bad, error)


def test_good_forms_still_work(shared_node: NodeProcess) -> None:
    """Upper-case prefix and digits, and leading zeros, are unambiguous and stay accepted."""
    assert shared_node.rpc("eth_getBlockByNumber", ["0X0", False]) is not None
    assert shared_node.rpc("eth_getBlockByNumber", ["0x00", False]) is not None
    assert shared_node.rpc("eth_getBalance", [ADDRESS.upper().replace("0X", "0x"), "0x0"]) == "0x0"
    proof: Any = shared_node.rpc("eth_getProof", [ADDRESS, ["0x"], "latest"])
    assert proof["storageProof"][0]["value"] == "0x0"  # "0x" is slot 0, as geth reads it


def test_client_mistakes_leave_no_traceback_in_the_log(shared_node: NodeProcess) -> None:
    before = shared_node.log_text().count("Traceback")
    for bad in BAD_QUANTITIES:
        for method, params in _calls_with_bad_quantity(bad):
            _error(shared_node, method, params)
    assert shared_node.log_text().count("Traceback") == before


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(alphabet=string.printable + "x\uff10\uff11", max_size=12).map(lambda t: "0x" + t)
)
def test_fuzzed_block_numbers_answer_or_refuse_cleanly(shared_node: NodeProcess, text: str) -> None:
    """Any string as a block number: a result (or null) when it is strict hex, else -32602."""
    error = _error(shared_node, "eth_getBlockByNumber", [text, False])
    strict = len(text) > 2 and all(c in string.hexdigits for c in text[2:])
    if strict:
        assert error is None or error["code"] == -32602  # -32602 only for > 256 bits
    else:
        assert error is not None and error["code"] == -32602, (text, error)
