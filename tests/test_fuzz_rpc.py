"""Fuzzing every public JSON-RPC method of a real `tally dev` node with random JSON params.

Whatever a client sends, the answer is a result or an error with a code a client can act on
(never -32603, which means the node broke), nothing is logged as a traceback, and the node keeps
answering. Params are random JSON shaped like what the methods take: hex quantities and data
(well-formed, malformed, huge), block tags, addresses, hashes, call and filter objects with the
usual keys, nested lists and objects. Twenty calls go per HTTP batch to keep the run short.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import node.rpc
from tests.conftest import NodeProcess

EXPECTED_CODES = {-32700, -32600, -32601, -32602, -32000, -32005, 3}
"""Parse/request/method/params errors, geth's -32000 (rejected transaction, unknown filter...),
-32005 (a limit), 3 (execution reverted with data)."""


def _registered(admin: bool) -> Iterator[str]:
    for module in pkgutil.iter_modules(node.rpc.__path__):
        loaded = importlib.import_module(f"node.rpc.{module.name}")
        for owner in vars(loaded).values():
            for attribute in vars(owner).values() if isinstance(owner, type) else ():
                spec = getattr(attribute, "__rpc__", None)
                if spec is not None and spec[4] is admin:
                    yield spec[0]


PUBLIC_METHODS = sorted(set(_registered(admin=False)))

hex_digits = st.text("0123456789abcdefABCDEF", max_size=80)
quantities = st.one_of(
    st.integers(min_value=0, max_value=2**300).map(hex),
    st.integers(min_value=-(2**70), max_value=2**70),
    hex_digits.map(lambda digits: "0x" + digits),
    st.sampled_from(["latest", "earliest", "pending", "safe", "finalized", "0x", "0x-1", "0x00"]),
)
data = st.one_of(
    st.binary(max_size=80).map(lambda raw: "0x" + raw.hex()),
    hex_digits.map(lambda digits: "0x" + digits),
    st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex()),
    st.binary(min_size=32, max_size=32).map(lambda raw: "0x" + raw.hex()),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    quantities,
    data,
)
FIELDS = [
    "from", "to", "data", "input", "value", "gas", "gasPrice", "maxFeePerGas", "nonce",
    "address", "topics", "fromBlock", "toBlock", "blockHash", "blockNumber", "stateOverrides",
    "code", "balance", "accessList", "chainId", "type",
]  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), data), inner, max_size=5),
    ),
    max_leaves=12,
)
params = st.one_of(st.lists(json_values, max_size=4), json_values)
calls = st.tuples(st.sampled_from(PUBLIC_METHODS), params)


def test_every_public_method_is_fuzzed() -> None:
    """The list comes from the registry, so a new method is fuzzed without editing this file."""
    assert {"eth_call", "eth_getLogs", "eth_newFilter"} <= set(PUBLIC_METHODS)
    assert "qbft_proposeValidatorVote" not in PUBLIC_METHODS


@pytest.fixture(scope="module")
def client(shared_node: NodeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_node.url, timeout=60) as http:
        yield http


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(calls, min_size=1, max_size=20))
def test_random_params_get_a_result_or_a_client_error(
    client: httpx.Client, batch: list[tuple[str, Any]]
) -> None:
    body = [
        {"jsonrpc": "2.0", "id": index, "method": method, "params": value}
        for index, (method, value) in enumerate(batch)
    ]
    response = client.post("/", json=body)
    assert response.status_code == 200, response.text
    answers = {answer["id"]: answer for answer in response.json()}
    assert set(answers) == set(range(len(batch)))
    for index, (method, value) in enumerate(batch):
        answer = answers[index]
        if "error" in answer:
            code = answer["error"]["code"]
            assert code in EXPECTED_CODES, (method, value, answer)


def test_node_is_healthy_and_logged_no_traceback(
    shared_node: NodeProcess, client: httpx.Client
) -> None:
    """Runs after the fuzzing above (same module node): still answering, nothing logged."""
    assert shared_node.process is not None and shared_node.process.poll() is None
    assert shared_node.rpc("eth_chainId") == "0x539"
    assert "Traceback" not in shared_node.log_text()


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("eth_getBlockByNumber", ["0x10000000000000000", False]),
        ("eth_getBlockReceipts", ["0X10000000000000000"]),
        ("eth_getBalance", ["0x" + "11" * 20, "0x8000000000000000"]),
        ("eth_getLogs", [{"fromBlock": "0x0", "toBlock": hex(2**64)}]),
    ],
)
def test_a_block_number_beyond_64_bits_is_invalid_params(
    shared_node: NodeProcess, method: str, params: list[Any]
) -> None:
    """Found by the fuzzer: a block number of 2**64 or more reached the store's 8-byte key and
    answered -32603 with a traceback; geth's block numbers are int64, so it is -32602."""
    response = httpx.post(
        shared_node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    ).json()
    assert response["error"]["code"] == -32602, response
    assert "64 bits" in response["error"]["message"] or "63 bits" in response["error"]["message"]
