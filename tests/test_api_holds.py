"""Held payments end to end on the token every `tally dev` genesis deploys: the SDK's compliance
calls (flag, release, reject) and the payer's cancel, in signed transactions from a FileKeyStore;
the indexer's hold records read back over REST (`/accounts/{address}/holds`, the transaction's
decoded events) with their status, and `tally wallet send` reporting "held for review".
Roles (node.domain.contracts): 1 issuer, 2 compliance, 6 and 9 tier-1 customers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from client import FileKeyStore
from client.policy import Payment
from client.tokens import (
    HELD_OVER_THRESHOLD,
    HELD_PAYEE_FLAGGED,
    HoldStatus,
    WalletToken,
    held_payment,
)
from client.wallet import Wallet
from node.domain.contracts import WALLET_TOKEN
from tests.conftest import NodeProcess
from tests.test_api_support import Api, admin_key

TOKEN = Web3.to_checksum_address(WALLET_TOKEN)
PASSWORD = "holds-test"
LABELS = {1: "issuer", 2: "compliance", 6: "customer-6", 9: "customer-9"}
THRESHOLD = 50_00
WINDOW = 2


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory, dev_accounts: list) -> Path:
    directory = tmp_path_factory.mktemp("holds-keys")
    for index, label in LABELS.items():
        keyfile = Account.encrypt(dev_accounts[index].key, PASSWORD, kdf="scrypt", iterations=2**12)
        (directory / f"{label}.json").write_text(json.dumps(keyfile))
    return directory


@pytest.fixture(scope="module")
def tokens(w3: Web3, keys: Path) -> dict[int, WalletToken]:
    store = FileKeyStore(keys, PASSWORD, scrypt_n=2**12)
    return {i: Wallet(store, label, w3).wallet_token(TOKEN) for i, label in LABELS.items()}


def supply_is_conserved(token: WalletToken, dev_accounts: list) -> None:
    """Genesis mints nothing, so the dev accounts (and no one else) hold the whole supply,
    held payments included in their payers' balances."""
    total = sum(token.balance_of(a.address) for a in dev_accounts)
    assert total == token.call("totalSupply")


def test_held_payments_through_the_sdk_and_rest(
    tokens: dict[int, WalletToken], shared_node: NodeProcess, dev_accounts: list, keys: Path
) -> None:
    issuer, compliance, payer, payee = tokens[1], tokens[2], tokens[6], tokens[9]
    p, q = payer.wallet.address, payee.wallet.address
    policy = Payment(TOKEN, TOKEN, 0)
    issuer.transact("setReviewThreshold", 1, THRESHOLD, payment=policy)
    issuer.transact("setReviewWindow", WINDOW, payment=policy)
    issuer.mint(p, 1_000_00)

    over = payer.transfer(q, 60_00).receipt
    assert over is not None
    first, reasons = held_payment(over.raw) or (0, 0)
    assert reasons == HELD_OVER_THRESHOLD
    compliance.flag(q, b"\x01" * 32)
    assert payee.is_flagged(q)
    second = held_payment(payer.transfer(q, 10_00).receipt.raw)  # type: ignore[union-attr]
    assert second is not None and second[1] == HELD_PAYEE_FLAGGED
    third = held_payment(payer.transfer(q, 20_00).receipt.raw)  # type: ignore[union-attr]
    assert third is not None
    hold = payer.hold(first)
    assert (hold.payer, hold.payee, hold.amount, hold.status) == (p, q, 60_00, HoldStatus.HELD)
    assert payer.balance_of(q) == 0 and payer.balance_of(p) == 1_000_00
    supply_is_conserved(payer, dev_accounts)

    api = Api(shared_node, admin_key(shared_node))
    rows = api.ok(f"/accounts/{p}/holds")["items"]
    assert [(r["hold_id"], r["status"], r["direction"]) for r in rows] == [
        (third[0], "held", "out"),
        (second[0], "held", "out"),
        (first, "held", "out"),
    ]
    assert rows[2]["reasons"] == ["over_review_threshold"]
    assert rows[1]["reasons"] == ["payee_flagged"] and rows[1]["closed_tx_hash"] is None
    tx = api.ok(f"/transactions/{over.tx_hash}")
    assert "PaymentHeld" in json.dumps(tx)

    # `tally wallet send` of the token says the payment was held.
    env = {
        **os.environ,
        "TALLY_KEYSTORE_DIR": str(keys),
        "TALLY_KEYSTORE_PASSWORD": PASSWORD,
        "TALLY_WALLET_KEY": "customer-6",
        "TALLY_RPC_URL": shared_node.url,
    }
    sent = subprocess.run(
        [sys.executable, "-m", "tally_cli", "wallet", "send", q, "1", "--token", TOKEN],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert sent.returncode == 0, sent.stderr
    assert "held for review" in sent.stdout

    released = compliance.release_hold(first).receipt
    compliance.reject_hold(second[0], b"\x02" * 32)
    time.sleep(max(0.0, payer.hold(third[0]).deadline + 1 - time.time()))
    payer.cancel_hold(third[0])
    assert payer.balance_of(q) == 60_00
    assert [h.status for h in payer.holds(p)][:3] == [
        HoldStatus.RELEASED,
        HoldStatus.REJECTED,
        HoldStatus.CANCELLED,
    ]
    supply_is_conserved(payer, dev_accounts)

    rows = {r["hold_id"]: r for r in api.ok(f"/accounts/{q}/holds")["items"]}
    assert rows[first]["status"] == "released" and rows[first]["direction"] == "in"
    assert rows[first]["closed_tx_hash"] == released.tx_hash  # type: ignore[union-attr]
    assert rows[second[0]]["status"] == "rejected"
    assert rows[third[0]]["status"] == "cancelled"
    transfers = api.ok(f"/accounts/{q}/transfers", token=TOKEN)["items"]
    assert [(t["from"], t["amount"]) for t in transfers] == [(p, "6000")]
    exported = api.get(f"/accounts/{q}/export", kind="holds", format="csv")
    assert exported.status_code == 200 and "cancelled" in exported.text
    compliance.unflag(q)
    issuer.transact("setReviewThreshold", 1, 0, payment=policy)
