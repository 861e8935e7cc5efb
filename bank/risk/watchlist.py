"""Watch-list entries as salted hashes: HMAC-SHA256(salt, lowercase address), so the rules file
(and a backup of it) names nobody in the clear; a payment's parties are hashed the same way
and looked up."""

from __future__ import annotations

import hashlib
import hmac


def entry(salt: str, address: str) -> str:
    """The watch-list entry for `address` under `salt` (64 hex digits)."""
    return hmac.new(salt.encode(), address.lower().encode(), hashlib.sha256).hexdigest()
