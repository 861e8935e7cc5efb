"""Account history over the REST API against what JSON-RPC says: thousands of transactions
paged with cursors (no gaps, no duplicates, newest first), time/counterparty/amount filters,
token transfers, fees, spending by month and merchant category, settlements, and CSV/JSON
exports of accounts and block ranges."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from tests.conftest import NodeProcess
from tests.test_api_support import (
    TOKEN,
    Api,
    Sender,
    admin_key,
    approve,
    batch_pay,
    fund,
    mint,
    start_node,
    token_transfer,
    token_transfer_external,
)

SENDERS = 4
PER_SENDER = 500


@dataclass
class History:
    api: Api
    node: NodeProcess
    target: str
    senders: list
    sent: dict[str, dict[str, Any]]
    """tx hash -> {from, to, value, receipt} for every transaction of the target."""
    timestamps: dict[int, int]
    dev: list
    token_receipts: list[dict[str, Any]]


def _block_timestamps(node: NodeProcess, numbers: set[int]) -> dict[int, int]:
    result = {}
    for number in numbers:
        block = node.rpc("eth_getBlockByNumber", [hex(number), False])
        result[number] = int(block["timestamp"], 16)
    return result


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = start_node(tmp_path_factory.mktemp("history"))
    yield node
    node.stop()


@pytest.fixture(scope="module")
def history(shared_node: NodeProcess, dev_accounts: list) -> History:
    node, dev = shared_node, dev_accounts
    api = Api(node, admin_key(node))
    sender = Sender(node)
    senders = fund(sender, dev[0], SENDERS)
    target = Account.create()
    plan: list[tuple[Any, str, int]] = [(dev[0], target.address, 10**18)]
    plan += [
        (account, target.address, 1 + n * SENDERS + i)
        for n in range(PER_SENDER)
        for i, account in enumerate(senders)
    ]
    raws = [sender.sign(account, to, value) for account, to, value in plan]
    hashes = sender.send(raws[:1])
    sender.wait(hashes)
    hashes += sender.send(raws[1:])
    outgoing = [sender.sign(target, dev[9].address, 7) for _ in range(3)]
    receipts = sender.wait(hashes)
    hashes_out = sender.send(outgoing)
    receipts += sender.wait(hashes_out)
    plan += [(target, dev[9].address, 7)] * 3
    sent = {
        h: {"from": a.address, "to": to, "value": v, "receipt": r}
        for h, (a, to, v), r in zip(hashes + hashes_out, plan, receipts, strict=True)
    }

    # Wallet-token activity of customer 6: top-ups, payments to merchants, an external
    # payment (which pays a fee), and batch payouts by enterprise 3.
    issuer, customer, enterprise = dev[1], dev[6], dev[3]
    sender.run(
        [
            mint(sender, issuer, customer.address, 400_000, 101),
            mint(sender, issuer, enterprise.address, 400_000, 102),
        ]
    )
    api.put(f"/merchants/{dev[8].address}", {"name": "Corner Shop", "category": "groceries"})
    api.put(f"/merchants/{dev[4].address}", {"name": "Rail Co", "category": "travel"})
    payments = []
    for n in range(60):
        to = (dev[8], dev[4], dev[9])[n % 3].address
        payments.append(token_transfer(sender, customer, to, 100 + n))
    payments.append(token_transfer_external(sender, customer, dev[9].address, 10_000, 1))
    payments.append(approve(sender, enterprise, "0x" + "00" * 18 + "a004", 400_000))
    token_receipts = sender.run(payments)
    token_receipts += sender.run(
        batch_pay(sender, enterprise, [customer.address, dev[7].address], [5 + n, 6], 300 + n)
        for n in range(5)
    )
    blocks = {int(s["receipt"]["blockNumber"], 16) for s in sent.values()}
    blocks |= {int(r["blockNumber"], 16) for r in token_receipts}
    return History(
        api,
        node,
        target.address,
        senders,
        sent,
        _block_timestamps(node, blocks),
        dev,
        token_receipts,
    )


def _expected(
    history: History, keep: Callable[[str, dict[str, Any]], bool] = lambda h, s: True
) -> list[str]:
    """The target's transactions that pass `keep`, newest first, from JSON-RPC receipts."""
    chosen = [(h, s) for h, s in history.sent.items() if keep(h, s)]
    chosen.sort(
        key=lambda item: (
            int(item[1]["receipt"]["blockNumber"], 16),
            int(item[1]["receipt"]["transactionIndex"], 16),
        ),
        reverse=True,
    )
    return [h for h, _ in chosen]


def test_pages_concatenate_to_the_whole_history(history: History) -> None:
    path = f"/accounts/{history.target}/transactions"
    first = history.api.ok(path)
    assert len(first["items"]) == 50 and first["next_cursor"]
    items = history.api.all_pages(path, limit=137)
    hashes = [item["hash"] for item in items]
    assert len(hashes) == len(set(hashes)) == len(history.sent) > 2000
    assert hashes == _expected(history)
    for item in items:
        sent = history.sent[item["hash"]]
        receipt = sent["receipt"]
        assert item["block_number"] == int(receipt["blockNumber"], 16)
        assert item["tx_index"] == int(receipt["transactionIndex"], 16)
        assert item["from"] == sent["from"] and item["to"] == sent["to"]
        assert item["value"] == str(sent["value"])
        assert item["status"] == "success"
        assert item["fee"] == "0" and item["gas_used"] == 21_000
        assert item["timestamp"] == history.timestamps[item["block_number"]]
        assert item["time"] == datetime.fromtimestamp(item["timestamp"], UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        assert item["direction"] == ("out" if sent["from"] == history.target else "in")
    big = history.api.all_pages(path, limit=500)
    assert [item["hash"] for item in big] == hashes


def test_filters_by_counterparty_amount_and_time(history: History) -> None:
    api, path = history.api, f"/accounts/{history.target}/transactions"
    one = history.senders[1].address
    by_party = api.all_pages(path, limit=90, counterparty=one)
    assert [i["hash"] for i in by_party] == _expected(history, lambda h, s: s["from"] == one)
    assert len(by_party) == PER_SENDER

    low, high = 700, 1_300
    by_value = api.all_pages(path, limit=200, min_value=low, max_value=high)
    assert [i["hash"] for i in by_value] == _expected(
        history, lambda h, s: low <= s["value"] <= high
    )

    def stamp(s: dict[str, Any]) -> int:
        return history.timestamps[int(s["receipt"]["blockNumber"], 16)]

    stamps = sorted({stamp(s) for s in history.sent.values()})
    start, end = stamps[len(stamps) // 3], stamps[(2 * len(stamps)) // 3]
    by_time = api.all_pages(path, limit=113, from_time=start, to_time=end)
    expected = _expected(history, lambda h, s: start <= stamp(s) <= end)
    assert expected and [i["hash"] for i in by_time] == expected
    combined = api.all_pages(path, limit=7, from_time=start, counterparty=one, min_value=900)
    assert [i["hash"] for i in combined] == _expected(
        history, lambda h, s: stamp(s) >= start and s["from"] == one and s["value"] >= 900
    )
    assert api.ok(path, from_time=stamps[-1] + 10_000)["items"] == []
    assert api.ok(path, to_time=0)["items"] == []
    for bad in ({"from_time": 5, "to_time": 4}, {"min_value": 2, "max_value": 1}):
        response = api.get(path, **bad)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
    response = api.get(
        path,
        cursor=api.ok(f"/accounts/{history.target}/transfers", limit=1).get("next_cursor")
        or "bG9nOjE6MjozCg",
    )
    assert response.status_code == 400


def test_token_transfers_fees_and_decoded_events(history: History) -> None:
    api, dev = history.api, history.dev
    customer = dev[6].address
    transfers = api.all_pages(f"/accounts/{customer}/transfers", limit=16)
    # 2 top-ups (mint) + 60 payments + 1 external payment and its fee + 5 batch payouts
    kinds = Counter((t["direction"], t["to"]) for t in transfers)
    assert len(transfers) == 2 + 60 + 2 + 5 - 1  # one mint was to the enterprise
    assert kinds[("out", dev[8].address)] == 20
    assert kinds[("in", customer)] == 1 + 5
    fees = api.ok(f"/accounts/{customer}/fees")["items"]
    assert len(fees) == 1
    fee = fees[0]
    assert fee["kind"] == "external" and fee["amount"] == "10000"
    assert fee["payer"] == customer and fee["recipient"] == dev[9].address
    quote = api.ok(
        "/fees/quote",
        **{"from": customer, "to": dev[9].address, "amount": 10_000, "kind": "external"},
    )
    assert quote["fee"] == fee["fee"] and int(quote["total"]) == 10_000 + int(fee["fee"])
    collected = [t for t in transfers if t["to"] == dev[0].address]
    assert [t["amount"] for t in collected] == [fee["fee"]]

    only_shop = api.all_pages(f"/accounts/{customer}/transfers", counterparty=dev[8].address)
    assert len(only_shop) == 20
    assert api.all_pages(f"/accounts/{customer}/transfers", token=dev[9].address) == []
    assert len(api.all_pages(f"/accounts/{customer}/transfers", token=TOKEN)) == len(transfers)

    detail = api.ok(f"/transactions/{fee['tx_hash']}")
    assert detail["status"] == "success" and detail["from"] == customer
    names = [event["event"] for event in detail["events"]]
    assert "FeeCharged" in names and names.count("Transfer") == 2
    charged = next(e for e in detail["events"] if e["event"] == "FeeCharged")
    assert charged["contract"] == "WalletToken"
    assert charged["args"]["fee"] == fee["fee"] and charged["args"]["from"] == customer
    receipt = history.node.rpc("eth_getTransactionReceipt", [fee["tx_hash"]])
    assert [e["log_index"] for e in detail["events"]] == [
        int(log["logIndex"], 16) for log in receipt["logs"]
    ]

    account = api.ok(f"/accounts/{customer}")
    balance = history.node.rpc(
        "eth_call",
        [{"to": TOKEN, "data": "0x70a08231" + customer[2:].lower().rjust(64, "0")}, "latest"],
    )
    assert int(account["token_balance"]) == int(str(balance), 16)
    assert account["role"] == "customer" and account["kyc_tier"] == 1
    assert account["frozen"] is False and account["is_contract"] is False
    assert int(account["points"]) > 0


def test_spending_by_month_and_merchant_category(history: History) -> None:
    api, dev = history.api, history.dev
    customer = dev[6].address
    transfers = api.all_pages(f"/accounts/{customer}/transfers", limit=500)
    category = {dev[8].address: "groceries", dev[4].address: "travel", dev[0].address: "fees"}
    by_month: dict[str, int] = defaultdict(int)
    by_category: dict[str, int] = defaultdict(int)
    for t in transfers:
        if t["direction"] != "out":
            continue
        by_month[t["time"][:7]] += int(t["amount"])
        by_category[category.get(t["to"], "uncategorised")] += int(t["amount"])
    spending = api.ok(f"/accounts/{customer}/spending")
    assert spending["by_month"] == [
        {"month": m, "total": str(v)} for m, v in sorted(by_month.items())
    ]
    assert {c["category"]: int(c["total"]) for c in spending["by_category"]} == by_category
    assert int(spending["total"]) == sum(by_category.values())
    assert set(by_category) == {"groceries", "travel", "fees", "uncategorised"}
    future = api.ok(f"/accounts/{customer}/spending", from_time=2**39)
    assert future["total"] == "0" and future["by_month"] == []


def test_settlement_pages(history: History) -> None:
    api, dev = history.api, history.dev
    batches = api.all_pages("/settlements", limit=2, party=dev[7].address, kind="batch")
    assert len(batches) == 5
    ids = [b["id"] for b in batches]
    assert ids == sorted(ids, reverse=True)
    for batch in batches:
        assert batch["state"] == "paid" and batch["parties"][0] == dev[3].address
        assert batch["opened"]["name"] == "PayeePaid" and batch["updated"]["name"] == "BatchPaid"
        assert api.ok(f"/settlements/batch/{batch['id']}") == batch


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


def test_account_exports_match_the_pages(history: History) -> None:
    api, path = history.api, f"/accounts/{history.target}"
    pages = api.all_pages(path + "/transactions", limit=500)
    as_json = api.get(path + "/export", format="json")
    assert as_json.status_code == 200
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json() == pages
    as_csv = api.get(path + "/export", format="csv", kind="transactions")
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = _csv(as_csv.text)
    assert rows == [{k: _as_text(v) for k, v in item.items()} for item in pages]

    one = history.senders[2].address
    filtered = api.get(path + "/export", format="json", counterparty=one, min_value=1_000)
    assert filtered.json() == api.all_pages(
        path + "/transactions", limit=500, counterparty=one, min_value=1_000
    )
    customer = f"/accounts/{history.dev[6].address}"
    for kind in ("transfers", "fees"):
        exported = api.get(customer + "/export", format="json", kind=kind).json()
        assert exported == api.all_pages(f"{customer}/{kind}", limit=500)
        rows = _csv(api.get(customer + "/export", format="csv", kind=kind).text)
        assert [r["tx_hash"] for r in rows] == [item["tx_hash"] for item in exported]


def test_block_pages_and_export_match_json_rpc(history: History) -> None:
    api, node = history.api, history.node
    head = int(str(node.rpc("eth_blockNumber")), 16)
    blocks = api.all_pages("/blocks", limit=7)
    assert [b["number"] for b in blocks[: head + 1]][:1] == [head] or blocks[0]["number"] >= head
    numbers = [b["number"] for b in blocks]
    assert numbers == list(range(numbers[0], -1, -1))
    low, high = max(0, head - 12), head
    exported = api.get("/blocks/export", from_block=low, to_block=high, format="json").json()
    assert [b["number"] for b in exported] == list(range(low, high + 1))
    for block in exported:
        rpc = node.rpc("eth_getBlockByNumber", [hex(block["number"]), False])
        assert block["hash"] == rpc["hash"] and block["parent_hash"] == rpc["parentHash"]
        assert block["timestamp"] == int(rpc["timestamp"], 16)
        assert block["tx_count"] == len(rpc["transactions"])
        assert block["gas_used"] == int(rpc["gasUsed"], 16)
        assert block["state_root"] == rpc["stateRoot"]
        assert block["proposer"] == to_checksum_address(rpc["miner"])
        detail = api.ok(f"/blocks/{block['number']}")
        assert detail["transactions"] == rpc["transactions"]
        assert detail["commit_seals"]["valid"] is True
        assert detail["commit_seals"]["count"] == (1 if block["number"] else 0)
        assert api.ok(f"/blocks/{block['hash']}") == detail
    rows = _csv(api.get("/blocks/export", from_block=low, to_block=high).text)
    assert [int(r["number"]) for r in rows] == list(range(low, high + 1))
    assert api.get("/blocks/export", from_block=high + 5).status_code == 400
