"""The points catalog as the gateway shows it: merchants' offers and their history.

Offers live in the Points contract (published by merchants, redeemed by customers with their
own keys through the SDK, `client.points`), which enforces stock and expiry; the gateway only
reads them: the offers with whether each is open at the head block's time (not the bank's
clock), the merchant's name from the node's merchant registry when a node API key is
configured, and the catalog's events (published, redeemed, expired, withdrawn) from the
contract's logs, optionally for one account.

Routes: `GET /catalog/offers[?include_closed=true]` and `GET /catalog/events[?account=0x..]`
(any API key; a customer key sees its own redemptions only).

No `from __future__ import annotations` here: FastAPI must evaluate the routes' annotations
where they are defined, as they name the `caller` dependency the gateway passes in.
"""

from collections.abc import Callable
from typing import Annotated, Any

from eth_utils import event_abi_to_log_topic
from fastapi import Depends, FastAPI, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from bank.auth import GatewayRole
from bank.models import ApiKey
from client.points import Points

EVENTS = ("OfferPublished", "OfferRedeemed", "OfferExpired", "OfferWithdrawn")


class Catalog:
    """Reads of the catalog in the Points ledger `points`; `names()` gives merchant names."""

    def __init__(self, points: Points, names: Callable[[], dict[str, str]] | None = None) -> None:
        self.points = points
        self.names = names
        events = points.contract.events
        self._events = {"0x" + event_abi_to_log_topic(events[n].abi).hex(): n for n in EVENTS}

    def _now(self) -> int:
        return int(self.points.wallet.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)

    def offers(self, include_closed: bool = False) -> list[dict[str, Any]]:
        now = self._now()
        names = self.names() if self.names else {}
        found = []
        for offer in self.points.offers():
            is_open = offer.open_at(now)
            if is_open or include_closed:
                found.append({
                    "offer_id": offer.offer_id,
                    "merchant": offer.merchant,
                    "merchant_name": names.get(offer.merchant.lower()),
                    "price": offer.price,
                    "stock": offer.stock,
                    "expiry": offer.expiry,
                    "status": _status(offer.closed, now >= offer.expiry, offer.stock, is_open),
                })  # fmt: skip
        return found

    def events(self, account: str | None = None) -> list[dict[str, Any]]:
        """The catalog's events in chain order; with `account`, its redemptions only."""
        topics: list[Any] = [list(self._events)]
        if account is not None:
            redeemed = next(t for t, n in self._events.items() if n == "OfferRedeemed")
            topics = [redeemed, None, "0x" + account.lower()[2:].rjust(64, "0")]
        logs = self.points.wallet.w3.eth.get_logs(
            {"address": self.points.address, "fromBlock": 0, "toBlock": "latest",
             "topics": topics}
        )  # fmt: skip
        found = []
        for log in logs:
            name = self._events["0x" + log["topics"][0].hex().removeprefix("0x")]
            decoded = self.points.contract.events[name]().process_log(log)
            found.append({
                "event": name, "block_number": log["blockNumber"],
                "tx_hash": log["transactionHash"].to_0x_hex(), **decoded["args"],
            })  # fmt: skip
        return found


def _status(closed: bool, expired: bool, stock: int, is_open: bool) -> str:
    if is_open:
        return "open"
    if expired:
        return "expired"
    return "sold_out" if stock == 0 and not closed else "withdrawn"


def add_catalog_routes(
    app: FastAPI, caller: Callable[..., ApiKey], catalog: Catalog | None
) -> None:
    """Mount the catalog's routes (503 when the gateway has no Points ledger to read)."""

    def ready() -> Catalog:
        if catalog is None:
            raise HTTPException(503, "no Points ledger configured")
        return catalog

    @app.get("/catalog/offers")
    async def offers(
        _key: Annotated[ApiKey, Depends(caller)], include_closed: bool = False
    ) -> list[dict[str, Any]]:
        return await run_in_threadpool(ready().offers, include_closed)

    @app.get("/catalog/events")
    async def events(
        key: Annotated[ApiKey, Depends(caller)],
        account: Annotated[str | None, Query(pattern=r"^0x[0-9a-fA-F]{40}$")] = None,
    ) -> list[dict[str, Any]]:
        if key.role == GatewayRole.CUSTOMER.value:
            if account is not None and account.lower() != (key.account or "").lower():
                raise HTTPException(403, "a customer sees their own redemptions only")
            account = key.account
        return await run_in_threadpool(ready().events, account)
