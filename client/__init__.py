"""Tally client SDK: build and sign transactions locally, with keys that never leave their store.

Never imports `node`: an SDK user needs eth-account, web3 and the key-store libraries only.

    from client import FileKeyStore, Pkcs11KeyStore, SpendingPolicy, Wallet

    store = Pkcs11KeyStore("bank-token", pin, module="/usr/lib/softhsm/libsofthsm2.so")
    store.create("alice")
    wallet = Wallet(store, "alice", "http://127.0.0.1:8545", policy=SpendingPolicy.load(path))
    wallet.transfer("0x...", 10**18)           # policy, nonce, sign, send, wait for finality

Modules: `signing` (transactions and EIP-191/712 messages from a digest-signing store),
`policy` (limits, allowlist, TOTP, PIN lockout), `wallet` (payments, nonces, finality,
history), `tokens` and `settlement` (contract wrappers), `rpc` (typed JSON-RPC errors), `tls`
(a CA bundle and client certificates for nodes serving TLS), `risk` (the bank's
pre-submission screening of a signed payment), `cli`. The key stores (PKCS#11
and Web3 Secret Storage) and EIP-681 payment requests live in `tally_common` (`keystore`,
`eip681`), shared with the node; the names below export them.

The names below are imported on first use (PEP 562), not with the package: importing any
`client` module would otherwise load web3 and eth-account, and `tally wallet --help` would wait
a second for libraries it does not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from client.errors import TallyClientError

if TYPE_CHECKING:
    from client.policy import AssetLimits, Payment, PinGuard, SpendingPolicy, TotpFactor
    from client.tls import ClientTls
    from client.wallet import Receipt, Submitted, Wallet
    from tally_common.eip681 import PaymentRequest, parse_payment_request
    from tally_common.keystore import FileKeyStore, KeyInfo, KeyStore, Pkcs11KeyStore

_HOMES = {
    "FileKeyStore": "tally_common.keystore",
    "KeyInfo": "tally_common.keystore",
    "KeyStore": "tally_common.keystore",
    "Pkcs11KeyStore": "tally_common.keystore",
    "PaymentRequest": "tally_common.eip681",
    "parse_payment_request": "tally_common.eip681",
    "AssetLimits": "client.policy",
    "Payment": "client.policy",
    "PinGuard": "client.policy",
    "SpendingPolicy": "client.policy",
    "TotpFactor": "client.policy",
    "ClientTls": "client.tls",
    "Receipt": "client.wallet",
    "Submitted": "client.wallet",
    "Wallet": "client.wallet",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'client' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "AssetLimits",
    "ClientTls",
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
