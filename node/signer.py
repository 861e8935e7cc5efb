"""The node's signer: the one object that signs for the node key, wherever the key lives.

Everything the node signs goes through it: commit seals, QBFT messages, and the p2p
handshake's transcript signature (the handshake's X25519 keys are ephemeral and stay in
process). The interface is the two members of eth-keys' `PrivateKey` the node uses, so a
plaintext key (`PrivateKey`, dev chains) is a signer as it is, and `StoreSigner` puts a key in a
PKCS#11 token or an encrypted keystore file behind the same two members.

Signing stays cheap: the public key (and so the address) is read once when the signer is made,
and a signature is one call to the store (SoftHSM2: well under a millisecond; see
`benchmarks/node_signing.py`). A QBFT round signs a few messages and seals once per block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from eth_keys.datatypes import PublicKey, Signature

from tally_common.keystore.base import KeyStore


class NodeSigner(Protocol):
    """Signs 32-byte digests with the node key; v is the recovery id (0 or 1), s is low."""

    @property
    def public_key(self) -> PublicKey:
        """The node key's public key: its address is the node's identity."""
        ...

    def sign_msg_hash(self, message_hash: bytes) -> Signature:
        """Sign a digest the caller computed (keccak-256 of what it signs)."""
        ...


class PublicKeyStore(KeyStore, Protocol):
    """A key store that can also give a key's public key (both `tally_common` stores can)."""

    def public_key(self, label: str) -> PublicKey:
        """The key's public key; may log in or decrypt, so a wrong secret fails here."""
        ...


class StoreSigner:
    """A `NodeSigner` whose key stays in a key store: a PKCS#11 token or an encrypted file.

    Made with the store's secret already given: reading the public key logs in to the token
    or decrypts the file, so a wrong PIN or password fails when the node starts, not at its
    first block.
    """

    def __init__(self, store: PublicKeyStore, label: str) -> None:
        self.store = store
        self.label = label
        self._public_key = store.public_key(label)

    def __repr__(self) -> str:
        return f"StoreSigner({self.store!r}, {self.label!r})"

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    def sign_msg_hash(self, message_hash: bytes) -> Signature:
        return self.store.sign_digest(self.label, message_hash)


@dataclass(frozen=True)
class NodeIdentity:
    """What other institutions need of a node: its address (the validator and node lists) and
    its public key (what the p2p handshake proves, the `id` of `admin_peers`)."""

    address: str
    public_key: str

    @classmethod
    def of(cls, public_key: PublicKey) -> NodeIdentity:
        return cls(public_key.to_checksum_address(), public_key.to_hex())
