"""Encrypted, length-prefixed frames for an established link (ChaCha20-Poly1305).

```
frame = length (4 bytes, big-endian, = len(ciphertext))
        || ChaCha20-Poly1305(key, nonce, plaintext, aad = length)
nonce = this direction's frame counter as 12 big-endian bytes, starting at 0
```

The nonce is never sent: each side counts the frames it has sealed and opened. So a replayed,
dropped, reordered or injected frame is opened under the wrong nonce and fails authentication,
and the link closes; the length prefix is authenticated as associated data, so a changed length
fails too. Each direction has its own key (see `handshake.derive_keys`), so a frame cannot be
reflected back to its writer. ChaCha20-Poly1305 is chosen over AES-GCM for its far larger safe
usage limit per key with long-lived links and large frames; the counter limit still closes the
link long before a nonce could repeat.

The receiver checks the length against its limit before reading the body, so a peer cannot make
it allocate more than `max_frame_size` for one frame.
"""

from __future__ import annotations

import asyncio

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from node.p2p.errors import FrameAuthError, FrameTooLarge, NonceExhausted

MAX_FRAME_SIZE = 16 * 1024 * 1024
"""Largest plaintext in one frame (message kind byte included)."""
TAG_SIZE = 16
HEADER_SIZE = 4
NONCE_LIMIT = 2**64
"""Frames per direction before the link must close; far below the 2**96 nonce space."""


def _nonce(counter: int) -> bytes:
    return counter.to_bytes(12, "big")


class _DirectionCipher:
    """One direction's AEAD key and frame counter (the counter is the nonce, never sent)."""

    def __init__(
        self, key: bytes, max_frame_size: int = MAX_FRAME_SIZE, limit: int = NONCE_LIMIT
    ) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._counter = 0
        self._limit = limit
        self.max_frame_size = max_frame_size


class FrameSealer(_DirectionCipher):
    """Encrypts outgoing frames for one direction; the only holder of that direction's counter."""

    def seal(self, plaintext: bytes) -> bytes:
        """Return the whole frame (header and ciphertext) and advance the counter."""
        if len(plaintext) > self.max_frame_size:
            raise FrameTooLarge(f"frame of {len(plaintext)} bytes > {self.max_frame_size}")
        if self._counter >= self._limit:
            raise NonceExhausted("send counter exhausted")
        header = (len(plaintext) + TAG_SIZE).to_bytes(HEADER_SIZE, "big")
        ciphertext = self._aead.encrypt(_nonce(self._counter), plaintext, header)
        self._counter += 1
        return header + ciphertext


class FrameOpener(_DirectionCipher):
    """Decrypts incoming frames for one direction, in order, each exactly once."""

    def body_length(self, header: bytes) -> int:
        """Validate a frame header and return how many ciphertext bytes follow it."""
        length = int.from_bytes(header, "big")
        if length < TAG_SIZE:
            raise FrameAuthError(f"frame of {length} bytes is shorter than its tag")
        if length - TAG_SIZE > self.max_frame_size:
            raise FrameTooLarge(f"frame of {length - TAG_SIZE} bytes > {self.max_frame_size}")
        return length

    def open(self, header: bytes, ciphertext: bytes) -> bytes:
        """Authenticate and decrypt the next frame; any failure means the link must close."""
        if self._counter >= self._limit:
            raise NonceExhausted("receive counter exhausted")
        try:
            plaintext = self._aead.decrypt(_nonce(self._counter), ciphertext, header)
        except InvalidTag as error:
            raise FrameAuthError("frame failed authentication") from error
        self._counter += 1
        return plaintext


async def read_frame(
    reader: asyncio.StreamReader, opener: FrameOpener, idle_timeout: float | None = None
) -> bytes:
    """Read and open one frame. `idle_timeout` bounds the wait for it to start arriving.

    Raises `asyncio.IncompleteReadError` at end of stream, `TimeoutError` when idle, or a
    `LinkError`.
    """
    async with asyncio.timeout(idle_timeout):
        header = await reader.readexactly(HEADER_SIZE)
    length = opener.body_length(header)
    async with asyncio.timeout(idle_timeout):
        body = await reader.readexactly(length)
    return opener.open(header, body)
