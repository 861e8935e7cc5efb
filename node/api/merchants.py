"""The bank's merchant registry: which addresses are merchants, and of what category.

Spending analysis groups a customer's payments by the category of the payee. The registry is
the bank's own bookkeeping, not consensus data: it lives in each node's store under
`M + address` -> JSON {name, category}, maintained by admins through the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from node.storage.schema import merchant_key, merchant_prefix
from node.storage.store import KeyValueStore

_KEY_LENGTH = len(merchant_key(bytes(20)))


@dataclass(frozen=True, slots=True)
class Merchant:
    address: bytes
    name: str
    category: str


class MerchantRegistry:
    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    def get(self, address: bytes) -> Merchant | None:
        data = self.store.get(merchant_key(address))
        if data is None:
            return None
        fields = json.loads(data)
        return Merchant(address, fields["name"], fields["category"])

    def save(self, merchant: Merchant) -> None:
        value = json.dumps({"name": merchant.name, "category": merchant.category}).encode()
        self.store.commit({merchant_key(merchant.address): value})

    def delete(self, address: bytes) -> bool:
        if self.store.get(merchant_key(address)) is None:
            return False
        self.store.commit({merchant_key(address): None})
        return True

    def all(self) -> list[Merchant]:
        """Every merchant in address order."""
        prefix = merchant_prefix()
        merchants = []
        for key in self.store.iterate_prefix(prefix):
            if len(key) != _KEY_LENGTH:  # a state-trie node whose hash starts with "M"
                continue
            merchant = self.get(key[len(prefix) :])
            if merchant is not None:
                merchants.append(merchant)
        return merchants
