"""Encrypted-file key store: one Web3 Secret Storage v3 file per key, as eth-account writes it.

The files are the format geth, MetaMask exports and eth-account all read (scrypt KDF,
AES-128-CTR, keccak MAC), so a user can move a key in or out with standard tools. Encryption and
decryption are eth-account's `Account.encrypt` / `Account.decrypt`; this module only decides
where files go and how they are written:

- `<directory>/<label>.json`, mode 0600; the public `address` field lets `list()` work without
  the password.
- Written to a temporary file in the same directory, flushed, fsynced, renamed over the target
  and the directory fsynced: a crash leaves either no key or the whole key, never half a file.
- A wrong password shows up as eth-account's "MAC mismatch" and is reported as `WrongPassword`.

Unlike a token, this store must hold the decrypted key in memory to sign; it is decrypted on
first use (scrypt is deliberately slow) and kept until `lock()`.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from eth_account import Account
from eth_keys.datatypes import PrivateKey, PublicKey, Signature
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address

from tally_common.keystore.base import KeyInfo, LoginGuard, SignCounter, check_label
from tally_common.keystore.errors import (
    KeyExists,
    KeyNotFound,
    KeyStoreUnavailable,
    WrongPassword,
)

#: eth-account's default scrypt cost (n = 2**18), the Web3 Secret Storage "standard" setting.
STANDARD_SCRYPT_N = 2**18


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that readers and crashes see the old or the new file only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FileKeyStore(SignCounter):
    """Web3 Secret Storage v3 files in one directory, all under one password.

    `scrypt_n` only affects keys created by this store (reading honours each file's own
    parameters); lower it in tests, keep the standard cost for real keys.
    """

    backend = "file"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        password: str,
        scrypt_n: int = STANDARD_SCRYPT_N,
        guard: LoginGuard | None = None,
    ) -> None:
        super().__init__()
        self.directory = Path(directory)
        self._password = password
        self._scrypt_n = scrypt_n
        self._guard = guard
        self._lock = threading.Lock()
        self._unlocked: dict[str, PrivateKey] = {}

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self.directory)!r})"

    @property
    def where(self) -> str:
        return f"keystore directory {self.directory}"

    def _path(self, label: str) -> Path:
        return self.directory / f"{check_label(label)}.json"

    def _read(self, label: str) -> dict:
        path = self._path(label)
        try:
            keyfile: dict = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise KeyNotFound(label, self.where) from exc
        except (OSError, ValueError) as exc:
            raise KeyStoreUnavailable(f"cannot read keystore file {path}: {exc}") from exc
        return keyfile

    def list(self) -> list[KeyInfo]:
        if not self.directory.is_dir():
            return []
        keys = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                address = json.loads(path.read_text(encoding="utf-8"))["address"]
            except (OSError, ValueError, KeyError):
                continue  # not a keystore file: leave it alone
            keys.append(KeyInfo(path.stem, to_checksum_address(address), self.backend))
        return keys

    def create(self, label: str) -> KeyInfo:
        path = self._path(label)
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise KeyStoreUnavailable(f"cannot create {self.directory}: {exc}") from exc
        with self._lock:
            if path.exists():
                raise KeyExists(label, self.where)
            account = Account.create()
            keyfile = Account.encrypt(
                account.key, self._password, kdf="scrypt", iterations=self._scrypt_n
            )
            write_atomically(path, json.dumps(keyfile).encode())
            self._unlocked[label] = PrivateKey(account.key)
            return KeyInfo(label, account.address, self.backend)

    def address(self, label: str) -> ChecksumAddress:
        return to_checksum_address(self._read(label)["address"])

    def public_key(self, label: str) -> PublicKey:
        """The key's public key: the file holds only the address in clear, so this decrypts
        (raises `WrongPassword`)."""
        return self._private_key(label).public_key

    def unlock(self, label: str) -> None:
        """Decrypt now (otherwise done on first signature); raises `WrongPassword`."""
        self._private_key(label)

    def lock(self) -> None:
        """Forget every decrypted key; the next signature decrypts again."""
        with self._lock:
            self._unlocked.clear()

    def _private_key(self, label: str) -> PrivateKey:
        with self._lock:
            key = self._unlocked.get(label)
            if key is not None:
                return key
            keyfile = self._read(label)
            if self._guard is not None:
                self._guard.check()
            try:
                secret = Account.decrypt(keyfile, self._password)
            except ValueError as exc:
                if "MAC mismatch" not in str(exc):
                    raise KeyStoreUnavailable(f"cannot decrypt key {label!r}: {exc}") from exc
                if self._guard is not None:
                    self._guard.failure()
                raise WrongPassword(
                    f"wrong password for key {label!r} in {self.where} (MAC mismatch)"
                ) from exc
            if self._guard is not None:
                self._guard.success()
            key = PrivateKey(secret)
            self._unlocked[label] = key
            return key

    def sign_digest(self, label: str, digest: bytes) -> Signature:
        if len(digest) != 32:
            raise ValueError(f"a digest is 32 bytes, got {len(digest)}")
        signature = self._private_key(label).sign_msg_hash(digest)
        self._count_signature()
        return signature
