"""`eth_getLogs` and the polled filters against a real `tally dev` node.

Two Probe contracts are poked by two accounts in separate blocks; every query is checked
against the logs the receipts reported, so a wrong log index, block or match shows up.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from eth_account.signers.local import LocalAccount
from eth_bloom import BloomFilter
from web3 import Web3
from web3.contract import Contract

from node.chain.notifications import ChainEvents, CommittedBlock
from node.rpc.errors import RpcError
from node.rpc.filters import FiltersApi
from node.rpc.logquery import BloomProbe, LogCriteria, parse_criteria
from tests.conftest import NodeProcess, RpcFailure, fresh_funded_account
from tests.rpc_txs import POKED_TOPIC, address_topic, deploy, poke_tx, send, sign


@dataclass
class Pokes:
    alice: LocalAccount
    bob: LocalAccount
    probe: Contract
    other: Contract
    deploy_block: int
    receipts: list[dict]  # raw JSON receipts: alice 11 on probe, bob 22 on probe, alice 33 other


@pytest.fixture(scope="module")
def pokes(w3: Web3, shared_node: NodeProcess, dev_accounts: list[LocalAccount]) -> Pokes:
    alice = fresh_funded_account(w3, dev_accounts[0])
    bob = fresh_funded_account(w3, dev_accounts[0])
    probe = deploy(w3, alice, "Probe")
    other = deploy(w3, alice, "Probe")
    deploy_block = w3.eth.block_number
    receipts = []
    for sender, contract, value in ((alice, probe, 11), (bob, probe, 22), (alice, other, 33)):
        mined = send(w3, sender, poke_tx(contract, value))
        receipts.append(
            shared_node.rpc("eth_getTransactionReceipt", [mined["transactionHash"].to_0x_hex()])
        )
    return Pokes(alice, bob, probe, other, deploy_block, receipts)


def logs_of(*receipts: dict) -> list[dict]:
    return [log for receipt in receipts for log in receipt["logs"]]


def get_logs(node: NodeProcess, **query: object) -> list[dict]:
    return node.rpc("eth_getLogs", [query])


def values(logs: list[dict]) -> list[int]:
    return [int(log["data"], 16) for log in logs]


# --- eth_getLogs ---------------------------------------------------------------------------------


def test_logs_by_address_match_the_receipts(shared_node: NodeProcess, pokes: Pokes) -> None:
    found = get_logs(shared_node, fromBlock=hex(pokes.deploy_block), address=pokes.probe.address)
    assert found == logs_of(*pokes.receipts[:2])
    assert values(found) == [11, 22]
    assert [log["topics"] for log in found] == [
        [POKED_TOPIC, address_topic(pokes.alice.address)],
        [POKED_TOPIC, address_topic(pokes.bob.address)],
    ]
    both = get_logs(
        shared_node,
        fromBlock=hex(pokes.deploy_block),
        address=[pokes.probe.address, pokes.other.address],
    )
    assert both == logs_of(*pokes.receipts)


def test_logs_by_topics_positional_wildcard_and_or(shared_node: NodeProcess, pokes: Pokes) -> None:
    start = hex(pokes.deploy_block)
    alice, bob = address_topic(pokes.alice.address), address_topic(pokes.bob.address)
    by_alice = get_logs(shared_node, fromBlock=start, topics=[POKED_TOPIC, alice])
    assert values(by_alice) == [11, 33]
    assert values(get_logs(shared_node, fromBlock=start, topics=[None, bob])) == [22]
    either = get_logs(
        shared_node,
        fromBlock=start,
        address=pokes.probe.address,
        topics=[[POKED_TOPIC], [alice, bob]],
    )
    assert values(either) == [11, 22]
    assert get_logs(shared_node, fromBlock=start, topics=["0x" + "ab" * 32]) == []
    # a topic in the wrong position matches nothing
    assert get_logs(shared_node, fromBlock=start, topics=[alice]) == []


def test_logs_by_block_range(shared_node: NodeProcess, pokes: Pokes) -> None:
    second = int(pokes.receipts[1]["blockNumber"], 16)
    assert values(get_logs(shared_node, fromBlock=hex(second), toBlock=hex(second))) == [22]
    assert values(get_logs(shared_node, fromBlock=hex(second))) == [22, 33]
    assert values(
        get_logs(shared_node, fromBlock=hex(pokes.deploy_block), toBlock=hex(second - 1))
    ) == [11]
    head = int(shared_node.rpc("eth_blockNumber"), 16)
    with pytest.raises(RpcFailure) as failure:  # execution-apis: a range past the head
        get_logs(shared_node, fromBlock=hex(head + 5), toBlock=hex(head + 9))
    assert (failure.value.code, failure.value.message) == (
        -32602,
        "block range extends beyond current head block",
    )
    # the default range is the latest block only (no test before this one sends transactions)
    assert head == int(pokes.receipts[2]["blockNumber"], 16)
    assert get_logs(shared_node) == logs_of(pokes.receipts[2])
    with pytest.raises(RpcFailure) as failure:  # from "latest" back to an older block
        get_logs(shared_node, toBlock=hex(second))
    assert failure.value.code == -32602


def test_logs_by_block_hash(shared_node: NodeProcess, pokes: Pokes) -> None:
    first = pokes.receipts[0]
    assert get_logs(shared_node, blockHash=first["blockHash"]) == first["logs"]
    assert get_logs(shared_node, blockHash=first["blockHash"], address=pokes.other.address) == []


def test_block_hash_excludes_a_range(shared_node: NodeProcess, pokes: Pokes) -> None:
    with pytest.raises(RpcFailure) as failure:
        get_logs(shared_node, blockHash=pokes.receipts[0]["blockHash"], fromBlock="0x1")
    assert failure.value.code == -32602
    with pytest.raises(RpcFailure) as failure:
        get_logs(shared_node, blockHash="0x" + "12" * 32)
    assert (failure.value.code, failure.value.message) == (-32000, "unknown block")


def test_block_range_cap(shared_node: NodeProcess) -> None:
    with pytest.raises(RpcFailure) as failure:
        get_logs(shared_node, fromBlock="0x0", toBlock=hex(10_000))
    assert failure.value.code == -32005
    assert failure.value.message == "query exceeds max block range 10000"
    with pytest.raises(RpcFailure) as failure:  # within the cap: refused only as past the head
        get_logs(shared_node, fromBlock="0x0", toBlock=hex(9_999))
    assert failure.value.code == -32602
    with pytest.raises(RpcFailure) as failure:
        get_logs(shared_node, fromBlock="0x1", toBlock=hex(20_000))
    assert failure.value.code == -32005


@pytest.mark.parametrize(
    "query",
    [
        {"fromBlock": "0x5", "toBlock": "0x4"},
        {"address": "0x1234"},
        {"address": 7},
        {"topics": "0x" + "00" * 32},
        {"topics": ["0x1234"]},
        {"topics": [None] * 5},
        {"fromBlock": "yesterday"},
    ],
)
def test_invalid_log_queries_are_invalid_params(shared_node: NodeProcess, query: dict) -> None:
    with pytest.raises(RpcFailure) as failure:
        get_logs(shared_node, **query)
    assert failure.value.code == -32602


def test_web3_decodes_the_logs(w3: Web3, pokes: Pokes) -> None:
    events = pokes.probe.events.Poked.get_logs(from_block=pokes.deploy_block)
    assert [(e["args"]["who"], e["args"]["value"]) for e in events] == [
        (pokes.alice.address, 11),
        (pokes.bob.address, 22),
    ]


def test_header_bloom_admits_what_the_block_holds(shared_node: NodeProcess, pokes: Pokes) -> None:
    block = shared_node.rpc("eth_getBlockByHash", [pokes.receipts[1]["blockHash"], False])
    bloom = int(block["logsBloom"], 16)
    assert bloom == int(pokes.receipts[1]["logsBloom"], 16) != 0

    def may_match(criteria: dict) -> bool:
        return BloomProbe(parse_criteria(criteria)).may_match(bloom)

    assert may_match({"address": pokes.probe.address})
    assert may_match({"topics": [None, address_topic(pokes.bob.address)]})
    assert not may_match({"address": pokes.other.address})
    assert not may_match({"topics": [None, address_topic(pokes.alice.address)]})
    assert not BloomProbe(LogCriteria()).may_match(0)


# --- filters -------------------------------------------------------------------------------------


def test_block_filter_collects_new_block_hashes(
    w3: Web3, shared_node: NodeProcess, pokes: Pokes
) -> None:
    filter_id = shared_node.rpc("eth_newBlockFilter")
    assert isinstance(filter_id, str) and filter_id.startswith("0x") and int(filter_id, 16) >= 0
    assert shared_node.rpc("eth_getFilterChanges", [filter_id]) == []
    receipt = send(w3, pokes.alice, {"to": pokes.bob.address, "value": 1, "gas": 21_000})
    assert shared_node.rpc("eth_getFilterChanges", [filter_id]) == [
        receipt["blockHash"].to_0x_hex()
    ]
    assert shared_node.rpc("eth_getFilterChanges", [filter_id]) == []
    assert shared_node.rpc("eth_uninstallFilter", [filter_id]) is True


def test_pending_filter_collects_admitted_transactions(
    w3: Web3, shared_node: NodeProcess, pokes: Pokes
) -> None:
    filter_id = shared_node.rpc("eth_newPendingTransactionFilter")
    raw = sign(w3, pokes.bob, {"to": pokes.alice.address, "value": 2, "gas": 21_000})
    tx_hash = shared_node.rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
    assert shared_node.rpc("eth_getFilterChanges", [filter_id]) == [tx_hash]
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert shared_node.rpc("eth_getFilterChanges", [filter_id]) == []
    assert shared_node.rpc("eth_uninstallFilter", [filter_id]) is True


def test_log_filter_collects_matching_logs_of_new_blocks(
    w3: Web3, shared_node: NodeProcess, pokes: Pokes
) -> None:
    filter_id = shared_node.rpc(
        "eth_newFilter",
        [
            {
                "fromBlock": hex(pokes.deploy_block),
                "address": pokes.probe.address,
                "topics": [POKED_TOPIC],
            }
        ],
    )
    bounded = shared_node.rpc("eth_newFilter", [{"toBlock": shared_node.rpc("eth_blockNumber")}])
    assert filter_id != bounded
    mine = send(w3, pokes.bob, poke_tx(pokes.probe, 44))
    send(w3, pokes.alice, poke_tx(pokes.other, 55))
    receipt = shared_node.rpc("eth_getTransactionReceipt", [mine["transactionHash"].to_0x_hex()])
    changes = shared_node.rpc("eth_getFilterChanges", [filter_id])
    assert changes == receipt["logs"]
    assert values(changes) == [44]
    assert shared_node.rpc("eth_getFilterChanges", [filter_id]) == []
    # getFilterLogs re-runs the whole query, from the filter's fromBlock
    assert values(shared_node.rpc("eth_getFilterLogs", [filter_id])) == [11, 22, 44]
    # a filter bounded by toBlock never sees later blocks
    assert shared_node.rpc("eth_getFilterChanges", [bounded]) == []
    for each in (filter_id, bounded):
        assert shared_node.rpc("eth_uninstallFilter", [each]) is True


def test_uninstalled_and_unknown_filters(shared_node: NodeProcess) -> None:
    filter_id = shared_node.rpc("eth_newBlockFilter")
    with pytest.raises(RpcFailure) as failure:
        shared_node.rpc("eth_getFilterLogs", [filter_id])  # not a log filter
    assert (failure.value.code, failure.value.message) == (-32000, "filter not found")
    assert shared_node.rpc("eth_uninstallFilter", [filter_id]) is True
    assert shared_node.rpc("eth_uninstallFilter", [filter_id]) is False
    for method in ("eth_getFilterChanges", "eth_getFilterLogs"):
        with pytest.raises(RpcFailure) as failure:
            shared_node.rpc(method, [filter_id])
        assert (failure.value.code, failure.value.message) == (-32000, "filter not found")
    with pytest.raises(RpcFailure) as failure:
        shared_node.rpc("eth_getFilterChanges", ["0xdeadbeef"])
    assert failure.value.code == -32000


def test_invalid_filter_ranges_are_refused(shared_node: NodeProcess) -> None:
    with pytest.raises(RpcFailure) as failure:
        shared_node.rpc("eth_newFilter", [{"fromBlock": "0x9", "toBlock": "0x2"}])
    assert failure.value.code == -32602


def test_web3_filter_api(w3: Web3, pokes: Pokes) -> None:
    event_filter = pokes.probe.events.Poked.create_filter(from_block="latest")
    send(w3, pokes.alice, poke_tx(pokes.probe, 66))
    assert [entry["args"]["value"] for entry in event_filter.get_new_entries()] == [66]
    assert w3.eth.uninstall_filter(event_filter.filter_id) is True


# --- expiry and caps, on a driven clock (no node) -----------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def changes(filters: FiltersApi, filter_id: str) -> list:
    return asyncio.run(filters.get_filter_changes(filter_id))


def block_event(number: int) -> CommittedBlock:
    header = SimpleNamespace(block_number=number, bloom=int(BloomFilter()))
    return CommittedBlock(number.to_bytes(32, "big"), header, ())  # type: ignore[arg-type]


def test_filters_expire_after_five_minutes_without_a_poll() -> None:
    clock, events = Clock(), ChainEvents()
    filters = FiltersApi(None, events, clock=clock)  # type: ignore[arg-type]
    polled, idle = filters.new_block_filter(), filters.new_block_filter()
    clock.now += 200
    events.publish_block(block_event(1))
    assert changes(filters, polled) == ["0x" + "00" * 31 + "01"]
    clock.now += 200  # idle: 400 s since its last poll; polled: 200 s
    events.publish_block(block_event(2))
    assert len(filters) == 1
    with pytest.raises(RpcError, match="filter not found"):
        changes(filters, idle)
    assert changes(filters, polled) == ["0x" + "00" * 31 + "02"]
    clock.now += 299
    assert changes(filters, polled) == []
    clock.now += 301
    with pytest.raises(RpcError, match="filter not found"):
        changes(filters, polled)
    assert len(filters) == 0


def test_filter_buffers_keep_only_the_newest_items() -> None:
    events = ChainEvents()
    filters = FiltersApi(None, events, max_buffered=3)  # type: ignore[arg-type]
    pending = filters.new_pending_filter()
    for n in range(5):
        events.publish_pending(bytes([n]) * 32)
    assert changes(filters, pending) == ["0x" + f"{n:02x}" * 32 for n in (2, 3, 4)]
    assert filters.uninstall_filter(pending.upper().replace("0X", "0x")) is True
