"""Key stores: where private keys live and the only code that ever touches them.

Shared by the client SDK (wallet keys) and the node (its validator key, `node.signer`), which
may not import each other. A caller hands a store a 32-byte digest and gets an Ethereum
signature (v, r, s) back; keys are found by label. Two backends implement the same `KeyStore`
protocol, and each also gives a key's public key (`public_key(label)`):

- `Pkcs11KeyStore`: keys generated inside a PKCS#11 token (SoftHSM2 in tests, a real HSM by
  changing the module path), sensitive and never extractable.
- `FileKeyStore`: Web3 Secret Storage v3 files (scrypt), as eth-account and geth write them.
"""

from tally_common.keystore.base import KeyInfo, KeyStore, LoginGuard, recoverable_signature
from tally_common.keystore.errors import (
    AuthenticationError,
    KeyExists,
    KeyNotFound,
    KeyStoreError,
    KeyStoreUnavailable,
    WrongPassword,
    WrongPin,
)
from tally_common.keystore.file import FileKeyStore
from tally_common.keystore.pkcs11 import SOFTHSM2_MODULE, Pkcs11KeyStore

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
