"""The risk service end to end: a real dev node, `tally bank risk serve` as a process on
PostgreSQL following the node's WebSocket event stream, real signed WalletToken payments from
file key stores. Each rule fires on its pattern (with windows shrunk to seconds by the test's
rules file) and not on the ordinary payments before it; screening answers a wallet's signed
transaction through the SDK; a payment held on chain becomes a case that an analyst works and
compliance closes by releasing the hold, signed with the compliance key, on chain."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from web3 import Web3

from bank.risk.watchlist import entry
from client import FileKeyStore
from client.policy import Payment as PolicyPayment
from client.risk import RiskClient, ScreeningRefused
from client.tokens import HoldStatus, WalletToken
from client.wallet import Wallet
from tests.bank_support import (
    PASSWORD,
    PostgresCluster,
    Service,
    make_key,
    wait_for,
    write_keys,
)
from tests.conftest import REPO, NodeProcess, free_port
from tests.test_api_support import TOKEN, admin_key, start_node

LABELS = {
    1: "issuer",
    2: "compliance",
    3: "ent-3",
    4: "ent-4",
    5: "auditor",
    6: "c-6",
    7: "c-7",
    8: "c-8",
    9: "c-9",
}
SALT = "risk-test-salt-000000"
VERSION = "test.1"


def rules_file(path: Path, watched: str) -> Path:
    """The default rules with windows of seconds and small amounts (cents)."""
    path.write_text(f"""
version = "{VERSION}"
[decisions]
alert_score = 40
hold_score = 40
deny_score = 80
history_seconds = 3600
[rules.velocity]
score = 40
window_seconds = 120
max_count = 5
max_amount = 100000
[rules.amount_vs_history]
score = 40
min_history = 3
multiple = 5.0
min_amount = 1000
[rules.new_counterparty]
score = 40
large_amount = 5000
[rules.structuring]
score = 50
limits = [10000]
margin = 0.1
window_seconds = 600
min_count = 2
[rules.dormant]
score = 40
idle_seconds = 6
min_amount = 5000
[rules.fan_out]
score = 40
window_seconds = 600
min_new_payees = 3
[rules.fan_in]
score = 50
window_seconds = 600
min_sources = 3
pass_through = 0.7
[rules.watchlist]
score = 80
salt = "{SALT}"
hashes = ["{entry(SALT, watched)}"]
""")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, dev_accounts: list) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("risk")
    node = start_node(tmp)
    postgres = PostgresCluster().start()
    service: Service | None = None
    try:
        db = postgres.create_database()
        keys = write_keys(tmp / "keys", dev_accounts, LABELS)
        env = {
            "TALLY_RPC_URL": node.url,
            "TALLY_BANK_DB": db,
            "TALLY_KEYSTORE_DIR": str(keys),
            "TALLY_KEYSTORE_PASSWORD": PASSWORD,
            "TALLY_BANK_NODE_API_KEY": admin_key(node),
            "TALLY_BANK_DATA_DIR": str(tmp / "bank-data"),
        }
        config = rules_file(tmp / "rules.toml", dev_accounts[5].address)
        service = Service(
            ["risk", "serve", "--config", str(config)], free_port(), env, tmp / "risk.log"
        ).start()
        wait_for(lambda: httpx.get(service.url + "/health").json()["monitor"] == "following",
                 60, "the monitor connected")  # fmt: skip
        store = FileKeyStore(keys, PASSWORD)
        tokens = {
            i: Wallet(store, label, node.url).wallet_token(TOKEN) for i, label in LABELS.items()
        }
        yield {
            "node": node,
            "service": service,
            "db": db,
            "tokens": tokens,
            "analyst": make_key(db, "analyst"),
            "officer": make_key(db, "compliance"),
            "customer8": make_key(db, "customer", dev_accounts[8].address),
        }
    finally:
        if service is not None:
            service.stop()
        postgres.stop()
        node.stop()


def pay(tokens: dict[int, WalletToken], *payments: tuple[int, int, int]) -> list[str]:
    """(payer, payee index, cents) sent without waiting, then all waited for: a phase."""
    sent = [
        tokens[payer].transfer(tokens[payee].wallet.address, amount, wait=False)
        for payer, payee, amount in payments
    ]
    for submitted in sent:
        tokens[1].wallet.wait_for_finality(submitted.tx_hash, timeout=60)
    return [s.tx_hash for s in sent]


def decided(stack: dict[str, Any], tx_hash: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        rows = get(stack, "/risk/decisions", stack["analyst"], limit=500).json()
        return next((r for r in rows if r["tx_hash"] == tx_hash), None)

    return wait_for(find, 60, f"a decision on {tx_hash}")


def get(stack: dict[str, Any], path: str, key: str | None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(stack["service"].url + path, params=params, headers=headers, timeout=30)


def post(stack: dict[str, Any], path: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(stack["service"].url + path, json=body, timeout=60,
                      headers={"Authorization": f"Bearer {key}"})  # fmt: skip


def rules_of(decision: dict[str, Any]) -> set[str]:
    return {reason["rule"] for reason in decision["reasons"]}


def test_each_rule_fires_on_its_pattern(stack: dict[str, Any], dev_accounts: list) -> None:
    tokens = stack["tokens"]
    issuer = tokens[1]
    for i, amount in ((6, 2000_00), (7, 1000_00), (8, 1000_00), (9, 1000_00), (3, 100_00)):
        issuer.mint(tokens[i].wallet.address, amount, secrets.token_bytes(32), wait=False)
    issuer.mint(tokens[4].wallet.address, 1, secrets.token_bytes(32), wait=True)
    normal = pay(tokens, (6, 7, 10_00), (6, 7, 11_00), (6, 7, 9_00), (7, 6, 1_00))
    for tx in normal:  # ordinary payments: no reason, no case
        decision = decided(stack, tx)
        assert decision["score"] == 0 and decision["outcome"] == "allow", decision
        assert decision["config_version"] == VERSION and decision["source"] == "monitor"

    # screening, while 6's history is fresh: an ordinary payment is allowed, one to a
    # watch-listed account denied; 8 may screen only its own payments
    verdicts = screen(stack, dev_accounts)
    assert verdicts["ordinary"].decision == "allow" and verdicts["ordinary"].score == 0
    assert verdicts["watched"].decision == "deny"
    assert "watchlist" in {r["rule"] for r in verdicts["watched"].reasons}

    phase = pay(
        tokens,
        (6, 7, 80_00),  # 8x 6's usual: amount vs history
        *[(7, 6, 1_00)] * 6,  # with the 1.00 before, 7 in 120 s (max 5): velocity
        (8, 9, 60_00),  # a first payment of 60.00 (large: 50.00): new counterparty
        (9, 3, 95_00), (9, 3, 96_00),  # twice just under 100.00: structuring
        (3, 6, 1_00), (3, 7, 1_00), (3, 8, 1_00),  # 3 new payees: fan out
    )  # fmt: skip
    assert "amount_vs_history" in rules_of(decided(stack, phase[0]))
    assert "velocity" in rules_of(decided(stack, phase[6]))  # the 6th (or 7th) in 120 s
    assert "velocity" not in rules_of(decided(stack, phase[4]))  # the 4th (or 5th)
    assert "new_counterparty" in rules_of(decided(stack, phase[7]))
    assert "structuring" in rules_of(decided(stack, phase[9]))
    assert "structuring" not in rules_of(decided(stack, phase[8]))
    assert "fan_out" in rules_of(decided(stack, phase[12]))
    assert "fan_out" not in rules_of(decided(stack, phase[11]))

    pay(tokens, (6, 4, 2_00), (8, 4, 2_00), (9, 4, 2_00))  # 3 payers into 4 ...
    (mule,) = pay(tokens, (4, 3, 5_00))  # ... which pays most of it on: fan in
    assert "fan_in" in rules_of(decided(stack, mule))
    (watched,) = pay(tokens, (6, 5, 1_00))
    decision = decided(stack, watched)
    assert "watchlist" in rules_of(decision) and decision["outcome"] == "alert"
    cases = get(stack, "/risk/cases", stack["analyst"], limit=500).json()
    assert decision["id"] in {case["decision"]["id"] for case in cases}

    last = decided(stack, phase[12])["timestamp"]  # 3's last payment; 3 is idle from here
    time.sleep(max(0.0, last + 7 - time.time()))
    (woke,) = pay(tokens, (3, 6, 60_00))
    assert "dormant" in rules_of(decided(stack, woke))


def signed_transfer(node: NodeProcess, token: Any, account: Any, to: str, amount: int) -> bytes:
    """A wallet app's signed WalletToken transfer (not sent)."""
    nonce = int(str(node.rpc("eth_getTransactionCount", [account.address, "pending"])), 16)
    tx = {"to": token.address, "data": token.encode_abi("transfer", args=[to, amount]),
          "nonce": nonce, "gas": 200_000, "gasPrice": 0, "chainId": 1337}  # fmt: skip
    return bytes(Account.sign_transaction(tx, account.key).raw_transaction)


def screen(stack: dict[str, Any], dev_accounts: list) -> dict[str, Any]:
    node: NodeProcess = stack["node"]
    token = Web3().eth.contract(address=Web3.to_checksum_address(TOKEN),
                                abi=stack["tokens"][1].abi)  # fmt: skip
    client = RiskClient(stack["service"].url, stack["customer8"])
    staff = RiskClient(stack["service"].url, stack["officer"])

    def signed(index: int, to: str, amount: int) -> bytes:
        return signed_transfer(node, token, dev_accounts[index], to, amount)

    verdicts = {
        "ordinary": staff.screen(signed(6, dev_accounts[7].address, 10_00)),
        "watched": client.screen(signed(8, dev_accounts[5].address, 1_00)),
    }
    with pytest.raises(ScreeningRefused) as refused:
        client.screen(signed(6, dev_accounts[7].address, 10_00))
    assert refused.value.status == 403
    with pytest.raises(ScreeningRefused) as refused:
        client.screen("0x" + "ab" * 40)
    assert refused.value.status == 400 and "not a signed transaction" in refused.value.reason
    with pytest.raises(ScreeningRefused) as refused:
        RiskClient(stack["service"].url, "tbk_unknown").screen("0x00")
    assert refused.value.status == 401
    return verdicts


def test_a_held_payment_becomes_a_case_released_on_chain(
    stack: dict[str, Any], dev_accounts: list
) -> None:
    tokens = stack["tokens"]
    issuer, payer, payee = tokens[1], tokens[6], tokens[7]
    policy = PolicyPayment(TOKEN, TOKEN, 0)
    issuer.transact("setReviewThreshold", 1, 5_00, payment=policy)
    try:
        # an ordinary payment (9 to 3 again) the chain would hold (over 5.00): screening says so
        token = Web3().eth.contract(address=Web3.to_checksum_address(TOKEN), abi=issuer.abi)
        raw = signed_transfer(stack["node"], token, dev_accounts[9], dev_accounts[3].address, 10_00)
        verdict = RiskClient(stack["service"].url, stack["officer"]).screen(raw)
        assert verdict.decision == "hold" and verdict.score == 0, verdict
        assert [r["rule"] for r in verdict.reasons] == ["held_on_chain"]
        assert "over the review threshold 500" in verdict.reasons[0]["detail"]
        issuer.transact("setReviewThreshold", 1, 500_00, payment=policy)
        before = payee.balance_of(payee.wallet.address)
        (held,) = pay(tokens, (6, 7, 600_00))
    finally:
        issuer.transact("setReviewThreshold", 1, 0, payment=policy)
    decision = decided(stack, held)
    assert decision["hold_id"] is not None and decision["outcome"] == "alert"
    assert "held_on_chain" in rules_of(decision)
    queue = get(stack, "/risk/cases", stack["analyst"], limit=500).json()
    case = next(c for c in queue if c["decision"]["id"] == decision["id"])
    assert case["state"] == "open" and case["account"] == payer.wallet.address
    path = f"/risk/cases/{case['id']}"
    analyst, officer = stack["analyst"], stack["officer"]

    assert get(stack, "/risk/cases", stack["customer8"]).status_code == 403
    assert get(stack, "/risk/cases", None).status_code == 401
    assert post(stack, path + "/assign", analyst, {}).json()["state"] == "assigned"
    assert post(stack, path + "/note", analyst, {"text": "called the customer"}).status_code == 200
    assert post(stack, path + "/note", analyst, {"text": " "}).status_code == 400
    assert post(stack, path + "/escalate", analyst, {"text": "rent, large"}).json()["state"] == (
        "escalated"
    )
    assert post(stack, path + "/close", analyst, {"resolution": "release"}).status_code == 403
    assert payee.balance_of(payee.wallet.address) == before  # nothing moved yet
    closed = post(stack, path + "/close", officer, {"resolution": "release", "reason": "ok"})
    assert closed.status_code == 200, closed.text
    view = closed.json()
    assert view["state"] == "closed" and view["resolution"] == "release"
    assert [n["action"] for n in view["notes"]] == [
        "open", "assign", "note", "escalate", "close"
    ]  # fmt: skip
    assert payee.hold(decision["hold_id"]).status == HoldStatus.RELEASED
    assert payee.balance_of(payee.wallet.address) == before + 600_00
    receipt = payee.wallet.rpc("eth_getTransactionReceipt", view["resolution_tx"])
    assert receipt["from"].lower() == dev_accounts[2].address.lower()  # the compliance key
    again = post(stack, path + "/close", officer, {"resolution": "reject"})
    assert again.status_code == 409
    # the release's own Transfer is not a new payment: no decision for that transaction
    time.sleep(2)
    rows = get(stack, "/risk/decisions", analyst, limit=500).json()
    assert view["resolution_tx"] not in {r["tx_hash"] for r in rows}


def test_a_restart_after_kill9_resumes_with_its_history(stack: dict[str, Any]) -> None:
    """kill -9 the service, pay while it is down, restart: the payment is decided once (the
    stream resumes after the last acknowledged batch) and judged against the history the
    service rebuilt from its database."""
    service: Service = stack["service"]
    tokens = stack["tokens"]
    before = get(stack, "/risk/decisions", stack["analyst"], limit=500).json()
    service.stop(signal.SIGKILL)
    (while_down,) = pay(tokens, (6, 7, 90_00))  # far above 6's usual: amount vs history
    service.start()
    decision = decided(stack, while_down)
    assert "amount_vs_history" in rules_of(decision)
    time.sleep(2)
    after = get(stack, "/risk/decisions", stack["analyst"], limit=500).json()
    hashes = [(d["source"], d["tx_hash"]) for d in after]
    assert len(hashes) == len(set(hashes)) == len(before) + 1


def test_flag_reject_and_refusals(stack: dict[str, Any]) -> None:
    """Compliance flags an account over REST (the chain then holds its payments), rejects the
    held payment from its case (refunded on chain), unflags; what the case or the chain
    refuses changes nothing."""
    tokens = stack["tokens"]
    officer, analyst = stack["officer"], stack["analyst"]
    payer = tokens[9]
    address = payer.wallet.address
    queue = get(stack, "/risk/cases", analyst, limit=500).json()
    unheld = next(c for c in queue if c["decision"]["hold_id"] is None)
    path = f"/risk/cases/{unheld['id']}"
    refused = post(stack, path + "/close", officer, {"resolution": "release"})
    assert refused.status_code == 409 and "not held" in refused.json()["detail"]
    assert get(stack, path, analyst).json()["state"] == unheld["state"]
    assert (
        post(stack, path + "/close", stack["customer8"], {"resolution": "no_action"}).status_code
        == 403
    )
    assert post(stack, "/risk/accounts/0x12/flag", officer, {}).status_code == 400
    assert post(stack, f"/risk/accounts/{address}/flag", analyst, {}).status_code == 403

    flagged = post(stack, f"/risk/accounts/{address}/flag", officer, {"reason": "mule"})
    assert flagged.status_code == 200, flagged.text
    assert payer.is_flagged(address)
    try:
        available = payer.call("availableBalanceOf", address)
        (held,) = pay(tokens, (9, 3, 1_00))
        assert payer.call("availableBalanceOf", address) == available - 1_00
        decision = decided(stack, held)
        assert decision["hold_id"] is not None
        assert "payer flagged" in str(decision["reasons"])
        case = next(
            c
            for c in get(stack, "/risk/cases", analyst, limit=500).json()
            if c["decision"]["id"] == decision["id"]
        )
        closed = post(stack, f"/risk/cases/{case['id']}/close", officer,
                      {"resolution": "reject", "reason": "mule account"})  # fmt: skip
        assert closed.status_code == 200, closed.text
        assert payer.hold(decision["hold_id"]).status == HoldStatus.REJECTED
        assert payer.call("availableBalanceOf", address) == available  # refunded
    finally:
        unflagged = post(stack, f"/risk/accounts/{address}/unflag", officer, {})
        assert unflagged.status_code == 200, unflagged.text
    assert not payer.is_flagged(address)


def test_serve_refuses_bad_settings_in_one_line(stack: dict[str, Any], tmp_path: Path) -> None:
    service: Service = stack["service"]
    base = {**os.environ, **service.env, "PYTHONPATH": str(REPO)}
    for env, code, words in (
        (
            {"TALLY_BANK_NODE_API_KEY": "tk_not_a_key"},
            5,
            "node event stream: node refused the stream",
        ),
        ({"TALLY_BANK_NODE_API_KEY": ""}, 2, "TALLY_BANK_NODE_API_KEY"),
        ({"TALLY_KEYSTORE_PASSWORD": "wrong"}, 4, "compliance key"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "tally_cli", "bank", "risk", "serve", "--port",
             str(free_port())],
            env={**base, **env}, capture_output=True, text=True, timeout=120, cwd=REPO,
        )  # fmt: skip
        assert result.returncode == code, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
