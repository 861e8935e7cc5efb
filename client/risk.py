"""The bank's pre-submission screening, for wallet apps: sign a payment, ask the bank's risk
service what it thinks of it (allow, hold or deny, with reasons), then send it or not.

    from client.risk import RiskClient
    verdict = RiskClient("https://bank.example/", api_key).screen(signed.raw)
    if verdict.decision != "deny":
        wallet.rpc("eth_sendRawTransaction", signed.raw_hex)

Never imports `bank`: it speaks the service's HTTP API (`POST /risk/screening`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from client.errors import TallyClientError


class ScreeningRefused(TallyClientError):
    """The risk service refused the request (bad transaction, key or role): its reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"screening refused (HTTP {status}): {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Verdict:
    decision: Literal["allow", "hold", "deny"]
    score: int
    reasons: list[dict[str, Any]]
    config_version: str
    tx_hash: str


class RiskClient:
    def __init__(self, url: str, api_key: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.timeout = timeout

    def screen(self, raw_transaction: bytes | str) -> Verdict:
        """The bank's verdict on a signed transaction (raw bytes or 0x-hex), not sent."""
        raw = raw_transaction if isinstance(raw_transaction, str) else "0x" + raw_transaction.hex()
        try:
            response = httpx.post(
                f"{self.url}/risk/screening",
                json={"raw_transaction": raw},
                headers=self.headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise TallyClientError(f"risk service at {self.url}: {exc}") from None
        if response.status_code != 200:
            try:
                reason = str(response.json().get("detail"))
            except ValueError:
                reason = response.text[:200]
            raise ScreeningRefused(response.status_code, reason)
        body = response.json()
        return Verdict(
            body["decision"],
            body["score"],
            body["reasons"],
            body["config_version"],
            body["tx_hash"],
        )
