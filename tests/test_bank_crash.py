"""kill -9 at every step of a top-up and a withdrawal, then restart: nothing lost or doubled.

The gateway hard-exits (`os._exit`, as a kill -9 leaves it: nothing flushed or cleaned up) at
the crash point `TALLY_BANK_CRASH_AT` names (`bank.crash`). Each restart names the next point,
so one top-up is carried through every step by successive crashes, and so is one withdrawal;
a clean restart then finishes them. At the end: captured = minted (each reference minted once
on chain), paid out = burned (one payout, one burn). The resent mint and burn after the
`outbox.sent` crashes are refused by WalletToken, and the gateway counts them done only after
reading the chain.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bank.crash import CRASH_EXIT, ENV
from client import FileKeyStore
from client.tokens import WalletToken, WithdrawalStatus
from client.wallet import Wallet
from tests.bank_support import (
    CUSTOMER,
    ISSUER,
    PASSWORD,
    TOKEN,
    PostgresCluster,
    Stack,
    gateway,
    make_key,
    minted_events,
    node_api_key,
    simulator,
    write_keys,
)
from tests.conftest import NodeProcess, free_port, web3_for
from tests.test_bank_gateway import balance, request_withdrawal

# Runs alone, after the parallel tests (scripts/test.sh): kill -9 loops of a node and the gateway.
pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, shared_node: NodeProcess, dev_accounts: list
) -> Iterator[Stack]:
    """As test_bank_gateway's, but the gateway is not started: each test drives it."""
    tmp: Path = tmp_path_factory.mktemp("bank-crash")
    postgres = PostgresCluster().start()
    gateway_port = free_port()
    sim = simulator(tmp, gateway_port).start()
    keys = write_keys(tmp / "keys", dev_accounts, {ISSUER: "issuer", CUSTOMER: "customer"})
    db = postgres.create_database()
    gw = gateway(
        tmp, gateway_port, shared_node.url, sim.url, keys, db,
        node_api_key(shared_node.url, shared_node.datadir),
    )  # fmt: skip
    gw.args += ["--recover-after", "1"]
    try:
        from bank.db import make_engine, upgrade

        engine = make_engine(db)
        upgrade(engine)
        engine.dispose()
        customer = dev_accounts[CUSTOMER].address
        yield Stack(
            shared_node.url, sim, gw, keys, db, customer,
            make_key(db, "customer", customer), make_key(db, "operations"),
        )  # fmt: skip
    finally:
        gw.stop()
        sim.stop()
        postgres.stop()


def crash_at(stack: Stack, point: str, action: object = None) -> None:
    """Start the gateway set to die at `point`, do `action`, and see it die there."""
    seen = len(stack.gateway.log_text())
    stack.gateway.start({ENV: point}, may_exit=True)
    if callable(action):
        with contextlib.suppress(httpx.HTTPError):  # the connection dies with the gateway
            action()
    code = stack.gateway.wait_exit(60)
    log = stack.gateway.log_text()[seen:]
    assert code == CRASH_EXIT, log[-3000:]
    assert log.count(f"crash point {point}:") == 1


def test_kill9_at_every_step_then_restart_conserves_totals(
    stack: Stack, shared_node: NodeProcess
) -> None:
    chain = web3_for(shared_node.url)
    before = balance(chain, stack.customer)
    topup_a = "crash-topup-a"

    def submit_a() -> None:
        stack.topup(topup_a, 11_00)

    # One top-up (A) through every step, a crash at each.
    crash_at(stack, "topup.received", submit_a)  # recorded; the rail never asked
    crash_at(stack, "topup.authorized", submit_a)  # the client's retry resumes it
    crash_at(stack, "topup.captured")  # recovery: the rail says authorized: capture
    crash_at(stack, "topup.recorded")  # recovery or callback: capture + mint recorded
    crash_at(stack, "outbox.sent")  # mint sent, its hash not recorded
    # A's mint is resent (and refused: done); then B crashes after its hash is recorded.
    crash_at(stack, "outbox.recorded", lambda: stack.topup("crash-topup-b", 22_00))

    # One withdrawal through every step (the follower's checkpoint survives each crash);
    # B's mint is settled along the way.
    withdrawal_id = request_withdrawal(stack, 10_00)
    crash_at(stack, "withdrawal.recorded")  # committed, not acknowledged to the node's stream
    recorded = len(stack.gateway.log_text())
    crash_at(stack, "withdrawal.paid")
    crash_at(stack, "outbox.sent")  # burn sent, hash not recorded

    stack.gateway.start()
    a = stack.topup(topup_a, 11_00).json()
    b = stack.topup("crash-topup-b", 22_00).json()
    stack.wait_topup(a["id"])
    stack.wait_topup(b["id"])
    view = stack.wait_withdrawal(withdrawal_id, "burned")
    log = stack.gateway.log_text()
    assert ", 0 new" in log[recorded:]  # the unacknowledged request came again: recorded once
    assert log.count("done already by") == 2, log[-5000:]  # the resent mint and burn
    for topup, amount in ((a, 11_00), (b, 22_00)):
        assert [e["amount"] for e in minted_events(chain, topup["reference"])] == [amount]
        assert stack.ledger()[topup["reference"][2:]]["history"] == ["authorized", "captured"]
    assert stack.ledger()[f"wd-{withdrawal_id}"]["history"] == ["paid"]
    issuer = Wallet(FileKeyStore(stack.keys, PASSWORD), "issuer", stack.node_url)
    assert WalletToken(issuer, TOKEN).withdrawal(withdrawal_id)[2] is WithdrawalStatus.BURNED
    assert view["chain_tx"], log[-5000:]
    assert chain.eth.get_transaction_receipt(view["chain_tx"])["status"] == 1
    assert balance(chain, stack.customer) == before + 33_00 - 10_00
    totals = stack.get("/totals").json()
    assert (totals["captured"], totals["minted"]) == (33_00, 33_00)
    assert (totals["paid_out"], totals["burned"]) == (10_00, 10_00)
    assert totals["outbox_open"] == 0


def stream_state(stack: Stack, node: NodeProcess) -> tuple[str, dict]:
    """The gateway's node stream (its id from the gateway's database) as the node shows it."""
    from bank.db import make_engine, sessions
    from bank.models import Checkpoint

    engine = make_engine(stack.db)
    try:
        with sessions(engine)() as session:
            checkpoint = session.get(Checkpoint, "withdrawals")
            assert checkpoint is not None and checkpoint.stream_id is not None
            stream_id = checkpoint.stream_id
    finally:
        engine.dispose()
    response = httpx.get(
        f"{node.url}/api/v1/streams/{stream_id}", headers=admin_header(node), timeout=30
    )
    return stream_id, response.json() if response.status_code == 200 else {}


def admin_header(node: NodeProcess) -> dict[str, str]:
    return {"authorization": "Bearer " + (node.datadir / "api-admin.key").read_text().strip()}


def test_node_kill9_or_a_lost_stream_skips_and_doubles_nothing(
    stack: Stack, shared_node: NodeProcess
) -> None:
    """The node is killed (-9) right after a withdrawal request, and later loses the gateway's
    stream altogether (deleted): the gateway reconnects, or makes a new stream from its own
    checkpoint, and each request is paid out and burned exactly once."""
    if stack.gateway.process is None or stack.gateway.process.poll() is not None:
        stack.gateway.start()
    stack.wait_topup(stack.topup("kill-node-topup", 40_00).json()["id"])
    seen = len(stack.gateway.log_text())
    first = request_withdrawal(stack, 5_00)
    shared_node.kill9()
    shared_node.start()
    second = request_withdrawal(stack, 6_00)
    stack.wait_withdrawal(first, "burned", timeout=60)
    stack.wait_withdrawal(second, "burned", timeout=60)
    assert "withdrawal stream closed" in stack.gateway.log_text()[seen:] or (
        "reconnecting" in stack.gateway.log_text()[seen:]
    )
    stream_id, node_view = stream_state(stack, shared_node)
    assert node_view["checkpoint"] is not None

    # the node loses the stream: a new one starts at the gateway's checkpoint
    deleted = httpx.delete(
        f"{shared_node.url}/api/v1/streams/{stream_id}",
        headers=admin_header(shared_node),
        timeout=30,
    )
    assert deleted.status_code == 204
    before_loss = len(stack.gateway.log_text())
    third = request_withdrawal(stack, 7_00)
    stack.wait_withdrawal(third, "burned", timeout=60)
    new_id, new_view = stream_state(stack, shared_node)
    assert new_id != stream_id
    assert new_view["from_block"] <= node_view["checkpoint"]["block_number"]
    log = stack.gateway.log_text()[before_loss:]
    assert f"stream {stream_id} is gone from the node" in log, log[-3000:]
    batches = [
        tuple(map(int, m)) for m in re.findall(r"stream: (\d+) events to .*, (\d+) new", log)
    ]
    assert any(events > new for events, new in batches), log  # the second request came again
    assert sum(new for _, new in batches) == 1  # ...but only the third is new

    ledger = stack.ledger()
    for withdrawal_id, amount in ((first, 5_00), (second, 6_00), (third, 7_00)):
        assert ledger[f"wd-{withdrawal_id}"]["history"] == ["paid"]
        assert ledger[f"wd-{withdrawal_id}"]["amount"] == amount
    ids = [w["id"] for w in stack.get("/withdrawals").json()]
    assert len(ids) == len(set(ids)) and {first, second, third} <= set(ids)
    totals = stack.get("/totals").json()
    assert totals["paid_out"] == totals["burned"]
