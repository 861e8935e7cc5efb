"""Sign-in with Ethereum (EIP-4361): a challenge the wallet signs, exchanged for a short token.

The node writes the whole EIP-4361 message itself and remembers it by nonce, so checking an
answer needs no message parser: the returned text must be byte-for-byte the issued one, not
expired, signed (EIP-191 `personal_sign`, recovered by eth-account) by the address it names,
and its nonce is spent on the first attempt, right or wrong, so nothing can be replayed or
guessed at. The wallet never sends a private key anywhere; the node never holds one.

The message's `domain` and `uri` are configured (`SiweOrigin`), never read from the request:
a Host header says whatever the client wrote, so a phishing page relaying to the node could
have it name the phishing site, and the wallet, which warns when the domain is not the page
asking, would stay silent.

Open challenges are bounded twice, and nobody's challenge is given up to make room: a client
address holds at most `per_client` (429 beyond), and the node at most `max_open` (503 beyond),
each until its oldest is answered or expires. Before, the oldest of 10,000 were forgotten, so
a flood from one client evicted everyone else's sign-in.

Sessions are JWTs (PyJWT, HS256) under a secret made at node start: they name one address and
its role, expire after `token_ttl` seconds, and die with the process that issued them.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import SplitResult, urlsplit

import jwt
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

from node.api.errors import RateLimited, Unauthenticated, Unavailable
from node.api.roles import ApiRole
from node.rpc.errors import ListenerConfigError

_NONCE = re.compile(r"^Nonce: ([A-Za-z0-9]{8,64})$", re.MULTILINE)
_ISSUER = "tally-node"
_PREAMBLE = " wants you to sign in with your Ethereum account:"
MAX_OPEN_CHALLENGES = 10_000
CHALLENGES_PER_CLIENT = 5


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class SiweOrigin:
    """Where wallets sign in to: EIP-4361's `domain` (host[:port]) and `uri` (the REST API)."""

    domain: str
    uri: str

    @classmethod
    def parse(cls, setting: str | None, host: str, port: int) -> SiweOrigin:
        """`--api-siwe-domain`: an authority (`bank.example`, `10.0.0.5:8545`: plain http) or an
        origin (`https://bank.example`); None: the node's listen address, `host:port`. A value
        that is neither is a `ListenerConfigError`."""
        if setting is None:
            setting = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        text = setting.strip()
        parts = urlsplit(text if "://" in text else "http://" + text)
        if not _is_origin(parts):
            raise ListenerConfigError(
                f"--api-siwe-domain: {setting!r} is not host[:port] or http[s]://host[:port]"
            )
        return cls(parts.netloc, f"{parts.scheme}://{parts.netloc}/api/v1")


def _is_origin(parts: SplitResult) -> bool:
    """Scheme, host and port only: a path or credentials would not be an EIP-4361 domain."""
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.username is None
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
    )


@dataclass(frozen=True, slots=True)
class Challenge:
    address: bytes
    message: str
    nonce: str
    expires_at: int
    client: str
    """The address that asked (`node.api.ratelimit.client_of`), whose allowance it uses."""


@dataclass(frozen=True, slots=True)
class Session:
    address: bytes
    role: ApiRole
    expires_at: int


class SignIn:
    """Issues challenges and session tokens; verifies both."""

    def __init__(
        self,
        chain_id: int,
        origin: SiweOrigin,
        challenge_ttl: int = 300,
        token_ttl: int = 900,
        max_open: int = MAX_OPEN_CHALLENGES,
        per_client: int = CHALLENGES_PER_CLIENT,
    ) -> None:
        self.chain_id = chain_id
        self.origin = origin
        self.challenge_ttl = challenge_ttl
        self.token_ttl = token_ttl
        self.max_open = max_open
        self.per_client = per_client
        self._secret = secrets.token_bytes(32)
        self._open: OrderedDict[str, Challenge] = OrderedDict()  # oldest (first to expire) first
        self._by_client: dict[str, list[Challenge]] = {}

    def challenge(self, address: bytes, client: str) -> Challenge:
        """A fresh EIP-4361 message for `address` to sign, asked for by `client`: 429 if that
        client already has `per_client` open, 503 if the node has `max_open`."""
        now = time.time()
        self._forget_expired(now)
        mine = self._by_client.get(client, [])
        if len(mine) >= self.per_client:
            raise RateLimited(_seconds_until(mine[0].expires_at, now))
        if len(self._open) >= self.max_open:
            oldest = next(iter(self._open.values()))
            raise Unavailable(
                "too many sign-ins are waiting for a signature",
                _seconds_until(oldest.expires_at, now),
            )
        nonce = secrets.token_hex(16)
        issued_at = int(now)
        expires_at = issued_at + self.challenge_ttl
        message = (
            f"{self.origin.domain}{_PREAMBLE}\n"
            f"{to_checksum_address(address)}\n\n"
            "Sign in to the Tally REST API.\n\n"
            f"URI: {self.origin.uri}\n"
            "Version: 1\n"
            f"Chain ID: {self.chain_id}\n"
            f"Nonce: {nonce}\n"
            f"Issued At: {iso(issued_at)}\n"
            f"Expiration Time: {iso(expires_at)}"
        )
        issued = Challenge(address, message, nonce, expires_at, client)
        self._open[nonce] = issued
        self._by_client.setdefault(client, []).append(issued)
        return issued

    def _forget_expired(self, now: float) -> None:
        while self._open:
            nonce, oldest = next(iter(self._open.items()))
            if oldest.expires_at > now:
                return
            self._take(nonce)

    def _take(self, nonce: str) -> Challenge | None:
        """Remove an open challenge (answered or expired), giving its client the room back."""
        challenge = self._open.pop(nonce, None)
        if challenge is not None:
            mine = self._by_client[challenge.client]
            mine.remove(challenge)
            if not mine:
                del self._by_client[challenge.client]
        return challenge

    def take(self, message: str) -> Challenge:
        """The open challenge whose nonce `message` names, spent now; 401 if there is none.

        Separate from `verify` so that callers can tell an answer to nothing (which costs the
        node a lookup and gains a guesser nothing: nonces are 128 random bits) from a wrong
        answer to a real challenge, the failure worth throttling."""
        match = _NONCE.search(message)
        challenge = self._take(match.group(1)) if match else None
        if challenge is None:
            raise Unauthenticated("unknown or already used sign-in challenge")
        return challenge

    def verify(self, challenge: Challenge, message: str, signature: str) -> bytes:
        """The address that signed `challenge` (from `take`) as `message`, or 401: a message
        for another domain (named as such, so a wallet's user sees why), altered, expired, or
        not signed by the challenged address."""
        if message.partition("\n")[0] != self.origin.domain + _PREAMBLE:
            raise Unauthenticated(
                f"the message is not for this node's sign-in domain, {self.origin.domain}"
            )
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

    def issue(self, address: bytes, role: ApiRole) -> tuple[str, int]:
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
        return Session(bytes.fromhex(claims["sub"][2:]), ApiRole(claims["role"]), claims["exp"])


def _seconds_until(moment: float, now: float) -> int:
    """A Retry-After: whole seconds until `moment`, at least 1."""
    return max(1, math.ceil(moment - now))
