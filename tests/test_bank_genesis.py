"""The bank's contracts as genesis deploys them on `tally dev`: the README tour's steps.

Dev account roles: 0 admin + fee collector, 1 issuer, 2 compliance, 6-9 customers.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError
from web3.types import TxParams, TxReceipt

from contracts import load_artifact
from node.domain.contracts import (
    ACCOUNT_RULES,
    ESCROW,
    POINTS,
    POINTS_RATE_BPS,
    WALLET_TOKEN,
    ChainRole,
)

CENTS = 100


@pytest.fixture(scope="module")
def token(w3: Web3) -> Contract:
    return w3.eth.contract(
        address=Web3.to_checksum_address("0x" + WALLET_TOKEN.hex()),
        abi=load_artifact("WalletToken")["abi"],
    )


def send(w3: Web3, account: LocalAccount, call: ContractFunction) -> TxReceipt:
    tx = call.build_transaction(
        cast(
            TxParams,  # web3's TxParams wants Wei for the plain int
            {
                "from": account.address,
                "gasPrice": 0,
                "chainId": 1337,
                "gas": 400_000,
                "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            },
        )
    )
    fields = cast(dict[str, Any], tx)  # eth-account's dict type, not web3's TypedDict
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(fields).raw_transaction), timeout=30
    )
    assert receipt["status"] == 1
    return receipt


def test_top_up_pay_and_quote_fees_with_the_genesis_token(
    w3: Web3, token: Contract, dev_accounts: list[LocalAccount]
) -> None:
    admin, issuer, customer, payee = (
        dev_accounts[0],
        dev_accounts[1],
        dev_accounts[7],
        dev_accounts[8],
    )
    assert token.functions.decimals().call() == 2
    start = token.functions.balanceOf(customer.address).call()
    send(w3, issuer, token.functions.mint(customer.address, 500 * CENTS, b"\x01" * 32))
    assert token.functions.balanceOf(customer.address).call() == start + 500 * CENTS
    send(w3, customer, token.functions.transfer(payee.address, 20 * CENTS))
    assert token.functions.balanceOf(customer.address).call() == start + 480 * CENTS
    internal = token.functions.quoteFee(customer.address, payee.address, 100 * CENTS, 0).call()
    external = token.functions.quoteFee(customer.address, payee.address, 100 * CENTS, 1).call()
    assert internal == 0
    assert external == 100 * CENTS * 50 // 10_000 + 30  # 0.50% + 0.30, below the cap
    fees_before = token.functions.balanceOf(admin.address).call()
    send(w3, customer, token.functions.transferExternal(payee.address, 100 * CENTS, 1))
    assert token.functions.balanceOf(admin.address).call() == fees_before + external


def test_only_the_issuer_mints(w3: Web3, token: Contract, dev_accounts: list[LocalAccount]) -> None:
    customer = dev_accounts[6]
    with pytest.raises(ContractCustomError):
        token.functions.mint(customer.address, 1, b"\x02" * 32).call({"from": customer.address})


def test_the_genesis_token_holds_account_rules_copy_and_points(w3: Web3, token: Contract) -> None:
    """AccountRules lists the token as its listener; the token's copy of every dev account's
    role and tier matches AccountRules from block 0; customers earn points at the genesis rate,
    claimed by the genesis Points ledger."""
    rules = w3.eth.contract(
        address=Web3.to_checksum_address(ACCOUNT_RULES), abi=load_artifact("AccountRules")["abi"]
    )
    assert rules.functions.listeners().call() == [token.address]
    for account in rules.functions.accounts().call():
        assert (
            token.functions.holderRole(account).call()
            == rules.functions.roleAndTier(account).call()
        )
    assert token.functions.holderRole(Web3.to_checksum_address(ESCROW)).call() == [
        ChainRole.SYSTEM,
        3,
    ]
    assert token.functions.points().call() == Web3.to_checksum_address(POINTS)
    assert token.functions.pointsRateBps().call() == POINTS_RATE_BPS
