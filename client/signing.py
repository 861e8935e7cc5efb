"""Sign transactions and messages with any `KeyStore`, which only ever sees a digest.

eth-account's `Account.sign_transaction` needs the private key in hand, which an HSM will never
give, so the digest and the signed encoding are built here from eth-account's public pieces:

- **EIP-2930 / EIP-1559 / EIP-7702**:
  `eth_account.typed_transactions.TypedTransaction.from_dict(tx)`; `.hash()` is the signing
  digest and `from_dict(tx | {v, r, s}).encode()` the raw transaction. Tests compare
  both against `Account.sign_transaction` byte for byte. An EIP-7702
  authorization is signed the same way: eth-account's `Authorization(...).hash()` is the
  digest, the store signs it (`sign_authorization`).
- **Legacy (EIP-155)**: eth-account has no public API for an unsigned legacy transaction (its
  helpers live in the private `eth_account._utils`), so the nine-item list
  `[nonce, gasPrice, gas, to, value, data, chainId, 0, 0]` is encoded with the `rlp` library and
  hashed with `eth_utils.keccak`, and the signed list carries `v = recovery_id + 35 + 2 *
  chainId`. Only replay-protected legacy transactions are made: the node refuses others.
- **EIP-191 / EIP-712**: `encode_defunct` / `encode_typed_data` build the `SignableMessage`;
  eth-account's hasher for it is private (`_hash_eip191_message`), so the digest is EIP-191's
  envelope over the message's public fields, `keccak(0x19 || version || header || body)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from eth_account.messages import SignableMessage, encode_defunct, encode_typed_data
from eth_account.typed_transactions import TypedTransaction
from eth_account.typed_transactions.set_code_transaction import Authorization
from eth_keys.datatypes import Signature
from eth_utils import keccak, to_bytes, to_canonical_address, to_checksum_address, to_int
from hexbytes import HexBytes

from tally_common.keystore.base import KeyStore

LEGACY, ACCESS_LIST, DYNAMIC_FEE, SET_CODE = 0, 1, 2, 4


@dataclass(frozen=True)
class SignedTransaction:
    """A transaction ready for `eth_sendRawTransaction`."""

    raw: bytes
    hash: bytes
    sender: str
    nonce: int
    tx_type: int

    @property
    def hash_hex(self) -> str:
        return "0x" + self.hash.hex()


@dataclass(frozen=True)
class SignedMessage:
    """An EIP-191/EIP-712 signature as wallets return it (v = 27 or 28)."""

    message_hash: bytes
    signature: bytes
    v: int
    r: int
    s: int


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return to_int(hexstr=value) if value.startswith("0x") else int(value)
    return to_int(value)


def _data(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return to_bytes(hexstr=value)
    return bytes(value)


def transaction_type(tx: dict[str, Any]) -> int:
    """The EIP-2718 type a transaction dict describes: explicit `type`, else by its fee fields."""
    if "type" in tx:
        return _int(tx["type"])
    if "authorizationList" in tx:
        return SET_CODE
    if "maxFeePerGas" in tx or "maxPriorityFeePerGas" in tx:
        return DYNAMIC_FEE
    if "accessList" in tx:
        return ACCESS_LIST
    return LEGACY


def _legacy_fields(tx: dict[str, Any]) -> list[Any]:
    to = tx.get("to")
    return [
        _int(tx["nonce"]),
        _int(tx["gasPrice"]),
        _int(tx["gas"]),
        to_canonical_address(to) if to else b"",
        _int(tx.get("value", 0)),
        _data(tx.get("data")),
    ]


def _typed_dict(tx: dict[str, Any], tx_type: int) -> dict[str, Any]:
    typed = {key: value for key, value in tx.items() if key not in ("from",)}
    typed["type"] = tx_type
    typed.setdefault("value", 0)
    typed.setdefault("data", b"")
    typed.setdefault("accessList", [])
    if not typed.get("to"):
        typed.pop("to", None)
    return typed


def transaction_digest(tx: dict[str, Any]) -> bytes:
    """The 32-byte hash a key signs for this transaction (type chosen by `transaction_type`)."""
    if "chainId" not in tx:
        raise ValueError("transaction needs a chainId: the node accepts replay-protected txs only")
    tx_type = transaction_type(tx)
    if tx_type == LEGACY:
        return keccak(rlp.encode([*_legacy_fields(tx), _int(tx["chainId"]), 0, 0]))
    if tx_type in (ACCESS_LIST, DYNAMIC_FEE, SET_CODE):
        return bytes(TypedTransaction.from_dict(_typed_dict(tx, tx_type)).hash())
    raise ValueError(f"unsupported transaction type {tx_type} (legacy, 1, 2 and 4 are)")


def encode_signed_transaction(tx: dict[str, Any], signature: Signature) -> bytes:
    """The raw transaction for `tx` carrying `signature` (v = recovery id 0/1)."""
    tx_type = transaction_type(tx)
    if tx_type == LEGACY:
        v = signature.v + 35 + 2 * _int(tx["chainId"])
        return rlp.encode([*_legacy_fields(tx), v, signature.r, signature.s])
    signed = _typed_dict(tx, tx_type) | {"v": signature.v, "r": signature.r, "s": signature.s}
    return bytes(TypedTransaction.from_dict(signed).encode())


def sign_transaction(store: KeyStore, label: str, tx: dict[str, Any]) -> SignedTransaction:
    """Sign `tx` (a web3-style dict with nonce, gas, fees, chainId) with the key `label`."""
    digest = transaction_digest(tx)
    signature = store.sign_digest(label, digest)
    raw = encode_signed_transaction(tx, signature)
    sender = to_checksum_address(signature.recover_public_key_from_msg_hash(digest).to_address())
    return SignedTransaction(raw, keccak(raw), sender, _int(tx["nonce"]), transaction_type(tx))


def authorization_digest(chain_id: int, address: str, nonce: int) -> bytes:
    """EIP-7702's digest, keccak(0x05 || rlp([chain_id, address, nonce])), by eth-account's
    `Authorization` (the unsigned tuple `Account.sign_authorization` hashes)."""
    unsigned = Authorization(chain_id, to_canonical_address(address), nonce)
    return bytes(unsigned.hash())


def sign_authorization(
    store: KeyStore, label: str, chain_id: int, address: str, nonce: int
) -> dict[str, Any]:
    """An EIP-7702 authorization by the key `label`: its account will run `address`'s code.

    `nonce` is the account's nonce when the transaction carrying it executes: its current
    nonce, plus one if the same account also sends that transaction (the sender's nonce is
    bumped first). Chain id 0 would be valid on every chain; pass the chain's own. The result
    is an `authorizationList` entry as `sign_transaction` and JSON-RPC take it.
    """
    signature = store.sign_digest(label, authorization_digest(chain_id, address, nonce))
    return {
        "chainId": chain_id,
        "address": to_checksum_address(address),
        "nonce": nonce,
        "yParity": signature.v,
        "r": signature.r,
        "s": signature.s,
    }


def message_digest(message: SignableMessage) -> bytes:
    """EIP-191 envelope hash of a `SignableMessage` (see the module docstring)."""
    return keccak(b"\x19" + bytes(message.version) + bytes(message.header) + bytes(message.body))


def sign_message(store: KeyStore, label: str, message: SignableMessage) -> SignedMessage:
    """Sign an EIP-191 `SignableMessage`; `Account.recover_message` returns the key's address."""
    digest = message_digest(message)
    sig = store.sign_digest(label, digest)
    v = sig.v + 27
    raw = sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([v])
    return SignedMessage(digest, HexBytes(raw), v, sig.r, sig.s)


def sign_text(store: KeyStore, label: str, text: str | bytes) -> SignedMessage:
    """`personal_sign` (EIP-191 version 0x45) of a text or byte string."""
    message = encode_defunct(text=text) if isinstance(text, str) else encode_defunct(text)
    return sign_message(store, label, message)


def sign_typed_data(store: KeyStore, label: str, full_message: dict[str, Any]) -> SignedMessage:
    """EIP-712 (`eth_signTypedData_v4`): `full_message` has types, primaryType, domain, message."""
    return sign_message(store, label, encode_typed_data(full_message=full_message))
