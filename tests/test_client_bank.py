"""The SDK's bank helpers against the contracts every `tally dev` genesis deploys.

`WalletToken` (mint, fee quote, internal and external payments, withdrawal requests), `Escrow`
(open with milestones, release, dispute and arbiter resolution, refund after the deadline) and
`BatchPayout` (all-or-nothing payroll) are driven through `Wallet`s whose keys sit in a
`FileKeyStore`. Only accounts listed in AccountRules may hold or pay the token, so the keys are
the dev accounts' own, imported the way the store reads keys: one Web3 Secret Storage v3 file
(`Account.encrypt`) per label in the store's directory. Roles (node.domain.contracts):
0 admin and fee collector, 1 issuer, 2 compliance, 3-4 enterprises, 6-9 customers.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any, cast

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxParams

from client.errors import ExecutionReverted, TransactionFailed
from client.policy import Payment, asset_key
from client.settlement import BatchPayout, Escrow
from client.tokens import ContractBinding, FeeKind, WalletToken
from client.wallet import Submitted, Wallet
from contracts import load_artifact
from node.domain.contracts import BATCH_PAYOUT, ESCROW, FEES, WALLET_TOKEN
from tally_common.keystore import FileKeyStore

CENTS = 100
PASSWORD = "bank-test"
SCRYPT_N = 2**12
TOKEN_ADDRESS = Web3.to_checksum_address(WALLET_TOKEN)
ESCROW_ADDRESS = Web3.to_checksum_address(ESCROW)
BATCH_ADDRESS = Web3.to_checksum_address(BATCH_PAYOUT)
LABELS = {
    0: "admin",
    1: "issuer",
    2: "compliance",
    3: "enterprise-a",
    4: "enterprise-b",
    6: "customer-6",
    7: "customer-7",
    8: "customer-8",
    9: "customer-9",
}
_refs = itertools.count(1)


def ref(tag: int = 0) -> bytes:
    """A fresh 32-byte reference (top-ups are credited once per reference)."""
    return (0xB4 << 248 | tag << 64 | next(_refs)).to_bytes(32, "big")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, dev_accounts: list) -> FileKeyStore:
    """The dev accounts' keys as keystore files the FileKeyStore reads (`<label>.json`)."""
    directory: Path = tmp_path_factory.mktemp("bank-keys")
    for index, label in LABELS.items():
        keyfile = Account.encrypt(
            dev_accounts[index].key, PASSWORD, kdf="scrypt", iterations=SCRYPT_N
        )
        (directory / f"{label}.json").write_text(json.dumps(keyfile))
    store = FileKeyStore(directory, PASSWORD, scrypt_n=SCRYPT_N)
    assert {info.label: info.address for info in store.list()} == {
        label: dev_accounts[index].address for index, label in LABELS.items()
    }
    return store


@pytest.fixture(scope="module")
def wallets(w3: Web3, store: FileKeyStore) -> dict[int, Wallet]:
    return {index: Wallet(store, label, w3) for index, label in LABELS.items()}


def token_of(wallet: Wallet) -> WalletToken:
    return wallet.wallet_token(TOKEN_ADDRESS)


def events(w3: Web3, sent: Submitted, artifact: str, address: ChecksumAddress, name: str) -> list:
    """The decoded `name` events `address` emitted in the transaction."""
    assert sent.receipt is not None and sent.receipt.status == 1
    contract = w3.eth.contract(address=address, abi=load_artifact(artifact)["abi"])
    receipt = w3.eth.get_transaction_receipt(HexStr(sent.tx_hash))
    return [
        dict(log["args"])
        for log in contract.events[name]().process_receipt(receipt, errors=DISCARD)
        if log["address"] == address
    ]


def top_up(w3: Web3, wallets: dict[int, Wallet], to: int, amount: int) -> None:
    """The issuer credits a top-up to dev account `to` through the SDK's `mint`."""
    top_up_ref = ref(to)
    sent = token_of(wallets[1]).mint(wallets[to].address, amount, top_up_ref)
    assert events(w3, sent, "WalletToken", TOKEN_ADDRESS, "Minted") == [
        {"to": wallets[to].address, "amount": amount, "topUpRef": top_up_ref}
    ]


def test_fee_quote_then_internal_and_external_payments(
    w3: Web3, wallets: dict[int, Wallet]
) -> None:
    payer, payee, collector = wallets[7], wallets[8], wallets[0]
    token = token_of(payer)
    assert (token.symbol(), token.decimals()) == ("TEUR", 2)
    top_up(w3, wallets, 7, 1_000 * CENTS)
    start = {w.address: token.balance_of(w.address) for w in (payer, payee, collector)}

    amount = 120 * CENTS
    assert token.quote_fee(payee.address, amount) == 0
    assert token.quote_fee(payee.address, amount, FeeKind.INTERNAL) == 0
    bps, fixed, cap = FEES[FeeKind.EXTERNAL]
    external_fee = min(amount * bps // 10_000 + fixed, cap)
    assert external_fee == 90  # 0.50% of 120.00 plus 0.30
    assert token.quote_fee(payee.address, amount, FeeKind.EXTERNAL) == external_fee
    bps, fixed, cap = FEES[FeeKind.CROSS_BORDER]
    big = 10_000 * CENTS
    assert token.quote_fee(payee.address, big, FeeKind.CROSS_BORDER) == cap  # capped
    assert cap < big * bps // 10_000 + fixed

    # Internal: exactly the amount moves, no fee leg.
    sent = token.transfer(payee.address, amount)
    assert events(w3, sent, "WalletToken", TOKEN_ADDRESS, "Transfer") == [
        {"from": payer.address, "to": payee.address, "value": amount}
    ]
    assert events(w3, sent, "WalletToken", TOKEN_ADDRESS, "FeeCharged") == []
    assert token.balance_of(payer.address) == start[payer.address] - amount
    assert token.balance_of(payee.address) == start[payee.address] + amount
    assert token.balance_of(collector.address) == start[collector.address]

    # External: the quoted fee goes to the collector on top of the amount.
    sent = token.transfer_external(payee.address, amount)
    assert events(w3, sent, "WalletToken", TOKEN_ADDRESS, "FeeCharged") == [
        {
            "from": payer.address,
            "to": payee.address,
            "kind": int(FeeKind.EXTERNAL),
            "amount": amount,
            "fee": external_fee,
        }
    ]
    assert token.balance_of(payer.address) == start[payer.address] - 2 * amount - external_fee
    assert token.balance_of(payee.address) == start[payee.address] + 2 * amount
    assert token.balance_of(collector.address) == start[collector.address] + external_fee
    assert token.call("spentToday", payer.address) >= 2 * amount


def test_payment_over_the_tier_limit_is_refused_with_a_decoded_error(
    w3: Web3, wallets: dict[int, Wallet]
) -> None:
    payer = wallets[6]  # tier 1: 1,000.00 per payment
    top_up(w3, wallets, 6, 1_500 * CENTS)
    token = token_of(payer)
    nonce = w3.eth.get_transaction_count(payer.address, "pending")
    with pytest.raises(
        ExecutionReverted, match=r"OverPaymentLimit\(payer=0x.*100001, limit=100000"
    ):
        token.transfer(wallets[9].address, 100_001)
    assert w3.eth.get_transaction_count(payer.address, "pending") == nonce  # nothing was sent


def test_withdrawal_request_locks_funds_until_the_issuer_burns_them(
    w3: Web3, wallets: dict[int, Wallet]
) -> None:
    holder = wallets[9]
    top_up(w3, wallets, 9, 300 * CENTS)
    token = token_of(holder)
    balance = token.balance_of(holder.address)
    supply = token.call("totalSupply")
    bank_ref = ref(9)

    sent = token.request_withdrawal(200 * CENTS, bank_ref)
    (requested,) = events(w3, sent, "WalletToken", TOKEN_ADDRESS, "WithdrawalRequested")
    assert requested["holder"] == holder.address
    assert (requested["amount"], requested["ref"]) == (200 * CENTS, bank_ref)
    withdrawal_id = requested["id"]
    assert token.call("lockedOf", holder.address) == 200 * CENTS
    assert token.call("availableBalanceOf", holder.address) == balance - 200 * CENTS
    assert list(token.call("withdrawal", withdrawal_id)) == [holder.address, 200 * CENTS, 1]

    # Locked funds cannot be paid away nor requested twice.
    available = balance - 200 * CENTS
    with pytest.raises(ExecutionReverted, match="ERC20InsufficientBalance"):
        token.transfer(wallets[8].address, available + 1)
    with pytest.raises(ExecutionReverted, match="ERC20InsufficientBalance"):
        token.request_withdrawal(available + 1)

    # The issuer pays out off chain and burns the locked funds.
    issuer_token = token_of(wallets[1])
    sent = issuer_token.transact("burnWithdrawal", withdrawal_id, payment=_no_payment(issuer_token))
    assert events(w3, sent, "WalletToken", TOKEN_ADDRESS, "WithdrawalBurned") == [
        {"id": withdrawal_id, "holder": holder.address, "amount": 200 * CENTS}
    ]
    assert token.balance_of(holder.address) == balance - 200 * CENTS
    assert token.call("lockedOf", holder.address) == 0
    assert token.call("totalSupply") == supply - 200 * CENTS
    assert token.call("withdrawal", withdrawal_id)[2] == 2  # Burned


def _no_payment(binding: ContractBinding) -> Payment:
    """What the policy judges for a call that moves none of the wallet's funds."""
    return Payment(asset_key(None), binding.address, 0)


def open_deal(
    w3: Web3, wallets: dict[int, Wallet], milestones: list[int], deadline: int, arbiter: int = 2
) -> tuple[int, Escrow]:
    """Enterprise 3 approves the escrow and opens a deal for enterprise 4; returns its id."""
    payer = wallets[3]
    token_of(payer).approve(ESCROW_ADDRESS, sum(milestones))
    escrow = Escrow(payer, ESCROW_ADDRESS)
    deal_ref = ref(3)
    sent = escrow.open(wallets[4].address, wallets[arbiter].address, milestones, deadline, deal_ref)
    (opened,) = events(w3, sent, "Escrow", ESCROW_ADDRESS, "EscrowOpened")
    assert opened["payer"] == payer.address and opened["payee"] == wallets[4].address
    assert opened["arbiter"] == wallets[arbiter].address
    assert (opened["total"], opened["deadline"], opened["ref"]) == (
        sum(milestones),
        deadline,
        deal_ref,
    )
    return opened["id"], escrow


def latest_timestamp(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def test_escrow_milestones_released_to_the_payee(w3: Web3, wallets: dict[int, Wallet]) -> None:
    top_up(w3, wallets, 3, 5_000 * CENTS)
    token = token_of(wallets[3])
    payer, payee = wallets[3].address, wallets[4].address
    start_payer, start_payee = token.balance_of(payer), token.balance_of(payee)
    held = token.balance_of(ESCROW_ADDRESS)
    assert Escrow(wallets[3], ESCROW_ADDRESS).token() == TOKEN_ADDRESS

    milestones = [100 * CENTS, 250 * CENTS, 150 * CENTS]
    deal, escrow = open_deal(w3, wallets, milestones, latest_timestamp(w3) + 3_600)
    assert token.balance_of(payer) == start_payer - 500 * CENTS
    assert token.balance_of(ESCROW_ADDRESS) == held + 500 * CENTS
    assert token.allowance(payer, ESCROW_ADDRESS) == 0

    sent = escrow.release(deal, 1)
    assert events(w3, sent, "Escrow", ESCROW_ADDRESS, "MilestoneReleased") == [
        {"id": deal, "index": 1, "amount": 250 * CENTS}
    ]
    assert token.balance_of(payee) == start_payee + 250 * CENTS
    with pytest.raises(ExecutionReverted, match=rf"MilestoneAlreadyReleased\(id={deal}, index=1\)"):
        escrow.release(deal, 1)
    # Only the payer releases.
    with pytest.raises(ExecutionReverted, match="NotPayer"):
        Escrow(wallets[4], ESCROW_ADDRESS).release(deal, 0)

    escrow.release(deal, 0)
    sent = escrow.release(deal, 2)
    assert events(w3, sent, "Escrow", ESCROW_ADDRESS, "EscrowClosed") == [{"id": deal}]
    _, _, _, _, state, remaining, amounts, mask = escrow.call("deal", deal)
    assert (state, remaining, amounts, mask) == (3, 0, milestones, 0b111)  # Closed
    assert token.balance_of(payee) == start_payee + 500 * CENTS
    assert token.balance_of(ESCROW_ADDRESS) == held


def test_escrow_dispute_resolved_by_the_arbiter(w3: Web3, wallets: dict[int, Wallet]) -> None:
    top_up(w3, wallets, 3, 1_000 * CENTS)
    token = token_of(wallets[3])
    payer, payee = wallets[3].address, wallets[4].address
    deadline = latest_timestamp(w3) + 3_600
    # Without an allowance the token's own error comes back through the escrow, decoded.
    assert token.allowance(payer, ESCROW_ADDRESS) == 0
    with pytest.raises(
        ExecutionReverted, match=rf"ERC20InsufficientAllowance\(spender={ESCROW_ADDRESS}"
    ):
        Escrow(wallets[3], ESCROW_ADDRESS).open(payee, wallets[2].address, [1], deadline)
    deal, escrow = open_deal(w3, wallets, [300 * CENTS, 200 * CENTS], deadline)
    escrow.release(deal, 0)
    start_payer, start_payee = token.balance_of(payer), token.balance_of(payee)

    sent = Escrow(wallets[4], ESCROW_ADDRESS).dispute(deal)  # the payee disputes
    assert events(w3, sent, "Escrow", ESCROW_ADDRESS, "Disputed") == [{"id": deal, "by": payee}]
    with pytest.raises(ExecutionReverted, match=rf"WrongState\(id={deal}, state=2\)"):
        escrow.release(deal, 1)

    arbiter = Escrow(wallets[2], ESCROW_ADDRESS)
    sent = arbiter.transact("resolve", deal, 50 * CENTS, payment=_no_payment(arbiter))
    assert events(w3, sent, "Escrow", ESCROW_ADDRESS, "Resolved") == [
        {"id": deal, "toPayee": 50 * CENTS, "toPayer": 150 * CENTS}
    ]
    assert token.balance_of(payee) == start_payee + 50 * CENTS
    assert token.balance_of(payer) == start_payer + 150 * CENTS


def test_escrow_refund_after_the_deadline(w3: Web3, wallets: dict[int, Wallet]) -> None:
    top_up(w3, wallets, 3, 1_000 * CENTS)
    token = token_of(wallets[3])
    payer = wallets[3].address
    # Margin enough for the two payments below on a loaded machine (4 s was not).
    deadline = latest_timestamp(w3) + 15
    deal, escrow = open_deal(w3, wallets, [70 * CENTS, 30 * CENTS], deadline)
    escrow.release(deal, 0)
    with pytest.raises(ExecutionReverted, match=rf"DeadlineNotReached\(id={deal}"):
        escrow.refund(deal)
    after_release = token.balance_of(payer)

    # `tally dev` seals blocks only when there is work: tick the chain's clock with empty
    # payments until a block is stamped past the deadline.
    limit = time.monotonic() + 60
    while latest_timestamp(w3) <= deadline:
        assert time.monotonic() < limit, "the chain's clock did not pass the deadline"
        wallets[0].transfer(wallets[0].address, 0)
        time.sleep(0.5)
    with pytest.raises(ExecutionReverted, match=rf"DeadlinePassed\(id={deal}"):
        escrow.release(deal, 1)
    sent = escrow.refund(deal)
    assert events(w3, sent, "Escrow", ESCROW_ADDRESS, "Refunded") == [
        {"id": deal, "amount": 30 * CENTS}
    ]
    assert token.balance_of(payer) == after_release + 30 * CENTS
    assert escrow.call("deal", deal)[4] == 3  # Closed


def test_batch_payout_pays_everyone_or_no_one(
    w3: Web3, wallets: dict[int, Wallet], dev_accounts: list[LocalAccount]
) -> None:
    enterprise = wallets[3]
    top_up(w3, wallets, 3, 2_000 * CENTS)
    token = token_of(enterprise)
    batch = BatchPayout(enterprise, BATCH_ADDRESS)
    payees = [wallets[i].address for i in (6, 7, 8, 9)]
    amounts = [10 * CENTS, 20 * CENTS, 30 * CENTS, 40 * CENTS]
    watched = [enterprise.address, *payees]
    before = {a: token.balance_of(a) for a in watched}

    token.approve(BATCH_ADDRESS, sum(amounts))
    payroll_ref = ref(4)
    sent = batch.pay(payees, amounts, payroll_ref)
    (paid,) = events(w3, sent, "BatchPayout", BATCH_ADDRESS, "BatchPaid")
    assert paid["payer"] == enterprise.address
    assert (paid["payees"], paid["total"], paid["ref"]) == (4, sum(amounts), payroll_ref)
    assert events(w3, sent, "BatchPayout", BATCH_ADDRESS, "PayeePaid") == [
        {"batchId": paid["batchId"], "payee": p, "amount": a}
        for p, a in zip(payees, amounts, strict=True)
    ]
    assert token.balance_of(enterprise.address) == before[enterprise.address] - sum(amounts)
    for payee, amount in zip(payees, amounts, strict=True):
        assert token.balance_of(payee) == before[payee] + amount
    assert token.balance_of(BATCH_ADDRESS) == 0  # the contract never holds funds
    assert token.allowance(enterprise.address, BATCH_ADDRESS) == 0

    # The last payee is not an allowed account: the whole batch is refused, decoded.
    stranger = Account.create().address
    bad_payees, bad_amounts = [*payees, stranger], [*amounts, 5 * CENTS]
    token.approve(BATCH_ADDRESS, sum(bad_amounts))
    count = batch.call("batchCount")
    before = {a: token.balance_of(a) for a in watched}
    with pytest.raises(ExecutionReverted, match=rf"AccountNotAllowed\(account={stranger}\)"):
        batch.pay(bad_payees, bad_amounts)

    # Mined anyway (fixed gas, signed outside the SDK): it reverts and nobody is paid.
    signer = dev_accounts[3]
    tx = batch.contract.functions.pay(bad_payees, bad_amounts, b"\x00" * 32).build_transaction(
        cast(  # web3.py's TxParams wants Wei, a NewType of int, for gasPrice
            TxParams,
            {
                "from": signer.address,
                "gas": 2_000_000,
                "gasPrice": 0,
                "chainId": w3.eth.chain_id,
                "nonce": w3.eth.get_transaction_count(signer.address, "pending"),
            },
        )
    )
    # eth-account types the transaction as a plain dict, web3.py's answer is a TypedDict
    signed = signer.sign_transaction(cast(dict[str, Any], tx))
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    enterprise.nonces.forget()
    with pytest.raises(TransactionFailed):
        enterprise.wait_for_finality("0x" + tx_hash.hex().removeprefix("0x"))
    assert {a: token.balance_of(a) for a in watched} == before
    assert token.balance_of(stranger) == 0
    assert batch.call("batchCount") == count
    assert token.allowance(enterprise.address, BATCH_ADDRESS) == sum(bad_amounts)

    # Mismatched lists never reach the node.
    with pytest.raises(ValueError, match="differ in length"):
        batch.pay(payees, amounts[:2])
