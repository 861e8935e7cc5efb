"""HMAC signatures on rail callbacks, shared by the simulator (signs) and its adapter
(verifies): `Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>`.

The timestamp is signed with the body, so a captured callback cannot be replayed after
`TOLERANCE` seconds; the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Tally-Signature"
TOLERANCE = 300.0


def sign(secret: str, body: bytes, now: float | None = None) -> str:
    stamp = int(time.time() if now is None else now)
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def verify(secret: str, body: bytes, header: str | None, now: float | None = None) -> bool:
    """Whether `header` signs `body` with `secret` within the tolerance."""
    if not header:
        return False
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        stamp = int(fields["t"])
        given = fields["v1"]
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - stamp) > TOLERANCE:
        return False
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, given)
