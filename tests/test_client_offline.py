"""Client SDK pieces that need no node: signing from both stores checked by eth-account, the
file key store, the spending policy, and EIP-681 payment requests with their QR codes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from client import signing
from client.errors import (
    CounterpartyNotAllowed,
    DailyLimitExceeded,
    PaymentRequestError,
    PerPaymentLimitExceeded,
    PinLockedOut,
    SecondFactorInvalid,
    SecondFactorRequired,
)
from client.policy import AssetLimits, Payment, PolicyState, SpendingPolicy, TotpFactor
from tally_common.eip681 import PaymentRequest, parse_payment_request
from tally_common.keystore import FileKeyStore, KeyStore, Pkcs11KeyStore
from tally_common.keystore import file as file_module
from tally_common.keystore.errors import KeyNotFound, WrongPassword
from tests.test_client_softhsm import USER_PIN, softhsm_tokens

TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TYPED = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Settlement": [
            {"name": "payee", "type": "address"},
            {"name": "amount", "type": "uint256"},
            {"name": "memo", "type": "string"},
        ],
    },
    "primaryType": "Settlement",
    "domain": {"name": "Tally", "chainId": 1337, "verifyingContract": TOKEN},
    "message": {"payee": TO, "amount": 12345, "memo": "invoice 7"},
}
TXS = {
    "legacy": {"gasPrice": 3, "data": "0xa9059cbb"},
    "eip2930": {
        "gasPrice": 3,
        "accessList": [{"address": TOKEN, "storageKeys": ["0x" + "00" * 31 + "01"]}],
    },
    "eip1559": {"maxFeePerGas": 7, "maxPriorityFeePerGas": 2, "data": b"\x01\x02"},
}


@pytest.fixture(scope="module")
def file_store(tmp_path_factory: pytest.TempPathFactory) -> FileKeyStore:
    return FileKeyStore(tmp_path_factory.mktemp("keys"), "correct horse", scrypt_n=2**12)


@pytest.fixture(scope="module")
def stores(file_store: FileKeyStore) -> dict[str, KeyStore]:
    softhsm_tokens()
    hsm = Pkcs11KeyStore("sdk-main", USER_PIN)
    for store in (file_store, hsm):
        store.create("offline")
    return {"file": file_store, "pkcs11": hsm}


@pytest.mark.parametrize("backend", ["file", "pkcs11"])
@pytest.mark.parametrize("kind", list(TXS))
def test_transactions_recover_to_the_store_key(
    stores: dict[str, KeyStore], backend: str, kind: str
) -> None:
    store = stores[backend]
    tx = {"chainId": 1337, "nonce": 5, "to": TO, "value": 10**18, "gas": 50_000} | TXS[kind]
    signed = signing.sign_transaction(store, "offline", tx)
    assert Account.recover_transaction(signed.raw) == store.address("offline")
    assert signed.tx_type == {"legacy": 0, "eip2930": 1, "eip1559": 2}[kind]


@pytest.mark.parametrize("kind", list(TXS))
def test_file_store_signatures_equal_eth_accounts_byte_for_byte(
    file_store: FileKeyStore, stores: dict[str, KeyStore], kind: str
) -> None:
    """Same key, same transaction: our digest+encoding path and eth-account's agree exactly
    (RFC 6979 signatures are deterministic)."""
    key = Account.decrypt((file_store.directory / "offline.json").read_text(), "correct horse")
    tx = {"chainId": 1337, "nonce": 5, "to": TO, "value": 1, "gas": 50_000} | TXS[kind]
    ours = signing.sign_transaction(file_store, "offline", tx)
    theirs = Account.sign_transaction(tx, key)
    assert ours.raw == bytes(theirs.raw_transaction)
    assert ours.hash == bytes(theirs.hash)


@pytest.mark.parametrize("backend", ["file", "pkcs11"])
def test_messages_recover_to_the_store_key(stores: dict[str, KeyStore], backend: str) -> None:
    store = stores[backend]
    address = store.address("offline")
    text = signing.sign_text(store, "offline", "I owe you 5 TLY")
    assert (
        Account.recover_message(encode_defunct(text="I owe you 5 TLY"), signature=text.signature)
        == address
    )
    typed = signing.sign_typed_data(store, "offline", TYPED)
    assert (
        Account.recover_message(encode_typed_data(full_message=TYPED), signature=typed.signature)
        == address
    )
    assert typed.v in (27, 28)


def test_file_store_wrong_password_atomic_writes_and_standard_files(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path, "right", scrypt_n=2**12)
    info = store.create("alice")
    path = tmp_path / "alice.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["alice.json"]  # no temp files left
    # The file is standard Web3 Secret Storage v3 (scrypt): eth-account reads it back.
    keyfile = json.loads(path.read_text())
    assert keyfile["version"] == 3 and keyfile["crypto"]["kdf"] == "scrypt"
    assert Account.from_key(Account.decrypt(keyfile, "right")).address == info.address
    with pytest.raises(WrongPassword, match="wrong password for key 'alice'"):
        FileKeyStore(tmp_path, "wrong").sign_digest("alice", b"\x01" * 32)
    with pytest.raises(KeyNotFound):
        store.address("bob")
    # A key eth-account wrote with its default settings is usable as is.
    imported = Account.create()
    (tmp_path / "imported.json").write_text(
        json.dumps(Account.encrypt(imported.key, "right", iterations=2**14))
    )
    assert {k.label: k.address for k in store.list()}["imported"] == imported.address
    sig = store.sign_digest("imported", b"\x02" * 32)
    assert (
        sig.recover_public_key_from_msg_hash(b"\x02" * 32).to_checksum_address() == imported.address
    )


def test_file_store_crash_during_write_leaves_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise OSError("disk pulled out")

    monkeypatch.setattr(file_module.os, "replace", crash)
    store = FileKeyStore(tmp_path, "pw", scrypt_n=2**12)
    with pytest.raises(OSError, match="disk pulled out"):
        store.create("half")
    assert list(tmp_path.iterdir()) == []


def test_file_store_wrong_passwords_lock_out(tmp_path: Path) -> None:
    FileKeyStore(tmp_path, "right", scrypt_n=2**12).create("k")
    policy = SpendingPolicy(state=PolicyState(tmp_path / "state.json"))
    guard = policy.pin_guard(max_attempts=3, lockout_seconds=60)
    for _ in range(3):
        with pytest.raises(WrongPassword):
            FileKeyStore(tmp_path, "wrong", guard=guard).unlock("k")
    with pytest.raises(PinLockedOut, match="try again in"):
        FileKeyStore(tmp_path, "right", guard=guard).unlock("k")
    # The count survives a restart: it lives in the policy's state file.
    reloaded = PolicyState.load(tmp_path / "state.json")
    assert reloaded.pin_failures == 3 and reloaded.locked_until > time.time()


# --- policy ----------------------------------------------------------------------------------


def test_policy_limits_allowlist_and_reservations() -> None:
    now = [1_700_000_000.0]
    policy = SpendingPolicy(
        {"ETH": AssetLimits(per_payment=100, daily=250), TOKEN: AssetLimits(per_payment=5)},
        allowlist=[TO],
        clock=lambda: now[0],
    )
    with pytest.raises(PerPaymentLimitExceeded, match="'per-payment limit'"):
        policy.approve(Payment("ETH", TO, 101))
    with pytest.raises(PerPaymentLimitExceeded):
        policy.approve(Payment(TOKEN.lower(), TO, 6))  # asset keys are checksummed
    with pytest.raises(CounterpartyNotAllowed, match="counterparty allowlist"):
        policy.approve(Payment("ETH", TOKEN, 1))
    first = policy.approve(Payment("ETH", TO, 100))
    second = policy.approve(Payment("ETH", TO, 100))
    with pytest.raises(DailyLimitExceeded, match="daily limit of 250"):
        policy.approve(Payment("ETH", TO, 100))  # held amounts count: no racing past it
    second.cancel()
    first.commit()
    assert policy.spent_today() == 100
    policy.approve(Payment("ETH", TO, 100)).commit()
    with pytest.raises(DailyLimitExceeded):
        policy.approve(Payment("ETH", TO, 51))
    now[0] += 86_400  # the next UTC day starts afresh
    policy.approve(Payment("ETH", TO, 100)).commit()
    assert policy.spent_today() == 100


def test_policy_second_factor_above_threshold() -> None:
    factor = TotpFactor.new()
    policy = SpendingPolicy({"ETH": AssetLimits(totp_above=10)}, totp=factor)
    policy.approve(Payment("ETH", TO, 10)).commit()  # at the threshold: no code needed
    with pytest.raises(SecondFactorRequired, match="second factor"):
        policy.approve(Payment("ETH", TO, 11))
    wrong = f"{(int(factor.code(time.time())) + 1) % 10**6:06d}"
    with pytest.raises(SecondFactorInvalid, match="wrong or has expired"):
        policy.approve(Payment("ETH", TO, 11), totp_code=wrong)
    code = factor.code(time.time())
    policy.approve(Payment("ETH", TO, 11), totp_code=code).commit()
    with pytest.raises(SecondFactorInvalid, match="already used"):
        policy.approve(Payment("ETH", TO, 11), totp_code=code)
    assert factor.provisioning_uri("alice@bank").startswith("otpauth://totp/")
    assert TotpFactor.from_base32(factor.base32).secret == factor.secret


def test_policy_file_round_trip(tmp_path: Path) -> None:
    factor = TotpFactor.new()
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps(
            {
                "assets": {"ETH": {"per_payment": "1000", "daily": 1500, "totp_above": "500"}},
                "allowlist": [TO],
                "totp_secret": factor.base32,
            }
        )
    )
    policy = SpendingPolicy.load(path)
    policy.approve(Payment("ETH", TO, 900), factor.code(time.time())).commit()
    again = SpendingPolicy.load(path)  # spent totals survive in policy.state.json
    assert again.spent_today() == 900
    with pytest.raises(DailyLimitExceeded):
        again.approve(Payment("ETH", TO, 700), factor.code(time.time() + 30))


# --- payment requests ------------------------------------------------------------------------


def test_payment_request_round_trips_and_qr(tmp_path: Path) -> None:
    coin = PaymentRequest(TO.lower(), 10**18, 1337)
    assert coin.to_uri() == f"ethereum:{TO}@1337?value=1000000000000000000"
    assert parse_payment_request(coin.to_uri()) == coin
    token = PaymentRequest(TO, 250, 1337, TOKEN)
    assert token.to_uri() == f"ethereum:{TOKEN}@1337/transfer?address={TO}&uint256=250"
    assert parse_payment_request(token.to_uri()) == token
    assert parse_payment_request(f"ethereum:pay-{TO}?value=2.014e18").amount == 2014 * 10**15
    png = token.save_png(tmp_path / "qr.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = token.terminal_qr()
    assert len(text.splitlines()) > 10 and ("█" in text or "▀" in text)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("bitcoin:1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "must start with 'ethereum:'"),
        ("ethereum:", "no target address"),
        ("ethereum:alice.eth?value=1", "ENS names are not supported"),
        ("ethereum:0x1234?value=1", "not a 20-byte 0x address"),
        (f"ethereum:{TO[:-1]}9?value=1", "wrong EIP-55 checksum"),
        (f"ethereum:{TO}@mainnet?value=1", "chain id 'mainnet'"),
        (f"ethereum:{TO}@1337", "needs value="),
        (f"ethereum:{TO}?value=1.5", "not a whole number"),
        (f"ethereum:{TO}?value=-3", "not a number"),
        (f"ethereum:{TO}?value=1&value=2", "appears twice"),
        (f"ethereum:{TO}?value=1&foo=2", "unsupported parameters: foo"),
        (f"ethereum:{TOKEN}/approve?address={TO}&uint256=1", "only ERC-20 'transfer'"),
        (f"ethereum:{TOKEN}/transfer?address={TO}", "missing uint256"),
        (f"ethereum:{TOKEN}/transfer?uint256=1", "missing address"),
        (f"ethereum:{TOKEN}/transfer?address=0xzz&uint256=1", "recipient"),
        (f"ethereum:{TOKEN}/transfer?address={TO}&uint256=1&value=1", "must not carry value"),
    ],
)
def test_malformed_payment_requests_say_what_is_wrong(uri: str, message: str) -> None:
    with pytest.raises(PaymentRequestError, match=message.replace("?", r"\?").replace(".", r"\.")):
        parse_payment_request(uri)


def test_client_never_imports_node() -> None:
    """An SDK user has eth-account, web3 and the key-store libraries, not the node."""
    import subprocess
    import sys

    code = (
        "import sys, client, client.cli, client.settlement, client.tokens; "
        "bad = [m for m in sys.modules if m == 'node' or m.startswith('node.')]; "
        "assert not bad, bad"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ
    )
    assert result.returncode == 0, result.stderr


def test_contract_helpers_encode_against_the_shipped_abis(tmp_path: Path) -> None:
    """The wallet-token, escrow and batch-payout helpers call functions that exist in the
    committed artifacts, with arguments their ABIs accept (sends captured, no node needed)."""
    from eth_utils import function_signature_to_4byte_selector as selector

    from client.settlement import BatchPayout, Escrow
    from client.tokens import FeeKind, WalletToken
    from client.wallet import Wallet

    store = FileKeyStore(tmp_path, "pw", scrypt_n=2**12)
    store.create("k")
    wallet = Wallet(store, "k", "http://127.0.0.1:9")
    sent: list[tuple[str, bytes, Payment]] = []
    wallet.send = lambda to, value, data, payment, **kw: sent.append((to, data, payment))  # type: ignore[method-assign,assignment]

    token = WalletToken(wallet, TOKEN)
    token.call = lambda function, *args: 3  # type: ignore[method-assign]
    token.transfer_external(TO, 100, FeeKind.CROSS_BORDER)
    token.request_withdrawal(50)
    escrow = Escrow(wallet, TO)
    escrow.call = lambda function, *args: TOKEN  # type: ignore[method-assign]
    escrow.open(TO, TOKEN, [10, 20], 2_000_000_000)
    escrow.release(1, 0)
    payout = BatchPayout(wallet, TO)
    payout.call = lambda function, *args: TOKEN  # type: ignore[method-assign]
    payout.pay([TO, TOKEN], [5, 6])
    signatures = [
        "transferExternal(address,uint256,uint8)",
        "requestWithdrawal(uint256,bytes32)",
        "open(address,address,uint256[],uint64,bytes32)",
        "release(uint256,uint256)",
        "pay(address[],uint256[],bytes32)",
    ]
    assert [data[:4] for _, data, _ in sent] == [selector(s) for s in signatures]
    assert sent[0][2] == Payment(TOKEN, TO, 103)  # amount plus the quoted fee
    assert sent[2][2] == Payment(TOKEN, TO, 30)  # escrow total to the payee
    assert sent[4][2].amount == 11
