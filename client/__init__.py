"""Tally client SDK: build and sign transactions locally, with keys that never leave their store.

Never imports `node`: an SDK user needs eth-account, web3 and the key-store libraries only.

    from client import FileKeyStore, Pkcs11KeyStore, SpendingPolicy, Wallet

    store = Pkcs11KeyStore("bank-token", pin, module="/usr/lib/softhsm/libsofthsm2.so")
    store.create("alice")
    wallet = Wallet(store, "alice", "http://127.0.0.1:8545", policy=SpendingPolicy.load(path))
    wallet.transfer("0x...", 10**18)           # policy, nonce, sign, send, wait for finality

Modules: `keystore` (PKCS#11 and Web3 Secret Storage backends), `signing` (transactions and
EIP-191/712 messages from a digest-signing store), `policy` (limits, allowlist, TOTP, PIN
lockout), `wallet` (payments, nonces, finality, history), `tokens` and `settlement` (contract
wrappers), `payments` (EIP-681 URIs and QR codes), `rpc` (typed JSON-RPC errors), `cli`.
"""

from client.errors import TallyClientError
from client.keystore import FileKeyStore, KeyInfo, KeyStore, Pkcs11KeyStore
from client.payments import PaymentRequest, parse_payment_request
from client.policy import AssetLimits, Payment, PinGuard, SpendingPolicy, TotpFactor
from client.wallet import Receipt, Submitted, Wallet

__all__ = [
    "AssetLimits",
    "FileKeyStore",
    "KeyInfo",
    "KeyStore",
    "Payment",
    "PaymentRequest",
    "PinGuard",
    "Pkcs11KeyStore",
    "Receipt",
    "SpendingPolicy",
    "Submitted",
    "TallyClientError",
    "TotpFactor",
    "Wallet",
    "parse_payment_request",
]
