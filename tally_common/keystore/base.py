"""The key store interface, and the one piece of maths both backends share.

The interface is deliberately four operations wide (list, create, address, sign a digest): the
smaller it is, the easier it is to put behind an HSM, a smart card or a remote signer, and the
less the rest of the SDK or the node can do with a key besides asking for a signature.
Transactions and messages are hashed by the caller (`client.signing`, the node's consensus); a
store never sees anything but a 32-byte digest.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from eth_keys.constants import SECPK1_N
from eth_keys.datatypes import PublicKey, Signature
from eth_typing import ChecksumAddress

LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_label(label: str) -> str:
    """Labels become file names and token object labels: keep them to a portable alphabet."""
    if not LABEL_RE.match(label):
        raise ValueError(
            f"invalid key label {label!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return label


@dataclass(frozen=True)
class KeyInfo:
    """A key as a store lists it: never more than what is public."""

    label: str
    address: str
    backend: str


@runtime_checkable
class KeyStore(Protocol):
    """Where keys live. Implementations must be safe to call from several threads."""

    backend: str

    def list(self) -> list[KeyInfo]:
        """Every key in the store, sorted by label."""
        ...

    def create(self, label: str) -> KeyInfo:
        """Generate a new secp256k1 key inside the store; raises `KeyExists` if taken."""
        ...

    def address(self, label: str) -> ChecksumAddress:
        """The checksummed Ethereum address of the key; raises `KeyNotFound`."""
        ...

    def sign_digest(self, label: str, digest: bytes) -> Signature:
        """Sign a 32-byte digest; v is the recovery id (0 or 1) and s is in the low half."""
        ...


class LoginGuard(Protocol):
    """Counts failed unlocks (wrong PIN/password) so a store can be locked out.

    The SDK's `client.policy.PinGuard` implements it; stores call `check()` before any attempt
    reaches the token or the KDF, then report the outcome.
    """

    def check(self) -> None:
        """Raise (the SDK: `PinLockedOut`) if no attempt may be made now."""
        ...

    def failure(self) -> None:
        """Record a refused secret."""
        ...

    def success(self) -> None:
        """Record an accepted secret (resets the count)."""
        ...


class SignCounter:
    """How many signatures a store has produced: lets auditors and tests prove that a refused
    payment never reached the key (policy runs first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.signatures_made = 0

    def _count_signature(self) -> None:
        with self._lock:
            self.signatures_made += 1


def recoverable_signature(digest: bytes, r: int, s: int, public_key: PublicKey) -> Signature:
    """Turn a plain ECDSA (r, s) into an Ethereum signature.

    Tokens return r||s only. Ethereum wants s in the lower half of the curve order (EIP-2;
    (r, n - s) is the same signature) and a recovery id, which a token does not report: of the
    two candidates, the one that recovers the key's own public key is right.
    """
    if not (0 < r < SECPK1_N and 0 < s < SECPK1_N):
        raise ValueError("signature component out of range")
    if s > SECPK1_N // 2:
        s = SECPK1_N - s
    for v in (0, 1):
        candidate = Signature(vrs=(v, r, s))
        try:
            if candidate.recover_public_key_from_msg_hash(digest) == public_key:
                return candidate
        except Exception:  # an unrecoverable candidate is just the wrong v
            continue
    raise ValueError("signature does not verify against the key's public key")
