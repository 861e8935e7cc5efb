"""Key stores: where private keys live and the only code that ever touches them.

Shared by the client SDK (wallet keys) and the node (its validator key, `node.signer`), which
may not import each other. A caller hands a store a 32-byte digest and gets an Ethereum
signature (v, r, s) back; keys are found by label. Two backends implement the same `KeyStore`
protocol, and each also gives a key's public key (`public_key(label)`):

- `Pkcs11KeyStore`: keys generated inside a PKCS#11 token (SoftHSM2 in tests, a real HSM by
  changing the module path), sensitive and never extractable.
- `FileKeyStore`: Web3 Secret Storage v3 files (scrypt), as eth-account and geth write them.

Only the errors are imported with the package; the rest on first use (PEP 562): `tally wallet
--help` maps key store errors to exit codes without loading eth-keys, and a node whose key is
not in a token need not load python-pkcs11.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tally_common.keystore.errors import (
    AuthenticationError,
    KeyExists,
    KeyNotFound,
    KeyStoreError,
    KeyStoreUnavailable,
    WrongPassword,
    WrongPin,
)

if TYPE_CHECKING:
    from tally_common.keystore.base import KeyInfo, KeyStore, LoginGuard, recoverable_signature
    from tally_common.keystore.file import FileKeyStore
    from tally_common.keystore.pkcs11 import SOFTHSM2_MODULE, Pkcs11KeyStore

_HOMES = {
    "KeyInfo": "tally_common.keystore.base",
    "KeyStore": "tally_common.keystore.base",
    "LoginGuard": "tally_common.keystore.base",
    "recoverable_signature": "tally_common.keystore.base",
    "FileKeyStore": "tally_common.keystore.file",
    "SOFTHSM2_MODULE": "tally_common.keystore.pkcs11",
    "Pkcs11KeyStore": "tally_common.keystore.pkcs11",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tally_common.keystore' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "SOFTHSM2_MODULE",
    "AuthenticationError",
    "FileKeyStore",
    "KeyExists",
    "KeyInfo",
    "KeyNotFound",
    "KeyStore",
    "KeyStoreError",
    "KeyStoreUnavailable",
    "LoginGuard",
    "Pkcs11KeyStore",
    "WrongPassword",
    "WrongPin",
    "recoverable_signature",
]
