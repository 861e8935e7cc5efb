"""Traces (`debug_trace*`, `trace_*`) from a real `tally dev` node, compared field by field with
anvil's for the same transactions from the same key (so addresses, nonces and gas agree).

`TraceProbe.exercise` makes every kind of frame: nested calls with logs, a revert caught inside
a call, DELEGATECALL, STATICCALL, the sha256 and ecrecover precompiles, CREATE with value,
CREATE2 and SELFDESTRUCT. Where anvil (foundry's revm-inspectors) departs from geth, the test
follows geth and says so at the one place it normalises anvil's answer:

- prestateTracer: each chain's coinbase is its own (Tally: the validator, anvil: 0x0); anvil
  also lists accounts the transaction created (empty before it), which geth removes.
- 4byteTracer: anvil counts calls to precompiles, which geth skips.
- struct logs: anvil writes memory words and storage keys with "0x" and always writes
  `refund`, `returnData` and `memory`; geth omits them when empty/zero, and prints no "0x".
- Parity traces: block and transaction hashes differ between the chains by construction.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.types import RPCEndpoint

from benchmarks.peers import find_foundry_binary, wait_for_rpc
from contracts import load_artifact
from node.chain.chain import Chain
from node.chain.genesis import Genesis, dev_accounts
from node.chain.vm import decode_transaction
from node.qbftheader.extra_data import QbftExtraData
from node.storage.chainstore import ChainStore
from node.storage.store import LevelDBStore
from tests.conftest import DEV_MNEMONIC, NodeProcess, RpcFailure, free_port, rpc_call, web3_for
from tests.test_api_support import Api, admin_key

USER = Account.from_key(b"\x42" * 32)
PRECOMPILES = {"0x" + f"{n:040x}" for n in range(1, 0x12)}


def _send(w3: Web3, account: Any, tx: dict) -> Any:
    full = {
        "chainId": w3.eth.chain_id,
        "gas": 3_000_000,
        "gasPrice": 0,
        "nonce": w3.eth.get_transaction_count(account.address),
        **tx,
    }
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(full).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)


def _workload(w3: Web3) -> dict[str, Any]:
    """The same transactions on either chain; their receipts by name."""
    Account.enable_unaudited_hdwallet_features()
    dev = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0")
    _send(w3, dev, {"to": USER.address, "value": 10**20, "gas": 21_000})
    artifact = load_artifact("TraceProbe")
    deploy = _send(w3, USER, {"data": artifact["bytecode"]})
    probe = w3.eth.contract(address=deploy.contractAddress, abi=artifact["abi"])
    exercise = _send(
        w3,
        USER,
        {"to": probe.address, "data": probe.encode_abi("exercise", [b"\x07" * 32]), "value": 5},
    )
    failing = _send(
        w3, USER, {"to": probe.address, "data": probe.encode_abi("failing", []), "gas": 300_000}
    )
    assert exercise.status == 1 and failing.status == 0
    return {"deploy": deploy, "exercise": exercise, "failing": failing, "probe": probe.address}


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("traces")
    node = NodeProcess(
        root / "node",
        free_port(),
        free_port(),
        admin_port=free_port(),
        extra_args=("--max-log-range", "40"),
    )
    port = free_port()
    anvil = subprocess.Popen(
        [
            str(find_foundry_binary("anvil")),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--hardfork",
            "prague",
            "--base-fee",
            "0",
            "--gas-price",
            "0",
            "--disable-min-priority-fee",
            "--steps-tracing",
            "--mnemonic",
            DEV_MNEMONIC,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        node.start()
        anvil_url = f"http://127.0.0.1:{port}"
        wait_for_rpc(anvil_url, 30, anvil)
        tally_w3, anvil_w3 = web3_for(node.url), Web3(Web3.HTTPProvider(anvil_url))
        yield {
            "node": node,
            "tally": (tally_w3, _workload(tally_w3)),
            "anvil": (anvil_w3, _workload(anvil_w3)),
        }
    finally:
        anvil.terminate()
        anvil.wait(10)
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def _trace(w3: Web3, method: str, params: list) -> Any:
    response = w3.provider.make_request(RPCEndpoint(method), params)
    assert "error" not in response, response
    return response["result"]


def _hash(receipt: Any) -> str:
    return "0x" + bytes(receipt.transactionHash).hex()


def _both(chains: dict, name: str, method: str, extra: list) -> tuple[Any, Any]:
    out = []
    for side in ("tally", "anvil"):
        w3, receipts = chains[side]
        out.append(_trace(w3, method, [_hash(receipts[name]), *extra]))
    return out[0], out[1]


def _coinbase(w3: Web3, receipt: Any) -> str:
    return w3.eth.get_block(receipt.blockNumber)["miner"].lower()


@pytest.mark.parametrize("name", ["deploy", "exercise", "failing"])
def test_call_4byte_and_diff_tracers_match_anvil(chains: dict, name: str) -> None:
    config = {"tracer": "callTracer", "tracerConfig": {"withLog": True}}
    ours, theirs = _both(chains, name, "debug_traceTransaction", [config])
    assert ours == theirs
    diff = {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}}
    ours, theirs = _both(chains, name, "debug_traceTransaction", [diff])
    assert ours == theirs
    ours, theirs = _both(chains, name, "debug_traceTransaction", [{"tracer": "4byteTracer"}])
    assert ours == {
        k: v for k, v in theirs.items() if not k.startswith(("0x00000000-", "0x0a28e9ff-"))
    }
    top = _trace(
        chains["tally"][0],
        "debug_traceTransaction",
        [
            _hash(chains["tally"][1][name]),
            {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}},
        ],
    )
    assert "calls" not in top and top["gasUsed"] == hex(chains["tally"][1][name].gasUsed)


def test_exercise_shows_every_frame_kind(chains: dict) -> None:
    config = {"tracer": "callTracer", "tracerConfig": {"withLog": True}}
    tree = _trace(
        chains["tally"][0],
        "debug_traceTransaction",
        [_hash(chains["tally"][1]["exercise"]), config],
    )
    kinds: list[str] = []

    def walk(frame: dict) -> None:
        kinds.append(frame["type"])
        for call in frame.get("calls", []):
            walk(call)

    walk(tree)
    for kind in ("CALL", "STATICCALL", "DELEGATECALL", "CREATE", "CREATE2", "SELFDESTRUCT"):
        assert kind in kinds
    reverted = [c for c in tree["calls"] if c.get("error")]
    assert reverted[0]["revertReason"] == "child: nope"
    assert {c["to"] for c in tree["calls"]} & {"0x" + "0" * 39 + "1", "0x" + "0" * 39 + "2"}
    assert tree["logs"][0]["topics"][0].startswith("0x")


@pytest.mark.parametrize("name", ["deploy", "exercise", "failing"])
def test_prestate_matches_anvil(chains: dict, name: str) -> None:
    ours, theirs = _both(chains, name, "debug_traceTransaction", [{"tracer": "prestateTracer"}])
    ours.pop(_coinbase(chains["tally"][0], chains["tally"][1][name]))
    theirs.pop(_coinbase(chains["anvil"][0], chains["anvil"][1][name]))
    # anvil keeps accounts the transaction created (empty before it); geth removes them.
    created = {a: v for a, v in theirs.items() if a not in ours}
    assert all(v == {"balance": "0x0"} for v in created.values())
    assert ours == {a: v for a, v in theirs.items() if a in ours}


def _geth_step(step: dict) -> dict:
    """anvil's struct log step in geth's format (see the module docstring)."""
    out = dict(step)
    if out.get("refund") == 0:
        del out["refund"]
    if out.get("returnData") == "0x":
        del out["returnData"]
    if "memory" in out:
        out["memory"] = [word.removeprefix("0x") for word in out["memory"]]
        if not out["memory"]:
            del out["memory"]
    if "storage" in out:
        out["storage"] = {
            k.removeprefix("0x"): v.removeprefix("0x") for k, v in out["storage"].items()
        }
    return out


@pytest.mark.parametrize("name", ["deploy", "exercise", "failing"])
def test_struct_logs_match_anvil_step_by_step(chains: dict, name: str) -> None:
    config = {"enableMemory": True, "enableReturnData": True}
    ours, theirs = _both(chains, name, "debug_traceTransaction", [config])
    assert {k: ours[k] for k in ("gas", "failed", "returnValue")} == {
        k: theirs[k] for k in ("gas", "failed", "returnValue")
    }
    assert len(ours["structLogs"]) == len(theirs["structLogs"]) > 50
    for mine, other in zip(ours["structLogs"], theirs["structLogs"], strict=True):
        assert mine == _geth_step(other)
    lean, _ = _both(
        chains,
        name,
        "debug_traceTransaction",
        [{"disableStack": True, "disableStorage": True, "limit": 10}],
    )
    assert len(lean["structLogs"]) == 10
    assert all("stack" not in s and "storage" not in s for s in lean["structLogs"])


def _without_location(traces: list[dict], *, position: bool = True) -> list[dict]:
    dropped = ("blockHash", "transactionHash", "blockNumber") + (
        () if position else ("transactionPosition",)
    )
    return [{k: v for k, v in t.items() if k not in dropped} for t in traces]


@pytest.mark.parametrize("name", ["deploy", "exercise", "failing"])
def test_parity_traces_match_anvil(chains: dict, name: str) -> None:
    ours, theirs = _both(chains, name, "trace_transaction", [])
    assert _without_location(ours) == _without_location(theirs)
    w3, receipts = chains["tally"]
    assert ours[0]["blockNumber"] == receipts[name].blockNumber
    assert ours[0]["transactionHash"] == _hash(receipts[name])
    block = _trace(w3, "trace_block", [hex(receipts[name].blockNumber)])
    assert block == ours  # one transaction per block on both
    replay = _trace(
        w3, "trace_replayBlockTransactions", [hex(receipts[name].blockNumber), ["trace"]]
    )
    assert replay[0]["trace"] == _without_location(ours, position=False) and replay[0][
        "transactionHash"
    ] == _hash(receipts[name])


@pytest.mark.parametrize("name", ["deploy", "exercise", "failing"])
def test_replay_state_diff_matches_anvil(chains: dict, name: str) -> None:
    answers = []
    for side in ("tally", "anvil"):
        w3, receipts = chains[side]
        number = hex(receipts[name].blockNumber)
        replay = _trace(w3, "trace_replayBlockTransactions", [number, ["trace", "stateDiff"]])
        assert replay[0]["transactionHash"] == _hash(receipts[name])
        answers.append(replay[0])
    ours, theirs = answers
    assert ours["output"] == theirs["output"]
    assert ours["stateDiff"] == theirs["stateDiff"]


def test_debug_trace_block_and_call(chains: dict) -> None:
    w3, receipts = chains["tally"]
    number = receipts["exercise"].blockNumber
    by_number = _trace(w3, "debug_traceBlockByNumber", [hex(number), {"tracer": "callTracer"}])
    block_hash = "0x" + bytes(receipts["exercise"].blockHash).hex()
    by_hash = _trace(w3, "debug_traceBlockByHash", [block_hash, {"tracer": "callTracer"}])
    assert by_number == by_hash
    assert by_number[0]["txHash"] == _hash(receipts["exercise"])
    single = _trace(
        w3, "debug_traceTransaction", [_hash(receipts["exercise"]), {"tracer": "callTracer"}]
    )
    assert by_number[0]["result"] == single
    probe = receipts["probe"]
    data = "0x1118b879"  # failing()
    call = _trace(
        w3,
        "debug_traceCall",
        [{"from": USER.address, "to": probe, "data": data}, "latest", {"tracer": "callTracer"}],
    )
    assert call["revertReason"] == "probe: top" and call["calls"][0]["type"] == "CALL"


def test_trace_filter_by_address_and_range(chains: dict) -> None:
    w3, receipts = chains["tally"]
    first, last = receipts["deploy"].blockNumber, receipts["failing"].blockNumber
    probe = receipts["probe"].lower()
    found = _trace(
        w3,
        "trace_filter",
        [{"fromBlock": hex(first), "toBlock": hex(last), "toAddress": [probe]}],
    )
    # Calls to the probe, and its creation (a create trace's "to" is the created address).
    assert {t["transactionHash"] for t in found} == {
        _hash(receipts[name]) for name in ("deploy", "exercise", "failing")
    }
    sender = _trace(
        w3,
        "trace_filter",
        [{"fromBlock": hex(first), "toBlock": hex(last), "fromAddress": [probe]}],
    )
    assert sender and all(t["traceAddress"] for t in sender)  # only inner calls
    page = _trace(
        w3,
        "trace_filter",
        [{"fromBlock": hex(first), "toBlock": hex(last), "after": 1, "count": 2}],
    )
    everything = _trace(w3, "trace_filter", [{"fromBlock": hex(first), "toBlock": hex(last)}])
    assert page == everything[1:3] and len(everything) > 3
    with pytest.raises(RpcFailure) as wide:  # the node runs with --max-log-range 40
        rpc_call(chains["node"].url, "trace_filter", [{"fromBlock": "0x0", "toBlock": "0x28"}])
    assert wide.value.code == -32005 and "--max-log-range" in wide.value.message
    with pytest.raises(RpcFailure) as ahead:
        rpc_call(
            chains["node"].url,
            "trace_filter",
            [{"fromBlock": hex(last), "toBlock": hex(last + 30)}],
        )
    assert ahead.value.code == -32602


def test_web3_clients(chains: dict) -> None:
    w3, receipts = chains["tally"]
    traces = w3.tracing.trace_transaction(receipts["exercise"].transactionHash)
    assert traces[0]["action"]["callType"] == "call"
    result = w3.manager.request_blocking(
        "debug_traceTransaction", [_hash(receipts["failing"]), {"tracer": "callTracer"}]
    )
    assert result["revertReason"] == "probe: top"


def test_errors(chains: dict) -> None:
    url = chains["node"].url
    tx = _hash(chains["tally"][1]["exercise"])
    cases: list[tuple[str, list[Any], int, str]] = [
        ("debug_traceTransaction", ["0x" + "ab" * 32], -32000, "transaction not found"),
        ("debug_traceTransaction", ["0x1234"], -32602, ""),
        ("debug_traceTransaction", [tx, {"tracer": "jsTracer"}], -32602, "tracer not found"),
        ("debug_traceTransaction", [tx, {"timeout": "soon"}], -32602, "timeout"),
        ("debug_traceTransaction", [tx, {"timeout": "2h"}], -32602, "timeout"),
        ("debug_traceTransaction", [tx, {"bogus": 1}], -32602, "bogus"),
        ("debug_traceBlockByNumber", ["0x0"], -32000, "genesis is not traceable"),
        ("debug_traceBlockByNumber", ["0xffffff"], -32000, "block not found"),
        ("trace_replayBlockTransactions", ["latest", ["vmTrace"]], -32602, "not supported"),
        ("trace_filter", [{"fromBlock": "0x5", "toBlock": "0x1"}], -32602, ""),
        ("trace_filter", [{"fromAddress": "0x" + "11" * 20}], -32602, "fromAddress"),
        ("trace_filter", [{"count": "0x-1"}], -32602, ""),
        ("trace_filter", ["latest"], -32602, ""),
        ("trace_block", ["0x-1"], -32602, ""),
        ("trace_replayBlockTransactions", ["latest", "trace"], -32602, ""),
        ("debug_traceTransaction", [tx, {"limit": -1}], -32602, "limit"),
        ("debug_traceTransaction", [tx, {"limit": "many"}], -32602, ""),
        ("debug_traceTransaction", [tx, {"disableStack": "yes"}], -32602, ""),
        ("debug_traceTransaction", [tx, {"tracer": "callTracer", "tracerConfig": []}], -32602, ""),
        ("debug_traceTransaction", [tx, {"tracer": 5}], -32602, ""),
        ("debug_traceTransaction", [tx, "callTracer"], -32602, ""),
        ("debug_traceCall", [{"to": "0x12"}, "latest"], -32602, ""),
        ("debug_traceCall", [{"to": tx[:42]}, "latest", {"blockOverrides": {}}], -32602, ""),
    ]
    for method, params, code, words in cases:
        with pytest.raises(RpcFailure) as failure:
            rpc_call(url, method, params)
        assert failure.value.code == code, (method, params, failure.value.error)
        assert words in failure.value.message
    assert rpc_call(url, "trace_transaction", ["0x" + "ab" * 32]) is None


def test_timeout_answers_geth_error_and_blocks_keep_coming(chains: dict) -> None:
    """An endless loop traced with a short timeout answers geth's "execution timeout"; a
    transaction sent meanwhile is mined while the trace still runs."""
    w3 = chains["tally"][0]
    loop = "0x5b5f56"  # JUMPDEST PUSH0 JUMP
    target = "0x" + "77" * 20
    request = [
        {"from": USER.address, "to": target},
        "latest",
        {"tracer": "callTracer", "timeout": "3s", "stateOverrides": {target: {"code": loop}}},
    ]
    outcome: dict[str, Any] = {}

    def trace() -> None:
        try:
            rpc_call(chains["node"].url, "debug_traceCall", request)
        except RpcFailure as failure:
            outcome["error"] = failure
        outcome["ended"] = time.monotonic()

    worker = threading.Thread(target=trace)
    started = time.monotonic()
    worker.start()
    time.sleep(0.3)
    receipt = _send(w3, USER, {"to": USER.address, "value": 1, "gas": 21_000})
    mined = time.monotonic()
    worker.join(20)
    assert receipt.status == 1 and mined < outcome["ended"]
    error = outcome["error"]
    assert error.code == -32000 and error.message == "execution timeout"
    assert 2.5 < outcome["ended"] - started < 15


def test_rest_internal_calls_are_role_checked(chains: dict) -> None:
    node = chains["node"]
    w3, receipts = chains["tally"]
    admin = Api(node, admin_key(node))
    tx = _hash(receipts["exercise"])
    auditor = admin.as_(admin.new_key("auditor"))
    body = auditor.ok(f"/transactions/{tx}/calls")
    tree = _trace(w3, "debug_traceTransaction", [tx, {"tracer": "callTracer"}])
    assert body["calls"][0]["type"] == "CALL" and body["calls"][0]["depth"] == 0
    assert [c["type"] for c in body["calls"]] == _types(tree)
    assert body["calls"][0]["gas_used"] == int(tree["gasUsed"], 16)
    assert {c["revert_reason"] for c in body["calls"]} >= {"child: nope"}
    owner = admin.as_(admin.new_key("customer", [USER.address]))
    assert owner.get(f"/transactions/{tx}/calls").status_code == 200
    stranger = admin.as_(admin.new_key("customer", [Account.create().address]))
    assert stranger.get(f"/transactions/{tx}/calls").status_code == 403
    missing = auditor.get(f"/transactions/0x{'ab' * 32}/calls")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert auditor.get("/transactions/0x12/calls").status_code == 400


def _types(frame: dict) -> list[str]:
    out = [frame["type"]]
    for call in frame.get("calls", []):
        out.extend(_types(call))
    return out


def test_struct_logs_are_bounded_in_steps(chains: dict) -> None:
    """Past 100,000 steps the struct logger refuses (-32000) unless `limit` caps what it keeps;
    an out-of-gas loop then still reports its end."""
    url = chains["node"].url
    target = "0x" + "78" * 20
    loop = {target: {"code": "0x5b5f56"}}  # JUMPDEST PUSH0 JUMP
    call = {"from": USER.address, "to": target, "gas": hex(100_000)}
    capped = rpc_call(
        url, "debug_traceCall", [call, "latest", {"limit": 5, "stateOverrides": loop}]
    )
    assert len(capped["structLogs"]) == 5 and capped["failed"] is True
    assert [s["op"] for s in capped["structLogs"][:3]] == ["JUMPDEST", "PUSH0", "JUMP"]
    long_call = {**call, "gas": hex(1_000_000)}
    with pytest.raises(RpcFailure) as failure:
        rpc_call(url, "debug_traceCall", [long_call, "latest", {"stateOverrides": loop}])
    assert failure.value.code == -32000 and "100000 steps" in failure.value.message


def test_rpc_modules_lists_debug_and_trace(chains: dict) -> None:
    modules = rpc_call(chains["node"].url, "rpc_modules")
    assert "debug" in modules and "trace" in modules


def test_block_one_traces_on_a_chain_thousands_of_blocks_long(tmp_path: Path) -> None:
    """Every state is kept: a node whose chain is 2,001 blocks long traces block 1 (replayed on
    the genesis state) over JSON-RPC. The blocks are built into the node's own datadir between
    two starts, by the same `Chain` code the node runs (2,000 blocks at 1 s would take 33 min)."""
    node = NodeProcess(tmp_path / "node", free_port(), free_port(), admin_port=free_port())
    node.start()
    try:
        chain_id = int(str(node.rpc("eth_chainId")), 16)
    finally:
        node.stop()
    store = LevelDBStore(tmp_path / "node" / "chaindata")
    try:
        chainstore = ChainStore(store)
        document = chainstore.genesis_document()
        assert document is not None
        chain = Chain(chainstore, Genesis.from_json(json.loads(document)))
        genesis = chain.head
        validators = QbftExtraData.decode(genesis.extra_data).validators
        extra = QbftExtraData(b"\x00" * 32, tuple(validators), None, 0, ()).encode()
        code = load_artifact("TraceProbe")["bytecode"]
        dev = dev_accounts()[0]
        deploy = {"nonce": 0, "gas": 3_000_000, "gasPrice": 0, "data": code, "chainId": chain_id}
        raw = bytes(dev.sign_transaction(deploy).raw_transaction)
        for number in range(1, 2_002):
            pending = chain.build(
                [decode_transaction(raw)] if number == 1 else [],
                timestamp=genesis.timestamp + number,
                coinbase=validators[0],
                extra_data=extra,
            )
            chain.commit(pending, pending.header)
    finally:
        store.close()
    node.start()
    try:
        assert int(str(node.rpc("eth_blockNumber")), 16) == 2_001
        block = node.rpc("eth_getBlockByNumber", ["0x1", False])
        assert isinstance(block, dict)
        (tx,) = block["transactions"]
        tree = node.rpc("debug_traceTransaction", [tx, {"tracer": "callTracer"}])
        assert isinstance(tree, dict)
        assert tree["type"] == "CREATE" and tree["calls"][0]["type"] == "CREATE"
        traces = node.rpc("trace_block", ["0x1"])
        assert isinstance(traces, list) and [t["type"] for t in traces] == ["create", "create"]
        assert node.rpc("debug_traceBlockByNumber", ["0x7d1"]) == []  # an empty block
    finally:
        node.stop()
