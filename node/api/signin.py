"""Sign-in with Ethereum (EIP-4361): a challenge the wallet signs, exchanged for a short token.

The node writes the whole EIP-4361 message itself and remembers it by nonce, so checking an
answer needs no message parser: the returned text must be byte-for-byte the issued one, not
expired, signed (EIP-191 `personal_sign`, recovered by eth-account) by the address it names,
and its nonce is spent on the first attempt, right or wrong, so nothing can be replayed or
guessed at. The wallet never sends a private key anywhere; the node never holds one.

Sessions are JWTs (PyJWT, HS256) under a secret made at node start: they name one address and
its role, expire after `token_ttl` seconds, and die with the process that issued them.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

from node.api.errors import Unauthenticated
from node.api.roles import Role

_NONCE = re.compile(r"^Nonce: ([A-Za-z0-9]{8,64})$", re.MULTILINE)
_MAX_OPEN_CHALLENGES = 10_000
_ISSUER = "tally-node"


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Challenge:
    address: bytes
    message: str
    nonce: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class Session:
    address: bytes
    role: Role
    expires_at: int


class SignIn:
    """Issues challenges and session tokens; verifies both."""

    def __init__(self, chain_id: int, challenge_ttl: int = 300, token_ttl: int = 900) -> None:
        self.chain_id = chain_id
        self.challenge_ttl = challenge_ttl
        self.token_ttl = token_ttl
        self._secret = secrets.token_bytes(32)
        self._open: OrderedDict[str, Challenge] = OrderedDict()

    def challenge(self, address: bytes, domain: str, uri: str) -> Challenge:
        """A fresh EIP-4361 message for `address` to sign (oldest challenges are forgotten
        beyond 10,000 open ones, so an anonymous flood cannot exhaust memory)."""
        nonce = secrets.token_hex(16)
        now = int(time.time())
        expires_at = now + self.challenge_ttl
        message = (
            f"{domain} wants you to sign in with your Ethereum account:\n"
            f"{to_checksum_address(address)}\n\n"
            "Sign in to the Tally REST API.\n\n"
            f"URI: {uri}\n"
            "Version: 1\n"
            f"Chain ID: {self.chain_id}\n"
            f"Nonce: {nonce}\n"
            f"Issued At: {iso(now)}\n"
            f"Expiration Time: {iso(expires_at)}"
        )
        issued = Challenge(address, message, nonce, expires_at)
        self._open[nonce] = issued
        while len(self._open) > _MAX_OPEN_CHALLENGES:
            self._open.popitem(last=False)
        return issued

    def verify(self, message: str, signature: str) -> bytes:
        """The address that signed an issued, unexpired, unused challenge, or 401."""
        match = _NONCE.search(message)
        challenge = self._open.pop(match.group(1), None) if match else None
        if challenge is None:
            raise Unauthenticated("unknown or already used sign-in challenge")
        if message != challenge.message:
            raise Unauthenticated("the message differs from the challenge issued")
        if time.time() >= challenge.expires_at:
            raise Unauthenticated("the sign-in challenge has expired; ask for a new one")
        try:
            signer = Account.recover_message(encode_defunct(text=message), signature=signature)
        except Exception as exc:  # eth-account raises several types for malformed signatures
            raise Unauthenticated(f"unreadable signature: {exc}") from exc
        if bytes.fromhex(signer[2:]) != challenge.address:
            raise Unauthenticated("the signature is not from the challenged address")
        return challenge.address

    def issue(self, address: bytes, role: Role) -> tuple[str, int]:
        """A session token for `address` acting as `role`, and when it expires."""
        expires_at = int(time.time()) + self.token_ttl
        token = jwt.encode(
            {
                "iss": _ISSUER,
                "sub": to_checksum_address(address),
                "role": role.value,
                "exp": expires_at,
                "jti": secrets.token_hex(8),
            },
            self._secret,
            algorithm="HS256",
        )
        return token, expires_at

    def session(self, token: str) -> Session:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=_ISSUER,
                options={"require": ["exp", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("session token expired; sign in again") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("invalid credential") from exc
        return Session(bytes.fromhex(claims["sub"][2:]), Role(claims["role"]), claims["exp"])
