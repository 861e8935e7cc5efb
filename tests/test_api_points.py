"""Points history end to end on a `tally dev` node: a customer (6) earns points by paying a
merchant (3) with the wallet token, the merchant publishes catalog offers, the customer redeems
one and some points directly, anyone (7) closes an expired offer and the merchant withdraws the
other, all in signed transactions from a FileKeyStore; `/accounts/{a}/points` shows each event
under the customer and the merchant in order with its amounts, a look-alike Points contract's
identical events are not indexed, cursors page, and a customer reads only its own points."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from client import FileKeyStore
from client.points import DEV_POINTS, Points
from client.policy import Payment
from client.tokens import WalletToken
from client.wallet import Wallet
from contracts import load_artifact
from node.domain.contracts import ACCOUNT_RULES, WALLET_TOKEN
from tests.conftest import NodeProcess
from tests.test_api_support import Api, admin_key

TOKEN = Web3.to_checksum_address(WALLET_TOKEN)
PASSWORD = "points-test"
ISSUER, MERCHANT, CUSTOMER, CLOSER = 1, 3, 6, 7
LABELS = {ISSUER: "issuer", MERCHANT: "merchant", CUSTOMER: "customer", CLOSER: "closer"}
REF = b"\x42" * 32


@pytest.fixture(scope="module")
def wallets(tmp_path_factory: pytest.TempPathFactory, dev_accounts: list, w3: Web3) -> dict:
    directory: Path = tmp_path_factory.mktemp("points-keys")
    for index, label in LABELS.items():
        keyfile = Account.encrypt(dev_accounts[index].key, PASSWORD, kdf="scrypt", iterations=2**12)
        (directory / f"{label}.json").write_text(json.dumps(keyfile))
    store = FileKeyStore(directory, PASSWORD, scrypt_n=2**12)
    return {i: Wallet(store, label, w3) for i, label in LABELS.items()}


def head_time(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def deploy_look_alike(w3: Web3, deployer: LocalAccount) -> str:
    """A second Points ledger (same code, same events) at an address of its own."""
    artifact = load_artifact("Points")
    contract = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = contract.constructor(Web3.to_checksum_address(ACCOUNT_RULES), TOKEN).build_transaction(
        {"from": deployer.address, "nonce": w3.eth.get_transaction_count(deployer.address)}
    )
    signed = deployer.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), timeout=60
    )
    assert receipt["status"] == 1
    return str(receipt["contractAddress"])


def summary(rows: list[dict]) -> list[tuple]:
    return [(r["event"], r["offer_id"], r["quantity"], r["points"], r["change"]) for r in rows]


def test_points_history_of_customer_and_merchant(
    wallets: dict[int, Wallet], shared_node: NodeProcess, w3: Web3, dev_accounts: list
) -> None:
    token: dict[int, WalletToken] = {i: w.wallet_token(TOKEN) for i, w in wallets.items()}
    points: dict[int, Points] = {i: Points(w) for i, w in wallets.items()}
    m, c = wallets[MERCHANT].address, wallets[CUSTOMER].address

    token[ISSUER].mint(c, 1_000_00)
    paid = token[CUSTOMER].transfer(m, 100_00).receipt  # earns 1% of 100.00: 100 points
    assert paid is not None
    now = head_time(w3)
    points[MERCHANT].publish_offer(30, 3, now + 3_600)
    points[MERCHANT].publish_offer(10, 2, now + 3)
    lasting, short = points[MERCHANT].offer_count() - 1, points[MERCHANT].offer_count()
    redeemed = points[CUSTOMER].redeem_offer(lasting, 2).receipt
    assert redeemed is not None
    policy = Payment(DEV_POINTS, DEV_POINTS, 0)
    points[CUSTOMER].transact("redeem", 15, REF, payment=policy)

    # A look-alike ledger: the merchant publishes and the issuer awards the customer there.
    fake = deploy_look_alike(w3, dev_accounts[0])
    Points(wallets[MERCHANT], fake).publish_offer(1, 1, now + 3_600)
    issuer_fake = Points(wallets[ISSUER], fake)
    issuer_fake.transact("award", c, 500_00, payment=Payment(fake, fake, 0))
    assert issuer_fake.balance_of(c) == 500

    deadline = time.monotonic() + 30
    while head_time(w3) < now + 3 and time.monotonic() < deadline:
        time.sleep(0.3)
    points[CLOSER].close_offer(short)  # expired: anyone may close it
    points[MERCHANT].close_offer(lasting)  # open: its merchant withdraws it
    assert points[CUSTOMER].balance_of(c) == 100 - 60 - 15

    api = Api(shared_node, admin_key(shared_node))
    mine = api.all_pages(f"/accounts/{c}/points")[::-1]  # oldest first
    assert summary(mine) == [
        ("earned", None, None, "100", "100"),
        ("offer_redeemed", str(lasting), "2", "60", "-60"),
        ("redeemed", None, None, "15", "-15"),
    ]
    earned, offer, burn = mine
    assert (earned["contract"], earned["payment_amount"]) == (TOKEN, "10000")
    assert earned["tx_hash"] == paid.tx_hash
    assert (offer["account"], offer["counterparty"]) == (c, m)
    assert offer["tx_hash"] == redeemed.tx_hash
    ledger = Web3.to_checksum_address(DEV_POINTS)
    assert (burn["contract"], burn["ref"]) == (ledger, "0x" + REF.hex())
    assert sum(int(r["change"]) for r in mine) == points[CUSTOMER].balance_of(c)

    sold = api.all_pages(f"/accounts/{m}/points")[::-1]
    assert summary(sold) == [
        ("offer_published", str(lasting), "3", "0", "0"),
        ("offer_published", str(short), "2", "0", "0"),
        ("offer_redeemed", str(lasting), "2", "60", "0"),
        ("offer_expired", str(short), "2", "0", "0"),
        ("offer_withdrawn", str(lasting), "1", "0", "0"),
    ]
    assert (sold[0]["price"], sold[1]["expiry"]) == ("30", now + 3)
    assert sold[2]["account"] == c
    assert api.ok(f"/accounts/{wallets[CLOSER].address}/points")["items"] == []
    assert api.ok(f"/accounts/{fake}/points")["items"] == []

    # Pages of two, newest first, resume where the last one stopped.
    first = api.ok(f"/accounts/{m}/points", limit=2)
    assert len(first["items"]) == 2 and first["next_cursor"]
    assert api.all_pages(f"/accounts/{m}/points", limit=2) == sold[::-1]
    assert api.get(f"/accounts/{m}/points", cursor="nonsense").status_code == 400
    assert api.ok(f"/accounts/{c}/points", counterparty=m)["items"] == [offer]

    # The export carries the same rows.
    exported = api.get(f"/accounts/{c}/export", kind="points", format="json")
    assert exported.status_code == 200 and exported.json() == mine[::-1]

    # A customer reads its own points, not another account's.
    customer = api.as_(api.new_key("customer", [c]))
    assert customer.ok(f"/accounts/{c}/points")["items"] == mine[::-1]
    denied = customer.get(f"/accounts/{m}/points")
    assert denied.status_code == 403, denied.text
