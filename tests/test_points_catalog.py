"""The points catalog end to end on a `tally dev` node: a merchant (enterprise account 3)
publishes offers in the genesis Points ledger, a customer (6) redeems one with the SDK in a
signed transaction (stock decremented, points burned), an over-stock or expired redemption is
refused and changes nothing, the expired offer is closed (`OfferExpired`), and all of it is
seen in the node's REST history and through the gateway's `/catalog` routes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from bank import cli as bank_cli
from client import points as client_points
from client.errors import ExecutionReverted
from client.policy import Payment
from tests.conftest import NodeProcess
from tests.credit_support import CreditStack, credit_stack
from tests.test_api_support import admin_key

MERCHANT, CUSTOMER, OTHER = 3, 6, 7


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, shared_node: NodeProcess, dev_accounts: list
) -> Iterator[CreditStack]:
    with credit_stack(tmp_path_factory.mktemp("catalog"), shared_node, dev_accounts) as found:
        yield found


def head_time(stack: CreditStack) -> int:
    block = stack.wallet(CUSTOMER).rpc("eth_getBlockByNumber", "latest", False)
    return int(block["timestamp"], 16)


def events_of(stack: CreditStack, tx_hash: str) -> list[dict]:
    response = httpx.get(
        f"{stack.node.url}/api/v1/transactions/{tx_hash}",
        headers={"authorization": f"Bearer {admin_key(stack.node)}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [e for e in response.json()["events"] if e["contract"] == "Points"]


def test_publish_redeem_and_expire(stack: CreditStack, dev_accounts: list) -> None:
    assert bank_cli.DEV_POINTS == client_points.DEV_POINTS
    merchant, customer, other = (stack.points(i) for i in (MERCHANT, CUSTOMER, OTHER))
    c = customer.wallet.address
    # Points to spend: the issuer awards 1% of a 500.00 payment (500 points).
    issuer = stack.points(1)
    issuer.transact("award", c, 500_00, payment=Payment(issuer.address, c, 0))
    assert customer.balance_of(c) == 500

    now = head_time(stack)
    lasting = merchant.publish_offer(120, 2, now + 3_600).receipt
    short = merchant.publish_offer(50, 5, now + 4).receipt
    assert lasting is not None and short is not None
    first, second = merchant.offer_count() - 1, merchant.offer_count()
    offer = merchant.offer(first)
    assert (offer.merchant, offer.price, offer.stock, offer.closed) == (
        merchant.wallet.address, 120, 2, False,
    )  # fmt: skip
    published = events_of(stack, lasting.tx_hash)
    assert [e["event"] for e in published] == ["OfferPublished"]

    # Only a merchant (an enterprise account) publishes.
    with pytest.raises(ExecutionReverted, match="UnauthorizedRole"):
        customer.publish_offer(1, 1, now + 3_600)

    supply = int(customer.call("totalSupply"))
    redeemed = customer.redeem_offer(first, 1).receipt
    assert redeemed is not None
    assert merchant.offer(first).stock == 1
    assert customer.balance_of(c) == 500 - 120
    assert int(customer.call("totalSupply")) == supply - 120  # burned, not moved
    names = [e["event"] for e in events_of(stack, redeemed.tx_hash)]
    assert names == ["Redeemed", "OfferRedeemed"]
    (burn,) = [e for e in events_of(stack, redeemed.tx_hash) if e["event"] == "OfferRedeemed"]
    assert burn["args"]["quantity"] == "1" and burn["args"]["points"] == "120"
    assert burn["args"]["account"] == c

    # Over the stock, or over the points held: refused, nothing changes.
    with pytest.raises(ExecutionReverted, match="OutOfStock"):
        customer.redeem_offer(first, 2)
    with pytest.raises(ExecutionReverted, match="InsufficientPoints"):
        other.redeem_offer(first, 1)
    assert merchant.offer(first).stock == 1 and customer.balance_of(c) == 380

    # The customer's history shows the redemption (the node's REST account history).
    rows = httpx.get(
        f"{stack.node.url}/api/v1/accounts/{c}/transactions",
        headers={"authorization": f"Bearer {admin_key(stack.node)}"},
        timeout=30,
    ).json()["items"]
    assert redeemed.tx_hash in [row["hash"] for row in rows]

    # Through the gateway, a customer sees the offer with its stock now.
    key = stack.key("customer", c)
    response = stack.request("GET", "/catalog/offers", key)
    assert response.status_code == 200, response.text
    listed = response.json()
    (view,) = [o for o in listed if o["offer_id"] == first]
    assert (view["merchant"], view["price"], view["stock"], view["status"]) == (
        merchant.wallet.address, 120, 1, "open",
    )  # fmt: skip

    # Once the head is past its expiry, the short offer cannot be redeemed; anyone may close
    # it, and its expiry is an event in the history.
    deadline = time.monotonic() + 30
    while head_time(stack) < now + 4 and time.monotonic() < deadline:
        time.sleep(0.3)
    with pytest.raises(ExecutionReverted, match="OfferHasExpired"):
        customer.redeem_offer(second, 1)
    assert customer.balance_of(c) == 380 and merchant.offer(second).stock == 5
    with pytest.raises(ExecutionReverted, match="OfferNotExpired"):
        other.close_offer(first)  # not its merchant, not expired
    closed = other.close_offer(second).receipt
    assert closed is not None
    (expired,) = events_of(stack, closed.tx_hash)
    assert expired["event"] == "OfferExpired" and expired["args"]["unsold"] == "5"
    with pytest.raises(ExecutionReverted, match="OfferClosed"):
        customer.redeem_offer(second, 1)

    listed = stack.request("GET", "/catalog/offers", key).json()
    assert [o["offer_id"] for o in listed] == [first]
    every = stack.request("GET", "/catalog/offers?include_closed=true", key).json()
    assert [o["status"] for o in every] == ["open", "expired"]

    # The catalog's events: a customer sees its own redemptions; operations sees them all.
    mine = stack.request("GET", "/catalog/events", key).json()
    assert [(e["event"], e["offerId"], e["points"]) for e in mine] == [
        ("OfferRedeemed", first, 120)
    ]
    others = f"/catalog/events?account={other.wallet.address}"
    assert stack.request("GET", others, key).status_code == 403
    everything = stack.request("GET", "/catalog/events", stack.key("operations")).json()
    assert [e["event"] for e in everything] == [
        "OfferPublished", "OfferPublished", "OfferRedeemed", "OfferExpired",
    ]  # fmt: skip


def test_a_bad_offer_is_refused(stack: CreditStack) -> None:
    merchant = stack.points(MERCHANT)
    count = merchant.offer_count()
    now = head_time(stack)
    for price, stock, expiry in ((0, 1, now + 60), (1, 0, now + 60), (1, 1, now - 1)):
        with pytest.raises(ExecutionReverted, match="InvalidOffer"):
            merchant.publish_offer(price, stock, expiry)
    with pytest.raises(ExecutionReverted, match="UnknownOffer"):
        merchant.redeem_offer(count + 1, 1)
    assert merchant.offer_count() == count
    assert stack.request("GET", "/catalog/offers", "tbk_nope").status_code == 401
