"""What a key store raises, for the node and the client SDK alike.

Its own root, `KeyStoreError`, because `tally_common` cannot derive from the SDK's
`TallyClientError` (the SDK imports `tally_common`, not the other way round): the SDK lists these
in `client.errors` and its CLI maps `KeyStoreError` to exit code 4, as `tally keys` does.

    KeyStoreError                   the key store could not do what was asked
    ├── KeyStoreUnavailable             module/library/token/directory missing
    ├── KeyNotFound                     no key under that label
    ├── KeyExists                       a key with that label already exists
    └── AuthenticationError             the secret that unlocks the store was refused
        ├── WrongPin                        PKCS#11 user PIN incorrect
        └── WrongPassword                   keystore file password incorrect (MAC mismatch)
"""

from __future__ import annotations


class KeyStoreError(Exception):
    """The key store could not perform the operation (nothing was signed)."""


class KeyStoreUnavailable(KeyStoreError):
    """The PKCS#11 module, the token or the keystore directory cannot be used."""


class KeyNotFound(KeyStoreError, LookupError):
    """No key with this label exists in the store."""

    def __init__(self, label: str, where: str) -> None:
        super().__init__(f"no key labelled {label!r} in {where}")
        self.label = label


class KeyExists(KeyStoreError):
    """Creating a key whose label is already taken; labels are how keys are found."""

    def __init__(self, label: str, where: str) -> None:
        super().__init__(f"a key labelled {label!r} already exists in {where}")
        self.label = label


class AuthenticationError(KeyStoreError):
    """The PIN or password that unlocks the store was refused."""


class WrongPin(AuthenticationError):
    """The token refused the user PIN (CKR_PIN_INCORRECT)."""


class WrongPassword(AuthenticationError):
    """The keystore file did not decrypt: its MAC does not match, so the password is wrong."""
