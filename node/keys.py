"""The node key: the secp256k1 key that signs this node's commit seals and identifies it.

It lives in one of three places (`tally run --node-key-store`):

- `plaintext`: `<datadir>/nodekey` as hex, created on first start with owner-only permissions
  (`write_private_file`, which the admin listener's token uses too). Dev chains only, unless
  the operator says `--insecure-plaintext-key`: anyone who reads the file is the validator.
- `pkcs11`: a key generated inside a PKCS#11 token (`tally keys new`), which never leaves it.
- `file`: a Web3 Secret Storage file (scrypt, AES), decrypted in memory when the node starts.

The last two are `tally_common.keystore`'s stores, the ones the wallet SDK uses, behind a
`node.signer.StoreSigner`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from eth_keys.datatypes import PrivateKey

from node.signer import NodeSigner, PublicKeyStore, StoreSigner

if TYPE_CHECKING:
    from tally_common.keystore.file import FileKeyStore

NODE_KEY_FILE = "nodekey"
STORES = ("plaintext", "file", "pkcs11")
#: A copy of `tally_common.keystore.pkcs11.SOFTHSM2_MODULE`, so option defaults need not load
#: python-pkcs11; a test keeps them equal.
SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
DEFAULT_LABEL = "node"


class PlaintextKeyRefused(Exception):
    """A plaintext node key on a chain that is not a dev chain, without the operator's consent."""


class NodeKeyUsage(ValueError):
    """Node key options that do not fit together (a token without its label, no PIN...)."""


@dataclass(frozen=True)
class NodeKeySource:
    """Where the node key lives, with the secret that unlocks it (never shown by repr)."""

    store: str = "plaintext"
    label: str = DEFAULT_LABEL
    pkcs11_module: str = SOFTHSM2_MODULE
    pkcs11_token: str | None = None
    pin: str | None = field(default=None, repr=False)
    key_file: Path | None = None
    password: str | None = field(default=None, repr=False)
    insecure_plaintext: bool = False
    scrypt_n: int | None = None
    """scrypt cost of a file key `tally keys new` makes (None: the standard 2**18)."""

    def check(self) -> None:
        """Refuse options that cannot work together, before anything is opened."""
        if self.store not in STORES:
            raise NodeKeyUsage(f"--node-key-store {self.store!r} is not one of {', '.join(STORES)}")
        if self.store == "pkcs11":
            if not self.pkcs11_token:
                raise NodeKeyUsage("a pkcs11 node key needs --pkcs11-token (the token's label)")
            if self.pin is None:
                raise NodeKeyUsage("no token PIN: give --pkcs11-pin-file or TALLY_PKCS11_PIN")
        if self.store == "file":
            if self.key_file is None:
                raise NodeKeyUsage("a file node key needs --node-key-file (LABEL.json)")
            if self.key_file.suffix != ".json":
                raise NodeKeyUsage(
                    f"--node-key-file {self.key_file} is not a LABEL.json keystore file"
                )
            if self.password is None:
                raise NodeKeyUsage(
                    "no keystore password: give --password-file or TALLY_NODE_KEY_PASSWORD"
                )

    @property
    def key_label(self) -> str:
        """The key's label in its store (a file key's label is its file name's stem)."""
        return self.key_file.stem if self.store == "file" and self.key_file else self.label

    def refuse_plaintext(self, chain_id: int, dev_chain_id: int) -> None:
        """Raise `PlaintextKeyRefused` for a plaintext key on a real chain without consent."""
        if self.store == "plaintext" and chain_id != dev_chain_id and not self.insecure_plaintext:
            raise PlaintextKeyRefused(
                f"chain {chain_id} is not a dev chain and the node key would be a plaintext "
                "file: create it in a token or an encrypted file (tally keys new) and start "
                "with --node-key-store pkcs11|file, or accept the risk with "
                "--insecure-plaintext-key"
            )


def open_key_store(source: NodeKeySource) -> PublicKeyStore:
    """The token or keystore directory `source` names (nothing is logged in or decrypted yet).

    Raises `NodeKeyUsage` for options that do not fit together."""
    source.check()
    if source.store == "pkcs11":
        from tally_common.keystore.pkcs11 import Pkcs11KeyStore

        assert source.pkcs11_token is not None and source.pin is not None
        return Pkcs11KeyStore(source.pkcs11_token, source.pin, source.pkcs11_module)
    if source.store == "file":
        return file_store(source)
    raise NodeKeyUsage("a plaintext node key is not in a key store: see --node-key-store")


def file_store(source: NodeKeySource) -> FileKeyStore:
    from tally_common.keystore.file import STANDARD_SCRYPT_N, FileKeyStore

    assert source.key_file is not None
    return FileKeyStore(
        source.key_file.parent, source.password or "", source.scrypt_n or STANDARD_SCRYPT_N
    )


def load_node_signer(source: NodeKeySource, datadir: Path) -> NodeSigner:
    """The node's signer: the plaintext key (created on first start) or a `StoreSigner`, whose
    store is logged in or decrypted now, so a wrong secret fails before the node runs."""
    if source.store == "plaintext":
        return load_or_create_node_key(datadir)
    return StoreSigner(open_key_store(source), source.key_label)


def load_or_create_node_key(datadir: Path) -> PrivateKey:
    path = datadir / NODE_KEY_FILE
    if path.exists():
        return PrivateKey(bytes.fromhex(path.read_text().strip().removeprefix("0x")))
    datadir.mkdir(parents=True, exist_ok=True)
    key = PrivateKey(secrets.token_bytes(32))
    write_private_file(path, key.to_hex() + "\n")
    return key


def write_private_file(path: Path, text: str) -> None:
    """Write a secret only its owner may read (0600), whole or not at all: a temporary file,
    synced, renamed over `path`, so a crash never leaves an empty or half-written secret."""
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
