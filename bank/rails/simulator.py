"""`CardRail` over the card-processor simulator's HTTP API (`bank.simulator`).

A template for a real acquirer's adapter: map each call to the acquirer's endpoint, pass our
reference as its idempotency key, turn transport failures into `RailUnavailable` and refusals
into results.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

import httpx

from bank.rails.base import (
    BadCallback,
    CallbackEvent,
    Card,
    RailResult,
    RailUnavailable,
    SettlementUnavailable,
)
from bank.signing import HEADER, verify


class SimulatorRail:
    """The simulator at `url`, with the merchant `secret` (API bearer and callback key)."""

    def __init__(self, url: str, secret: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.secret = secret
        self.client = httpx.Client(
            base_url=self.url, timeout=timeout, headers={"authorization": f"Bearer {secret}"}
        )

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise RailUnavailable(f"{method} {path}: {exc!r}") from exc
        if response.status_code >= 500 or response.status_code == 401:
            raise RailUnavailable(f"{method} {path}: HTTP {response.status_code}")
        return response

    def _result(self, response: httpx.Response) -> RailResult:
        if response.status_code != 200:
            raise RailUnavailable(f"rail refused the call: {response.status_code} {response.text}")
        data = response.json()
        return RailResult(
            data["reference"],
            data["status"],
            data["rail_id"],
            int(data["amount"]),
            data.get("reason"),
            data.get("card_token"),
            data.get("card_last4"),
        )

    def authorize(self, reference: str, amount: int, currency: str, card: Card) -> RailResult:
        card_body = {"number": card.number, "expiry": card.expiry, "cvc": card.cvc}
        body = {"reference": reference, "amount": amount, "currency": currency, "card": card_body}
        return self._result(self._call("POST", "/v1/authorizations", body))

    def capture(self, reference: str, amount: int) -> RailResult:
        body = {"reference": reference, "amount": amount}
        return self._result(self._call("POST", "/v1/captures", body))

    def refund(self, reference: str, amount: int) -> RailResult:
        body = {"reference": reference, "amount": amount}
        return self._result(self._call("POST", "/v1/refunds", body))

    def payout(self, reference: str, amount: int, currency: str, card_token: str) -> RailResult:
        body = {
            "reference": reference,
            "amount": amount,
            "currency": currency,
            "card_token": card_token,
        }
        return self._result(self._call("POST", "/v1/payouts", body))

    def lookup(self, reference: str) -> RailResult | None:
        response = self._call("GET", f"/v1/references/{reference}")
        if response.status_code == 404:
            return None
        return self._result(response)

    def settlement_file(self, day: date) -> str:
        response = self._call("GET", f"/v1/settlements/{day.isoformat()}")
        if response.status_code == 404:
            raise SettlementUnavailable(f"no settlement file for {day.isoformat()}")
        if response.status_code != 200:
            raise RailUnavailable(f"settlement file: HTTP {response.status_code}")
        return response.text

    def verify_callback(self, body: bytes, headers: Mapping[str, str]) -> CallbackEvent:
        if not verify(self.secret, body, headers.get(HEADER) or headers.get(HEADER.lower())):
            raise BadCallback("bad or stale signature")
        try:
            data = json.loads(body)
            return CallbackEvent(
                str(data["event_id"]),
                data["kind"],
                str(data["reference"]),
                str(data["rail_id"]),
                int(data["amount"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadCallback(f"malformed callback: {exc}") from exc
