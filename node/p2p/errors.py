"""Errors raised by the p2p layer, under one root so callers can catch the package as a whole.

```
P2PError
├── HandshakeError          the link was refused before any application frame was exchanged
│   ├── HandshakeTimeout    a handshake read did not complete in time
│   ├── HandshakeRefused    the remote refused us and said why (`reason`)
│   ├── NotPermitted        the remote is not on the node list, or is not the node we dialled
│   ├── NetworkMismatch     protocol version, chain id or genesis hash differ
│   └── BadHandshake        malformed message, bad signature, invalid key share
└── LinkError               an established link must close
    ├── FrameTooLarge       (also ValueError) a frame above the size limit, sent or received
    ├── FrameAuthError      a frame failed AEAD authentication: tampered, replayed or reordered
    └── NonceExhausted      a direction's frame counter reached its limit; the key is spent
```
"""

from __future__ import annotations


class P2PError(Exception):
    """Root of every error the p2p layer raises."""


class HandshakeError(P2PError):
    """The handshake failed; no application frame was sent or accepted on this connection."""


class HandshakeTimeout(HandshakeError):
    """A handshake read timed out: a silent peer must not hold a connection slot."""


class HandshakeRefused(HandshakeError):
    """The remote refused the handshake; `reason` is its (untrusted, unauthenticated) text."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"refused by remote: {reason}")
        self.reason = reason


class NotPermitted(HandshakeError):
    """The remote's address is not allowed, or differs from the address we meant to dial."""


class NetworkMismatch(HandshakeError):
    """The remote speaks another protocol version or belongs to another chain."""


class BadHandshake(HandshakeError):
    """A handshake message was malformed or its signature did not verify."""


class LinkError(P2PError):
    """An established link is no longer usable and must be closed."""


class FrameTooLarge(LinkError, ValueError):
    """A frame exceeded the maximum size; refused before any allocation for its body."""


class FrameAuthError(LinkError):
    """AEAD decryption failed, so the frame was altered, replayed, reordered or forged."""


class NonceExhausted(LinkError):
    """A direction used up its nonce space; reusing a nonce would break the cipher."""
