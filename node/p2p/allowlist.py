"""An updatable node allow-list, usable wherever the p2p layer takes an `allowed` callable."""

from __future__ import annotations

from collections.abc import Iterable


class AllowList:
    """A set of 20-byte node addresses that can be replaced as the node list changes.

    The host only ever calls it, so the on-chain NodeRules contract can later be plugged in as any
    callable; this class serves static configuration and tests. After changing it, call
    `P2PHost.recheck_permissions()` so links to removed nodes close.
    """

    def __init__(self, addresses: Iterable[bytes] = ()) -> None:
        self._addresses = frozenset(self._checked(a) for a in addresses)

    @staticmethod
    def _checked(address: bytes) -> bytes:
        if len(address) != 20:
            raise ValueError(f"node address must be 20 bytes, got {len(address)}")
        return bytes(address)

    def __call__(self, address: bytes) -> bool:
        return address in self._addresses

    def __contains__(self, address: object) -> bool:
        return address in self._addresses

    def __len__(self) -> int:
        return len(self._addresses)

    def replace(self, addresses: Iterable[bytes]) -> None:
        """Swap in a whole new list at once (e.g. read from the contract at a new block)."""
        self._addresses = frozenset(self._checked(a) for a in addresses)

    def add(self, address: bytes) -> None:
        self._addresses = self._addresses | {self._checked(address)}

    def remove(self, address: bytes) -> None:
        self._addresses = self._addresses - {address}
