"""Key stores: where private keys live and the only code that ever touches them.

The SDK hands a key store a 32-byte digest and gets an Ethereum signature (v, r, s) back; keys
are found by label. Two backends implement the same `KeyStore` protocol:

- `Pkcs11KeyStore`: keys generated inside a PKCS#11 token (SoftHSM2 in tests, a real HSM by
  changing the module path), sensitive and never extractable.
- `FileKeyStore`: Web3 Secret Storage v3 files (scrypt), as eth-account and geth write them.
"""

from client.keystore.base import KeyInfo, KeyStore, LoginGuard, recoverable_signature
from client.keystore.file import FileKeyStore
from client.keystore.pkcs11 import SOFTHSM2_MODULE, Pkcs11KeyStore

__all__ = [
    "SOFTHSM2_MODULE",
    "FileKeyStore",
    "KeyInfo",
    "KeyStore",
    "LoginGuard",
    "Pkcs11KeyStore",
    "recoverable_signature",
]
