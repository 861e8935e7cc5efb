"""Issue 12 points 2 and 3 against a real node: clients' calls cannot stop the chain, and
what clients make the node keep (filters, subscriptions, code analysis) is bounded.

The node runs with a 1 s EVM timeout, a 30,000,000 gas cap, 4 s filter expiry and a 2-block
log range, so each bound shows quickly; nothing here asserts how fast the node is, only what
it answers and that blocks keep coming while calls run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from websockets.sync.client import connect

from tests.conftest import NodeProcess, RpcFailure, free_port, fresh_funded_account, web3_for
from tests.rpc_txs import POKED_TOPIC, deploy, poke_tx, send

# Runs alone, after the parallel tests (scripts/test.sh): time budgets of calls and batches.
pytestmark = pytest.mark.serial

TIMEOUT = 1
GAS_CAP = 30_000_000
FILTER_TIMEOUT = 4
TIMEOUT_MESSAGE = f"execution aborted (timeout = {TIMEOUT}s)"
TARGET = "0x" + "aa" * 20
RECIPIENT = Web3.to_checksum_address("0x" + "bb" * 20)
ENDLESS = "0x5b5f56"  # JUMPDEST PUSH0 JUMP
GAS_LEFT = "0x5a5f5260205ff3"  # GAS PUSH0 MSTORE PUSH1 32 PUSH0 RETURN
LIMIT_TEXT = "exceed max addresses or topics per search position"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    process = NodeProcess(
        tmp_path_factory.mktemp("bounds") / "node",
        free_port(),
        free_port(),
        extra_args=(
            "--rpc-evm-timeout",
            str(TIMEOUT),
            "--rpc-gas-cap",
            str(GAS_CAP),
            "--rpc-filter-timeout",
            str(FILTER_TIMEOUT),
            "--max-log-range",
            "2",
        ),
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def w3(node: NodeProcess) -> Web3:
    return web3_for(node.url)


def endless_call(url: str, method: str = "eth_call") -> dict:
    """An endless loop as a code override: the answer's error object (it never succeeds)."""
    params = [{"to": TARGET}, "latest", {TARGET: {"code": ENDLESS}}]
    body = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=120
    ).json()
    return body["error"]


def batch(url: str, calls: list[tuple[str, list]]) -> list[dict]:
    requests = [
        {"jsonrpc": "2.0", "id": index, "method": method, "params": params}
        for index, (method, params) in enumerate(calls)
    ]
    answers = httpx.post(url, json=requests, timeout=120).json()
    return sorted(answers, key=lambda answer: answer["id"])


# --- calls: timeout, gas cap, saturation -----------------------------------------------------


@pytest.mark.parametrize("method", ["eth_call", "eth_estimateGas"])
def test_an_endless_call_ends_with_the_timeout_error(node: NodeProcess, method: str) -> None:
    started = time.monotonic()
    error = endless_call(node.url, method)
    elapsed = time.monotonic() - started
    assert error == {"code": -32000, "message": TIMEOUT_MESSAGE}
    # The gas cap alone would allow 2.7 million turns of the loop: many seconds in Python.
    assert elapsed < TIMEOUT + 5


def test_blocks_keep_coming_while_endless_calls_run(
    node: NodeProcess, w3: Web3, dev_accounts: list[LocalAccount]
) -> None:
    stop = threading.Event()
    answers: list[dict] = []

    def flood() -> None:
        while not stop.is_set():
            answers.append(endless_call(node.url))

    payer = fresh_funded_account(w3, dev_accounts[0])
    first = w3.eth.block_number
    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(TIMEOUT)  # every worker busy, calls waiting behind them
        receipts = [
            send(w3, payer, {"to": RECIPIENT, "value": n, "gas": 21_000}) for n in (1, 2, 3)
        ]
        calls_during_transfers = len(answers)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert all(receipt["status"] == 1 for receipt in receipts)
    assert len({receipt["blockNumber"] for receipt in receipts}) == 3
    assert receipts[0]["blockNumber"] > first
    assert calls_during_transfers >= 4  # the calls were answered while the transfers went in
    assert {error["message"] for error in answers} <= {
        TIMEOUT_MESSAGE,
        "too many concurrent calls (none finished within 2s)",
    }


def test_saturated_call_threads_answer_too_many_concurrent_calls(node: NodeProcess) -> None:
    """Two threads, each call 1 s: of 12 at once, those still waiting after 2 s are refused."""
    with ThreadPoolExecutor(12) as pool:
        errors = list(pool.map(lambda _: endless_call(node.url), range(12)))
    refused = [error for error in errors if error["code"] == -32005]
    assert refused, errors
    assert all(error["message"].startswith("too many concurrent calls") for error in refused)
    assert all(
        error == {"code": -32000, "message": TIMEOUT_MESSAGE}
        for error in errors
        if error not in refused
    )
    assert len(refused) < len(errors)


def test_gas_above_the_cap_is_lowered_to_it(node: NodeProcess) -> None:
    override = {TARGET: {"code": GAS_LEFT}}
    intrinsic, gas_opcode = 21_000, 2
    for request in ({"to": TARGET}, {"to": TARGET, "gas": hex(10**12)}):
        left = int(node.rpc("eth_call", [request, "latest", override]), 16)
        assert left == GAS_CAP - intrinsic - gas_opcode
    low = {"to": TARGET, "gas": hex(100_000)}
    left = int(node.rpc("eth_call", [low, "latest", override]), 16)
    assert left == 100_000 - intrinsic - gas_opcode


def gas_above(threshold: int) -> str:
    """Code that succeeds only if more than `threshold` gas is left at its start: GAS PUSH4 t
    LT PUSH1 13 JUMPI PUSH0 PUSH0 REVERT JUMPDEST STOP."""
    return "0x5a63" + threshold.to_bytes(4, "big").hex() + "10600d575f5ffd5b00"


def test_estimate_gas_searches_up_to_the_cap(tmp_path: Path) -> None:
    """On a node of its own with the same cap but a generous timeout: the search's ~25 runs
    can take longer than the module node's 1 s on a loaded machine."""
    node = NodeProcess(
        tmp_path / "node",
        free_port(),
        free_port(),
        extra_args=("--rpc-evm-timeout", "120", "--rpc-gas-cap", str(GAS_CAP)),
    ).start()
    try:
        _estimates_up_to_the_cap(node)
    finally:
        node.stop()


def _estimates_up_to_the_cap(node: NodeProcess) -> None:
    # Least gas: 21,000 intrinsic + 2 (GAS) with more than the threshold left.
    threshold = 20_000_000
    override = {TARGET: {"code": gas_above(threshold)}}
    for request in ({"to": TARGET}, {"to": TARGET, "gas": hex(10**12)}):
        estimate = node.rpc("eth_estimateGas", [request, "latest", override])
        assert int(estimate, 16) == threshold + 21_003
    beyond = {TARGET: {"code": gas_above(GAS_CAP)}}  # fails even at the cap
    with pytest.raises(RpcFailure) as failure:
        node.rpc("eth_estimateGas", [{"to": TARGET}, "latest", beyond])
    assert (failure.value.code, failure.value.message) == (3, "execution reverted")


def test_code_overrides_are_capped_at_the_initcode_limit(node: NodeProcess) -> None:
    largest = "0x00" + "5b" * (49_152 - 1)
    assert node.rpc("eth_call", [{"to": TARGET}, "latest", {TARGET: {"code": largest}}]) == "0x"
    with pytest.raises(RpcFailure) as failure:
        node.rpc("eth_call", [{"to": TARGET}, "latest", {TARGET: {"code": largest + "00"}}])
    assert failure.value.code == -32602
    assert failure.value.message == ("code override of 49153 bytes exceeds the 49152-byte limit")


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_large_code_overrides_leave_memory_bounded(node: NodeProcess) -> None:
    """300 distinct 48 KiB codes: a set of instruction offsets per code (the old cache, up to
    1,024 codes) held some 3.4 MB each, about a gigabyte; the byte-bounded cache holds 32 MiB."""
    assert node.process is not None
    pid = node.process.pid
    before = resident_bytes(pid)
    for first in range(0, 300, 50):
        calls = []
        for n in range(first, first + 50):
            code = "0x00" + n.to_bytes(4, "big").hex() + "60" * (49_152 - 5)
            calls.append(("eth_call", [{"to": TARGET}, "latest", {TARGET: {"code": code}}]))
        assert [answer.get("result") for answer in batch(node.url, calls)] == ["0x"] * 50
    grown = resident_bytes(pid) - before
    assert grown < 200 * 1024 * 1024, f"RSS grew {grown / 2**20:.0f} MiB"


# --- filters and subscriptions -----------------------------------------------------------------


def many_addresses(count: int, seed: int = 0) -> list[str]:
    return ["0x" + (seed * 1_000_000 + n).to_bytes(20, "big").hex() for n in range(count)]


@pytest.mark.parametrize(
    "query",
    [
        {"address": many_addresses(1_001)},
        {"topics": [["0x" + n.to_bytes(32, "big").hex() for n in range(1_001)]]},
        {"topics": [None, None, ["0x" + n.to_bytes(32, "big").hex() for n in range(1_001)]]},
    ],
)
def test_queries_name_at_most_1000_addresses_or_topics_per_position(
    node: NodeProcess, query: dict
) -> None:
    for method in ("eth_getLogs", "eth_newFilter"):
        with pytest.raises(RpcFailure) as failure:
            node.rpc(method, [query])
        assert (failure.value.code, failure.value.message) == (-32602, LIMIT_TEXT)
    with connect(node.ws_url, open_timeout=10, close_timeout=5) as ws:
        ws.send(
            json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["logs", query]}
            )
        )
        answer = json.loads(ws.recv(timeout=10))
    assert answer["error"] == {"code": -32602, "message": LIMIT_TEXT}
    assert node.rpc("eth_getLogs", [{"address": many_addresses(1_000)}]) == []


def test_filters_expire_without_a_poll(node: NodeProcess) -> None:
    polled, idle = node.rpc("eth_newBlockFilter"), node.rpc("eth_newBlockFilter")
    kept_until = time.monotonic() + FILTER_TIMEOUT + 1
    while time.monotonic() < kept_until:  # polled well inside the timeout all along
        node.rpc("eth_getFilterChanges", [polled])
        time.sleep(0.5)
    with pytest.raises(RpcFailure) as failure:
        node.rpc("eth_getFilterChanges", [idle])
    assert (failure.value.code, failure.value.message) == (-32000, "filter not found")
    assert node.rpc("eth_getFilterChanges", [polled]) is not None
    assert node.rpc("eth_uninstallFilter", [polled]) is True


def test_filters_are_capped_in_number_and_in_what_they_name(node: NodeProcess) -> None:
    ids = [
        answer["result"]
        for _ in range(2)
        for answer in batch(node.url, [("eth_newBlockFilter", [])] * 5_000)
    ]
    try:
        with pytest.raises(RpcFailure) as failure:
            node.rpc("eth_newBlockFilter")
        assert (failure.value.code, failure.value.message) == (
            -32005,
            "too many filters installed (max 10000)",
        )
    finally:
        for first in range(0, len(ids), 5_000):
            removed = batch(
                node.url, [("eth_uninstallFilter", [i]) for i in ids[first : first + 5_000]]
            )
            assert all(answer["result"] is True for answer in removed)
    wide: list[str] = []
    try:
        for seed in range(0, 500, 50):
            calls = [
                ("eth_newFilter", [{"address": many_addresses(1_000, s)}])
                for s in range(seed, seed + 50)
            ]
            wide += [answer["result"] for answer in batch(node.url, calls)]
        with pytest.raises(RpcFailure) as failure:
            node.rpc("eth_newFilter", [{"address": many_addresses(1)}])
        assert failure.value.code == -32005
        assert failure.value.message == (
            "installed filters name too many addresses and topics (max 500000 in all)"
        )
    finally:
        removed = batch(node.url, [("eth_uninstallFilter", [i]) for i in wide])
        assert all(answer["result"] is True for answer in removed)
    assert node.rpc("eth_newFilter", [{"address": many_addresses(1)}])


def test_log_filters_page_through_the_blocks_since_their_last_poll(
    node: NodeProcess, w3: Web3, dev_accounts: list[LocalAccount]
) -> None:
    """Each poll scans at most --max-log-range (2) blocks; the next goes on from there."""
    poker = fresh_funded_account(w3, dev_accounts[0])
    probe = deploy(w3, poker, "Probe")
    watched = [probe.address, *many_addresses(999)]
    filter_id = node.rpc("eth_newFilter", [{"address": watched, "topics": [POKED_TOPIC]}])
    receipts = [send(w3, poker, poke_tx(probe, value)) for value in (1, 2, 3)]
    assert len({receipt["blockNumber"] for receipt in receipts}) == 3
    polls: list[list[int]] = []
    while sum(map(len, polls)) < 3 and len(polls) < 10:
        changes = node.rpc("eth_getFilterChanges", [filter_id])
        polls.append([int(log["data"], 16) for log in changes])
    assert [value for poll in polls for value in poll] == [1, 2, 3]
    assert len(polls[0]) < 3  # three blocks did not fit one poll's two-block window
    assert node.rpc("eth_getFilterChanges", [filter_id]) == []
    assert node.rpc("eth_uninstallFilter", [filter_id]) is True


def test_subscriptions_still_get_their_logs(
    node: NodeProcess, w3: Web3, dev_accounts: list[LocalAccount]
) -> None:
    poker = fresh_funded_account(w3, dev_accounts[0])
    probe = deploy(w3, poker, "Probe")
    with connect(node.ws_url, open_timeout=10, close_timeout=5) as ws:
        ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "eth_subscribe",
                    "params": ["logs", {"address": [*many_addresses(999), probe.address]}],
                }
            )
        )
        subscription = json.loads(ws.recv(timeout=10))["result"]
        receipt = send(w3, poker, poke_tx(probe, 7))
        message = json.loads(ws.recv(timeout=30))
    assert message["params"]["subscription"] == subscription
    assert message["params"]["result"]["transactionHash"] == receipt["transactionHash"].to_0x_hex()
    assert int(message["params"]["result"]["data"], 16) == 7


def test_node_stops_promptly_with_calls_running(tmp_path: Path) -> None:
    """Calls still running are aborted at shutdown, before the store closes under them."""
    process = NodeProcess(
        tmp_path / "node", free_port(), free_port(), extra_args=("--rpc-evm-timeout", "600")
    )
    process.start()
    answers: list[object] = []

    def call() -> None:
        try:
            answers.append(endless_call(process.url))
        except httpx.HTTPError as exc:
            answers.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1)
    finally:
        assert process.stop() == 0  # within the fixture's grace, not after 600 s
    for thread in threads:
        thread.join()
    assert len(answers) == 2
    assert "Tally node stopped cleanly" in process.log_text()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_large_filters_leave_memory_bounded(node: NodeProcess) -> None:
    """Issue 12 point 3's attack, filters of 300,000+ addresses each (ten of 340,000: +404 MB
    before), is refused per filter; filling the whole shared budget (500 filters of 1,000
    addresses) and dropping it again leaves resident memory within 200 MiB of where it was."""
    assert node.process is not None
    pid = node.process.pid
    before = resident_bytes(pid)
    huge = many_addresses(300_000, seed=7)
    for _ in range(3):
        with pytest.raises(RpcFailure) as failure:
            node.rpc("eth_newFilter", [{"address": huge}])
        assert failure.value.code == -32602
    wide: list[str] = []
    try:
        for seed in range(1_000, 1_500, 50):
            calls = [
                ("eth_newFilter", [{"address": many_addresses(1_000, s)}])
                for s in range(seed, seed + 50)
            ]
            wide += [answer["result"] for answer in batch(node.url, calls) if "result" in answer]
        peak = resident_bytes(pid)
    finally:
        batch(node.url, [("eth_uninstallFilter", [i]) for i in wide])
    grown = peak - before
    assert grown < 200 * 1024 * 1024, f"RSS grew {grown / 2**20:.0f} MiB"


def test_a_batch_past_its_time_budget_answers_the_rest_with_limit_exceeded(
    node: NodeProcess,
) -> None:
    """Endless calls in one batch: each is stopped by the EVM timeout (1 s here), but the
    batch as a whole gets `BATCH_BUDGET` seconds; the rest are answered -32005 without
    running, so one request cannot hold a call thread for (calls x timeout)."""
    from node.rpc.dispatch import BATCH_BUDGET

    endless = ("eth_call", [{"to": TARGET}, "latest", {TARGET: {"code": ENDLESS}}])
    count = int(BATCH_BUDGET / TIMEOUT) + 4
    started = time.monotonic()
    answers = batch(node.url, [endless] * count)
    took = time.monotonic() - started
    codes = [answer["error"]["code"] for answer in answers]
    assert codes[0] == -32000 and codes[-1] == -32005, codes
    assert answers[-1]["error"]["message"] == f"batch time budget of {BATCH_BUDGET:g}s exceeded"
    assert took < BATCH_BUDGET + 2 * TIMEOUT + 2


def test_websocket_connections_are_capped_per_address_with_a_clear_close(
    tmp_path: Path,
) -> None:
    """`--ws-max-per-address 2`: a third connection from 127.0.0.1 is accepted and closed at
    once with 1013 (try again later) and a reason naming the limit; closing one lets the next
    in. (`--ws-max-connections` counts every address the same way.)"""
    from websockets.exceptions import ConnectionClosed

    node = NodeProcess(tmp_path / "node", free_port(), free_port(), extra_args=(
        "--ws-max-per-address", "2"))  # fmt: skip
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    try:
        node.start()
        with (
            connect(node.ws_url, open_timeout=10) as first,
            connect(node.ws_url, open_timeout=10) as second,
        ):
            with (
                connect(node.ws_url, open_timeout=10) as third,
                pytest.raises(ConnectionClosed) as closed,
            ):
                third.send(request)
                third.recv(timeout=10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
            assert closed.value.rcvd.reason == (
                "too many WebSocket connections from 127.0.0.1 (max 2)"
            )
            second.send(request)
            assert json.loads(second.recv(timeout=10))["result"] == "0x539"
            first.close()
            time.sleep(0.5)
            with connect(node.ws_url, open_timeout=10) as fourth:
                fourth.send(request)
                assert json.loads(fourth.recv(timeout=10))["result"] == "0x539"
    finally:
        node.stop()
