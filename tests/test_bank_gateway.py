"""The bank gateway end to end: a `tally dev` node, the card simulator and the gateway as
processes, the gateway on a throwaway PostgreSQL cluster. Top-ups (once, idempotent, each
injected rail fault), withdrawals (paid then burned; a rail failure rejected with its reason),
roles, callbacks and settlement files."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract

from bank.rails.base import RailUnavailable, SettlementUnavailable
from bank.rails.simulator import SimulatorRail
from bank.signing import HEADER, sign
from client import FileKeyStore
from client.errors import ExecutionReverted
from client.tokens import WalletToken, WithdrawalStatus
from client.wallet import Wallet
from tests.bank_support import (
    CUSTOMER,
    DECLINED_CARD,
    ISSUER,
    PASSWORD,
    RAIL_SECRET,
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

_keys = iter(range(1, 10**6))


def idem() -> str:
    return f"test-{time.time_ns()}-{next(_keys)}"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, shared_node: NodeProcess, dev_accounts: list
) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("bank")
    postgres = PostgresCluster().start()
    gateway_port = free_port()
    sim = simulator(tmp, gateway_port).start()
    keys = write_keys(tmp / "keys", dev_accounts, {ISSUER: "issuer", CUSTOMER: "customer"})
    db = postgres.create_database()
    gw = gateway(
        tmp, gateway_port, shared_node.url, sim.url, keys, db,
        node_api_key(shared_node.url, shared_node.datadir),
    )  # fmt: skip
    try:
        gw.start()
        customer = dev_accounts[CUSTOMER].address
        yield Stack(
            shared_node.url, sim, gw, keys, db, customer,
            make_key(db, "customer", customer), make_key(db, "operations"),
        )  # fmt: skip
    finally:
        gw.stop()
        sim.stop()
        postgres.stop()


@pytest.fixture(autouse=True)
def no_faults(stack: Stack) -> Iterator[None]:
    stack.faults()
    yield
    stack.faults()


@pytest.fixture(scope="module")
def chain(shared_node: NodeProcess) -> Web3:
    return web3_for(shared_node.url)


def wallet_token(chain: Web3) -> Contract:
    from contracts import load_artifact

    address = cast(ChecksumAddress, TOKEN)  # a checksummed literal, typed str
    return chain.eth.contract(address=address, abi=load_artifact("WalletToken")["abi"])


def balance(chain: Web3, account: str) -> int:
    return int(wallet_token(chain).functions.balanceOf(account).call())


def test_a_topup_is_captured_then_minted_once(stack: Stack, chain: Web3) -> None:
    before = balance(chain, stack.customer)
    response = stack.topup(idem(), 12_34)
    assert response.status_code == 201, response.text
    view = response.json()
    assert view["status"] == "captured" and view["card_last4"] == "4242"
    assert "4242424242424242" not in response.text
    done = stack.wait_topup(view["id"])
    assert balance(chain, stack.customer) == before + 12_34
    events = minted_events(chain, view["reference"])
    assert [(e["to"], e["amount"]) for e in events] == [(stack.customer, 12_34)]
    assert chain.eth.get_transaction(done["mint_tx"])["hash"].to_0x_hex() == done["mint_tx"]
    assert stack.ledger()[view["reference"][2:]]["status"] == "captured"


def test_the_gateway_keeps_no_card_number(stack: Stack) -> None:
    """Card numbers go to the rail only: not one row of the database holds one."""
    import sqlalchemy

    stack.topup(idem(), 1_00)
    engine = sqlalchemy.create_engine(stack.db)
    with engine.connect() as connection:
        tables = ("topups", "payout_cards", "outbox", "api_keys", "withdrawals")
        dump = " ".join(
            str(row) for table in tables
            for row in connection.execute(sqlalchemy.text(f"SELECT * FROM {table}"))
        )  # fmt: skip
    engine.dispose()
    assert "4242424242424242" not in dump and "424242424242" not in dump
    assert "4242" in dump  # the last four digits are kept (the probe sees the rows)


def test_a_retry_returns_the_first_result_and_another_body_is_409(
    stack: Stack, chain: Web3
) -> None:
    key = idem()
    first = stack.topup(key, 5_00)
    assert first.status_code == 201
    again = stack.topup(key, 5_00)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = stack.topup(key, 6_00)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
    stack.wait_topup(first.json()["id"])
    assert len(minted_events(chain, first.json()["reference"])) == 1
    captured = [r for r in stack.ledger().values() if r["amount"] in (5_00, 6_00)]
    assert [r["amount"] for r in captured] == [5_00]


def test_bad_requests_are_refused_with_a_reason(stack: Stack) -> None:
    assert stack.topup("short", 1_00).status_code == 400
    assert stack.topup(idem(), 0).status_code == 422
    assert (
        stack.topup(idem(), 1_00, {"number": "12", "expiry": "1/2", "cvc": "x"}).status_code == 422
    )
    assert stack.topup(idem(), 1_00, api_key="tbk_nope").status_code == 401
    other = "0x" + "11" * 20
    assert stack.topup(idem(), 1_00, account=other).status_code == 403
    assert stack.get("/topups", stack.customer_key).status_code == 403
    assert stack.get("/totals", stack.customer_key).status_code == 403
    assert stack.get("/topups").status_code == 200


def test_a_declined_card_mints_nothing(stack: Stack, chain: Web3) -> None:
    before = balance(chain, stack.customer)
    declined = stack.topup(idem(), 7_00, DECLINED_CARD)
    assert declined.status_code == 402 and declined.json()["status"] == "declined"
    stack.faults(decline=True)
    all_declined = stack.topup(idem(), 7_00)
    assert all_declined.status_code == 402 and all_declined.json()["reason"] == "card-declined"
    time.sleep(1.5)  # a block or so: a wrong mint would show
    assert balance(chain, stack.customer) == before
    for view in (declined.json(), all_declined.json()):
        assert minted_events(chain, view["reference"]) == []


def test_a_timeout_after_capture_ends_in_exactly_one_mint(stack: Stack, chain: Web3) -> None:
    """The rail takes the money but its answer never comes in time (rail timeout 2 s): the
    top-up is left authorized, and the rail's callback records the capture."""
    stack.faults(timeout_after_capture=3)
    before = balance(chain, stack.customer)
    response = stack.topup(idem(), 8_00)
    assert response.status_code == 202 and response.json()["status"] == "authorized"
    view = stack.wait_topup(response.json()["id"])
    assert balance(chain, stack.customer) == before + 8_00
    assert len(minted_events(chain, view["reference"])) == 1


def test_duplicate_and_out_of_order_callbacks_give_one_mint(stack: Stack, chain: Web3) -> None:
    """Every callback three times, each event's held back until the next one went (capture
    before authorization); the capture is only learnt from them (its answer times out)."""
    stack.faults(timeout_after_capture=3, duplicate_callbacks=3, out_of_order_callbacks=True)
    before = balance(chain, stack.customer)
    response = stack.topup(idem(), 9_00)
    view = stack.wait_topup(response.json()["id"])
    time.sleep(1.5)  # the late duplicates arrive
    assert balance(chain, stack.customer) == before + 9_00
    assert len(minted_events(chain, view["reference"])) == 1
    assert f"top-up {view['id']}: capture recorded from the rail's callback" in (
        stack.gateway.log_text()
    )


def test_a_forged_callback_is_refused_and_changes_nothing(stack: Stack) -> None:
    body = b'{"event_id": "x", "kind": "captured", "reference": "00", "rail_id": "c", "amount": 1}'
    for signature in ("t=1,v1=00", sign("wrong-secret", body), None):
        headers = {"content-type": "application/json"}
        if signature:
            headers[HEADER] = signature
        response = httpx.post(stack.gateway.url + "/rail/callbacks", content=body, headers=headers)
        assert response.status_code == 400
    assert httpx.post(
        stack.gateway.url + "/rail/callbacks", content=body,
        headers={HEADER: sign(RAIL_SECRET, body)},
    ).status_code == 200  # fmt: skip


def test_the_token_refuses_a_second_mint_of_one_reference(stack: Stack, chain: Web3) -> None:
    """What the outbox relies on after a crash: resending a mint reverts (`DuplicateTopUp`)."""
    view = stack.wait_topup(stack.topup(idem(), 3_00).json()["id"])
    issuer = Wallet(FileKeyStore(stack.keys, PASSWORD), "issuer", stack.node_url)
    token = WalletToken(issuer, TOKEN)
    reference = bytes.fromhex(view["reference"][2:])
    assert token.topped_up(reference)
    with pytest.raises(ExecutionReverted, match="DuplicateTopUp"):
        token.mint(stack.customer, 3_00, reference)
    assert len(minted_events(chain, view["reference"])) == 1


def test_a_mint_the_chain_refuses_is_refunded_on_the_card(stack: Stack) -> None:
    """An account the token does not allow: the capture is given back, nothing minted."""
    stranger = Web3.to_checksum_address("0x" + "5a" * 20)
    response = stack.topup(idem(), 4_00, account=stranger, api_key=stack.operations_key)
    assert response.status_code == 201
    view = stack.wait_topup(response.json()["id"], "refunded")
    assert "AccountNotAllowed" in view["reason"]
    assert stack.ledger()[view["reference"][2:]]["status"] == "refunded"


def request_withdrawal(stack: Stack, amount: int) -> int:
    wallet = Wallet(FileKeyStore(stack.keys, PASSWORD), "customer", stack.node_url)
    sent = WalletToken(wallet, TOKEN).request_withdrawal(amount)
    assert sent.receipt is not None
    topic = "0x" + Web3.keccak(text="WithdrawalRequested(uint256,address,uint256,bytes32)").hex()
    (log,) = [log for log in sent.receipt.raw["logs"] if log["topics"][0] == topic]
    return int(log["topics"][1], 16)


def test_a_withdrawal_is_paid_out_then_burned(stack: Stack, chain: Web3) -> None:
    stack.wait_topup(stack.topup(idem(), 50_00).json()["id"])
    before = balance(chain, stack.customer)
    withdrawal_id = request_withdrawal(stack, 20_00)
    view = stack.wait_withdrawal(withdrawal_id, "burned")
    assert view["amount"] == 20_00 and view["chain_tx"]
    assert balance(chain, stack.customer) == before - 20_00
    record = stack.ledger()[f"wd-{withdrawal_id}"]
    assert (record["status"], record["amount"]) == ("paid", 20_00)
    issuer = Wallet(FileKeyStore(stack.keys, PASSWORD), "issuer", stack.node_url)
    assert WalletToken(issuer, TOKEN).withdrawal(withdrawal_id)[2] is WithdrawalStatus.BURNED
    customer_view = stack.get(f"/withdrawals/{withdrawal_id}", stack.customer_key)
    assert customer_view.status_code == 200


def test_a_failed_payout_ends_in_reject_with_the_reason(stack: Stack, chain: Web3) -> None:
    stack.wait_topup(stack.topup(idem(), 30_00).json()["id"])
    before = balance(chain, stack.customer)
    stack.faults(payout_fail=True)
    withdrawal_id = request_withdrawal(stack, 10_00)
    view = stack.wait_withdrawal(withdrawal_id, "rejected")
    assert view["reason"] == "payout-declined"
    assert balance(chain, stack.customer) == before  # the locked funds came back
    (event,) = (
        wallet_token(chain)
        .events.WithdrawalRejected()
        .get_logs(from_block=0, argument_filters={"id": withdrawal_id})
    )
    assert event["args"]["reason"].rstrip(b"\0") == b"payout-declined"
    assert stack.ledger()[f"wd-{withdrawal_id}"]["status"] == "failed"


def test_settlement_files_and_their_faults(stack: Stack) -> None:
    view = stack.topup(idem(), 2_00).json()
    rail = SimulatorRail(stack.simulator.url, RAIL_SECRET, timeout=1.0)
    today = datetime.datetime.now(datetime.UTC).date()
    lines = rail.settlement_file(today).splitlines()
    assert lines[0] == "day,kind,reference,rail_id,amount,currency"
    assert any(view["reference"][2:] in line and line.endswith(",200,EUR") for line in lines)
    stack.faults(settlement_missing=True)
    with pytest.raises(SettlementUnavailable):
        rail.settlement_file(today)
    stack.faults(settlement_delay=2)
    with pytest.raises(RailUnavailable):
        rail.settlement_file(today)


def test_totals_balance(stack: Stack) -> None:
    """What the gateway recorded: every capture minted or refunded, every payout burned."""

    def settled() -> dict | None:
        totals = stack.get("/totals").json()
        return totals if totals["outbox_open"] == 0 else None

    from tests.bank_support import wait_for

    totals = wait_for(settled, 30, "outbox empty")
    assert totals["captured"] == totals["minted"] + totals["refunded"]
    assert totals["paid_out"] == totals["burned"]


def test_reconciliation_matches_everything_then_names_each_injected_break(
    stack: Stack, shared_node: NodeProcess
) -> None:
    """Last in the module: it adds a mint no card paid for. Everything the tests above did
    (captures, refunds, declines, payouts, rejects) reconciles; each injected break, and
    nothing else, is named."""
    from tests.bank_support import wait_for
    from tests.test_cli_errors import tally

    stack.wait_topup(stack.topup(idem(), 1_50).json()["id"])
    wait_for(lambda: stack.get("/totals").json()["outbox_open"] == 0, 30, "outbox empty")
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    report = stack.get(f"/reconciliation/{today}").json()
    assert report["breaks"] == [] and report["settlement_file"]
    assert report["matched_topups"] >= 1 and report["matched_topup_total"] >= 1_50
    assert stack.get(f"/reconciliation/{today}", stack.customer_key).status_code == 403

    # A mint no card paid for (the issuer key used outside the gateway).
    issuer = Wallet(FileKeyStore(stack.keys, PASSWORD), "issuer", stack.node_url)
    stray = bytes([0xE1]) * 32
    WalletToken(issuer, TOKEN).mint(stack.customer, 77, stray)
    report = stack.get(f"/reconciliation/{today}").json()
    assert report["breaks"] == [
        {"kind": "mint without capture", "reference": stray.hex(), "rail_amount": None,
         "gateway_amount": None, "chain_amount": 77}
    ]  # fmt: skip

    # No settlement file yet: every capture the gateway recorded today is late, nothing else.
    stack.faults(settlement_missing=True)
    late = stack.get(f"/reconciliation/{today}").json()
    kinds = {b["kind"] for b in late["breaks"]}
    assert kinds == {"late settlement", "mint without capture"} and not late["settlement_file"]
    assert sum(b["kind"] == "late settlement" for b in late["breaks"]) == (
        report["matched_topups"] + report["matched_withdrawals"]
    )
    stack.faults()

    result = tally("bank", "reconcile", "--date", today, "--gateway", stack.gateway.url,
                   env={"TALLY_BANK_API_KEY": stack.operations_key})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{today},mint without capture,{stray.hex()},,,77,1" in result.stdout.splitlines()
