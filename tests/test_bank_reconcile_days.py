"""Reconciliation reads only its day's blocks, on a chain with earlier days in it.

The node first runs two days back (libfaketime shifts its wall clock, so its blocks are
stamped then) while the issuer mints twice with no card capture behind either; then it runs
on the real clock and the gateway tops a customer up. Today's report matches the top-up and
names no break, reading from the first block of today on: the earlier mints are not
counted, nor even read. The report of two days ago names exactly those two mints. And a
top-up captured at 23:59 whose mint lands after midnight matches on its own day (the chain is
read 2 hours into the next) and counts nowhere on the next.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import FileKeyStore
from client.tokens import WalletToken
from client.wallet import Wallet
from tests.bank_support import (
    CUSTOMER,
    ISSUER,
    PASSWORD,
    TOKEN,
    Stack,
    gateway,
    make_key,
    node_api_key,
    simulator,
    write_keys,
)
from tests.conftest import NodeProcess, free_port

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
DAYS_BACK = 2


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path / "node", free_port(), free_port())
    yield node
    node.stop()


def faked(clock: str) -> dict[str, str]:
    """The environment that runs a process on libfaketime's `clock` (monotonic time real)."""
    if not FAKETIME.exists():
        pytest.fail(f"{FAKETIME} is missing (Debian: apt-get install libfaketime)")
    return {
        "LD_PRELOAD": str(FAKETIME),
        "FAKETIME": clock,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
    }


def start_faked(node: NodeProcess, monkeypatch: pytest.MonkeyPatch, clock: str) -> None:
    with monkeypatch.context() as patched:
        for name, value in faked(clock).items():
            patched.setenv(name, value)
        node.start()


def test_a_day_counts_only_its_own_blocks(
    node: NodeProcess, tmp_path: Path, dev_accounts: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = write_keys(tmp_path / "keys", dev_accounts, {ISSUER: "issuer"})
    customer = dev_accounts[CUSTOMER].address
    start_faked(node, monkeypatch, f"-{DAYS_BACK}d")
    token = WalletToken(Wallet(FileKeyStore(keys, PASSWORD), "issuer", node.url), TOKEN)
    earlier: dict[str, int] = {}
    for amount in (7_00, 8_00):
        reference = secrets.token_bytes(32)
        sent = token.mint(customer, amount, reference)
        assert sent.receipt is not None
        earlier[reference.hex()] = int(sent.receipt.raw["blockNumber"], 16)
    header = node.rpc("eth_getBlockByNumber", [hex(max(earlier.values())), False])
    assert isinstance(header, dict)
    then = datetime.datetime.fromtimestamp(int(header["timestamp"], 16), datetime.UTC).date()
    today = datetime.datetime.now(datetime.UTC).date()
    assert (today - then).days == DAYS_BACK  # the clock shift took

    node.stop()
    node.start()  # the real clock from here on
    port = free_port()
    sim = simulator(tmp_path, port).start()
    gw = gateway(
        tmp_path, port, node.url, sim.url, keys, None, node_api_key(node.url, node.datadir)
    )
    try:
        gw.start()
        db = f"sqlite:///{tmp_path / 'bank-data' / 'bank.sqlite3'}"
        stack = Stack(node.url, sim, gw, keys, db, customer,
                      make_key(db, "customer", customer), make_key(db, "operations"))  # fmt: skip
        topup = stack.wait_topup(stack.topup("days-topup-1", 3_00).json()["id"])
        mint_block = node.rpc("eth_getTransactionReceipt", [topup["mint_tx"]])
        assert isinstance(mint_block, dict)

        report = stack.get(f"/reconciliation/{today}").json()
        assert report["breaks"] == [], report
        assert (report["matched_topups"], report["matched_topup_total"]) == (1, 3_00)
        assert report["first_block"] > max(earlier.values())  # the earlier days are not read
        assert report["first_block"] <= int(mint_block["blockNumber"], 16) <= report["last_block"]

        past = stack.get(f"/reconciliation/{then}").json()
        assert past["matched_topups"] == 0
        assert sorted((b["kind"], b["reference"], b["chain_amount"]) for b in past["breaks"]) == (
            sorted(("mint without capture", ref, amount)
                   for ref, amount in zip(earlier, (7_00, 8_00), strict=True))
        )  # fmt: skip
        assert past["last_block"] < report["first_block"]
    finally:
        gw.stop()
        sim.stop()


def test_a_mint_after_midnight_settles_the_day_before(
    node: NodeProcess, tmp_path: Path, dev_accounts: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card is captured at 23:59 (the gateway's and the rail's clocks) and the mint lands
    in a block stamped after midnight (the node's): that day's report matches all three
    (the chain is read into the margin), and the next day's counts the mint nowhere."""
    today = datetime.datetime.now(datetime.UTC).date()
    yesterday = today - datetime.timedelta(days=1)
    start_faked(node, monkeypatch, f"@{today} 00:00:20")
    keys = write_keys(tmp_path / "keys", dev_accounts, {ISSUER: "issuer"})
    customer = dev_accounts[CUSTOMER].address
    before_midnight = faked(f"@{yesterday} 23:59:30")
    port = free_port()
    sim = simulator(tmp_path, port).start(before_midnight)
    gw = gateway(
        tmp_path, port, node.url, sim.url, keys, None, node_api_key(node.url, node.datadir)
    )
    try:
        gw.start(before_midnight)
        db = f"sqlite:///{tmp_path / 'bank-data' / 'bank.sqlite3'}"
        stack = Stack(node.url, sim, gw, keys, db, customer,
                      make_key(db, "customer", customer), make_key(db, "operations"))  # fmt: skip
        topup = stack.wait_topup(stack.topup("midnight-topup", 4_00).json()["id"])
        receipt = node.rpc("eth_getTransactionReceipt", [topup["mint_tx"]])
        assert isinstance(receipt, dict)
        header = node.rpc("eth_getBlockByNumber", [receipt["blockNumber"], False])
        assert isinstance(header, dict)
        stamped = datetime.datetime.fromtimestamp(int(header["timestamp"], 16), datetime.UTC)
        assert stamped.date() == today  # minted after midnight

        report = stack.get(f"/reconciliation/{yesterday}").json()
        assert report["breaks"] == [], report
        assert (report["matched_topups"], report["matched_topup_total"]) == (1, 4_00)
        assert report["last_block"] >= int(receipt["blockNumber"], 16)
        next_day = stack.get(f"/reconciliation/{today}").json()
        assert next_day["breaks"] == [] and next_day["matched_topups"] == 0, next_day
    finally:
        gw.stop()
        sim.stop()
