"""The bank's Points ledger and its catalog of merchant offers, from the `Points` artifact.

Points are not money: writes are judged by the wallet's policy as a zero-value call to the
ledger (the policy limits payments, not loyalty points). A merchant (an enterprise account)
publishes offers; a customer redeems one, which burns its price in points on chain, where the
stock and the expiry are enforced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from client.artifacts import contract_abi, require_functions
from client.policy import Payment
from client.tokens import ContractBinding

if TYPE_CHECKING:
    from client.wallet import Submitted, Wallet

#: The Points ledger's address on a `tally dev` chain (the genesis puts it there).
DEV_POINTS = "0x000000000000000000000000000000000000a001"


@dataclass(frozen=True)
class Offer:
    """A catalog offer as the ledger keeps it; `expiry` in Unix seconds (exclusive)."""

    offer_id: int
    merchant: str
    price: int
    stock: int
    expiry: int
    closed: bool

    def open_at(self, timestamp: int) -> bool:
        """Whether it can be redeemed at `timestamp` (not closed, not expired, in stock)."""
        return not self.closed and timestamp < self.expiry and self.stock > 0


class Points(ContractBinding):
    """The Points ledger at `address`."""

    ARTIFACT = "Points"

    def __init__(self, wallet: Wallet, address: str = DEV_POINTS) -> None:
        super().__init__(wallet, address, contract_abi(self.ARTIFACT))

    def balance_of(self, account: str) -> int:
        return int(self.call("balanceOf", to_checksum_address(account)))

    def offer_count(self) -> int:
        require_functions(self.ARTIFACT, self.abi, "offerCount")
        return int(self.call("offerCount"))

    def offer(self, offer_id: int) -> Offer:
        """An offer by id (an unknown id reads as merchant 0x0)."""
        require_functions(self.ARTIFACT, self.abi, "offers")
        merchant, expiry, closed, price, stock = self.call("offers", offer_id)
        return Offer(
            offer_id, to_checksum_address(merchant), int(price), int(stock), int(expiry), closed
        )

    def offers(self) -> list[Offer]:
        """Every offer ever published, oldest first (one call each: a catalog, not an index)."""
        return [self.offer(i) for i in range(1, self.offer_count() + 1)]

    def publish_offer(self, price: int, stock: int, expiry: int, **options: Any) -> Submitted:
        """Merchant only: offer `stock` items at `price` points each until `expiry`."""
        return self._write("publishOffer", price, stock, expiry, **options)

    def redeem_offer(self, offer_id: int, quantity: int = 1, **options: Any) -> Submitted:
        """Take `quantity` items of an offer, burning their price in this wallet's points."""
        return self._write("redeemOffer", offer_id, quantity, **options)

    def close_offer(self, offer_id: int, **options: Any) -> Submitted:
        """Close an offer: its merchant at any time, anyone once it has expired."""
        return self._write("closeOffer", offer_id, **options)

    def _write(self, function: str, *args: Any, **options: Any) -> Submitted:
        require_functions(self.ARTIFACT, self.abi, function)
        return self.transact(
            function, *args, payment=Payment(self.address, self.address, 0), **options
        )
