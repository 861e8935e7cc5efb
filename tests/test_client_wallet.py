"""The wallet against a real Tally node: payments signed by both key stores are mined, the
policy refuses before any signature, concurrent sends get consecutive nonces, and the node's
JSON-RPC errors come back typed."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3

from client.errors import (
    ContractUnavailable,
    CounterpartyNotAllowed,
    ExecutionReverted,
    FinalityTimeout,
    InsufficientFunds,
    NonceTooLow,
    PerPaymentLimitExceeded,
    SecondFactorRequired,
)
from client.policy import AssetLimits, SpendingPolicy, TotpFactor
from client.signing import sign_transaction
from client.wallet import Wallet
from contracts import load_artifact
from tally_common.keystore import FileKeyStore, KeyStore, Pkcs11KeyStore
from tests.test_client_softhsm import USER_PIN, softhsm_tokens

ETH = 10**18


@pytest.fixture(scope="module")
def funder(dev_accounts: list[LocalAccount]) -> LocalAccount:
    return dev_accounts[6]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyStore]:
    softhsm_tokens()
    return {
        "pkcs11": Pkcs11KeyStore("sdk-main", USER_PIN),
        "file": FileKeyStore(tmp_path_factory.mktemp("wallet-keys"), "pw", scrypt_n=2**12),
    }


def funded_wallet(
    w3: Web3, funder: LocalAccount, store: KeyStore, label: str, **kwargs: Any
) -> Wallet:
    """A new key in `store`, funded with 100 ETH by a dev account."""
    address = store.create(label).address
    tx = funder.sign_transaction(
        {
            "to": HexStr(address),
            "value": 100 * ETH,
            "gas": 21000,
            "gasPrice": 0,
            "nonce": w3.eth.get_transaction_count(funder.address, "pending"),
            "chainId": 1337,
        }
    )
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction), timeout=30)
    return Wallet(store, label, w3, **kwargs)


@pytest.mark.parametrize("backend", ["pkcs11", "file"])
def test_payments_from_both_stores_are_mined_in_every_tx_type(
    w3: Web3, funder: LocalAccount, stores: dict[str, KeyStore], backend: str
) -> None:
    wallet = funded_wallet(w3, funder, stores[backend], f"pay-{backend}")
    payee = Account.create().address
    blocks = []
    for number, tx_type in enumerate(("legacy", "access-list", "eip1559"), start=1):
        wallet.tx_type = tx_type  # type: ignore[assignment]
        sent = wallet.transfer(payee, number * ETH)
        assert sent.receipt is not None and sent.receipt.status == 1
        mined = w3.eth.get_transaction(HexStr(sent.tx_hash))
        assert mined["from"] == wallet.address and mined["type"] == number - 1
        blocks.append(sent.receipt.block_number)
    assert wallet.balance(address=payee) == 6 * ETH
    assert wallet.balance() == 94 * ETH
    entries = wallet.history(from_block=min(blocks))
    assert [(e.direction, e.counterparty, e.amount) for e in entries] == [
        ("out", payee, n * ETH) for n in (1, 2, 3)
    ]


def test_policy_refuses_before_the_store_signs(
    w3: Web3, funder: LocalAccount, stores: dict[str, KeyStore]
) -> None:
    store = cast(Pkcs11KeyStore, stores["pkcs11"])  # the fixture's "pkcs11" store is one
    factor = TotpFactor.new()
    friend = Account.create().address
    policy = SpendingPolicy(
        {"ETH": AssetLimits(per_payment=5 * ETH, totp_above=ETH)}, allowlist=[friend], totp=factor
    )
    wallet = funded_wallet(w3, funder, store, "policed", policy=policy)
    nonce = w3.eth.get_transaction_count(wallet.address)
    before = store.signatures_made
    with pytest.raises(PerPaymentLimitExceeded):
        wallet.transfer(friend, 6 * ETH)
    with pytest.raises(CounterpartyNotAllowed):
        wallet.transfer(Account.create().address, 1)
    with pytest.raises(SecondFactorRequired):
        wallet.transfer(friend, 2 * ETH)
    assert store.signatures_made == before  # the token was never asked
    assert w3.eth.get_transaction_count(wallet.address, "pending") == nonce
    sent = wallet.transfer(friend, 2 * ETH, totp=factor.code(time.time()))
    assert sent.receipt is not None and store.signatures_made == before + 1
    assert policy.spent_today() == 2 * ETH


def test_concurrent_sends_from_one_account_get_consecutive_nonces(
    w3: Web3, funder: LocalAccount, stores: dict[str, KeyStore]
) -> None:
    wallet = funded_wallet(w3, funder, stores["pkcs11"], "busy")
    start = w3.eth.get_transaction_count(wallet.address)
    payee = Account.create().address
    sent, errors = [], []

    def pay() -> None:
        try:
            for _ in range(3):
                sent.append(wallet.transfer(payee, 1, wait=False))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=pay) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(s.nonce for s in sent) == list(range(start, start + 24))
    for submitted in sent:
        assert wallet.wait_for_finality(submitted.tx_hash).status == 1
    assert w3.eth.get_transaction_count(wallet.address) == start + 24
    assert wallet.balance(address=payee) == 24


def test_node_errors_are_typed(w3: Web3, funder: LocalAccount, stores: dict[str, KeyStore]) -> None:
    store = stores["file"]
    store.create("broke")
    broke = Wallet(store, "broke", w3)
    with pytest.raises(InsufficientFunds, match="insufficient funds"):
        broke.transfer(funder.address, 1, wait=False)

    wallet = funded_wallet(w3, funder, store, "errors")
    first = wallet.transfer(funder.address, 1)
    stale = sign_transaction(
        store,
        "errors",
        {"chainId": 1337, "nonce": first.nonce, "to": funder.address, "gas": 21000, "gasPrice": 0},
    )
    with pytest.raises(NonceTooLow, match="nonce too low"):
        wallet.rpc("eth_sendRawTransaction", "0x" + stale.raw.hex())
    # Another client with the same key used the next nonce: the wallet re-reads and retries.
    other = Wallet(store, "errors", w3)
    other.transfer(funder.address, 1)
    assert wallet.transfer(funder.address, 1).receipt is not None

    with pytest.raises(FinalityTimeout, match=r"not final after 0\.3s"):
        wallet.wait_for_finality("0x" + "ab" * 32, timeout=0.3)


def test_token_payments_reverts_and_missing_contracts(
    w3: Web3,
    funder: LocalAccount,
    stores: dict[str, KeyStore],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wallet = funded_wallet(w3, funder, stores["pkcs11"], "treasurer")
    artifact = load_artifact("DevToken")
    constructor = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"]).constructor
    deployed = wallet.send(None, 0, bytes.fromhex(constructor(1_000_000).data_in_transaction[2:]))
    assert deployed.receipt is not None
    token_address = deployed.receipt.raw["contractAddress"]
    token = wallet.token(token_address)
    assert (token.symbol(), token.decimals()) == ("TDT", 18)
    payee = Account.create().address
    sent = wallet.pay_token(token_address, payee, 250)
    assert token.balance_of(payee) == 250 and wallet.balance(token_address) == 999_750
    with pytest.raises(ExecutionReverted, match=r"ERC20InsufficientBalance\(sender=0x") as info:
        wallet.pay_token(token_address, payee, 10**9)
    assert info.value.reason.startswith("ERC20InsufficientBalance")
    assert sent.receipt is not None
    history = wallet.history(from_block=sent.receipt.block_number)
    assert [(e.asset, e.direction, e.counterparty, e.amount) for e in history] == [
        (token.address, "out", payee, 250)
    ]
    # Token payments pass the same policy, with the token as the asset.
    wallet.policy = SpendingPolicy({token_address: AssetLimits(per_payment=100)})
    with pytest.raises(PerPaymentLimitExceeded):
        wallet.pay_token(token_address, payee, 101)
    # The bank's wallet token and settlement contracts are loaded by name: absent -> clear error.
    monkeypatch.setenv("TALLY_ARTIFACTS_DIR", str(tmp_path))
    with pytest.raises(ContractUnavailable, match="'WalletToken' not found"):
        wallet.wallet_token(token_address)
    from client.settlement import BatchPayout, Escrow

    with pytest.raises(ContractUnavailable, match="'Escrow' not found"):
        Escrow(wallet, token_address)
    with pytest.raises(ContractUnavailable, match="'BatchPayout' not found"):
        BatchPayout(wallet, token_address)
