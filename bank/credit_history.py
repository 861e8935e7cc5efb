"""A customer's history for the scorecard, read from the node's REST API (`/api/v1`).

The bank reads the node over HTTP only, with a node API key of the auditor role (reads every
account, writes nothing): `/status` for the head's timestamp (the scorecard's "now", so a
result depends on the chain, not on the bank's clock), `/accounts/{a}` for the wallet-token
balance, and the paged `/transfers` and `/holds` lists from the look-back's start. Pages are
followed to the end, up to `MAX_PAGES` (a history longer than that is refused rather than
scored on part of it).
"""

from __future__ import annotations

from typing import Any

import httpx

from bank.credit import Held, History, Model, Transfer

MAX_PAGES = 200
PAGE = 500


class HistoryUnavailable(Exception):
    """The node could not be read (down, refusing the key, or the history too long)."""


class AsOfAfterHead(ValueError):
    """An evaluation asked as of a time the chain has not reached."""


class NodeHistory:
    """Reads histories from the node at `url` with API key `key`, for the token at `token`."""

    def __init__(self, url: str, key: str, token: str, timeout: float = 30.0) -> None:
        self.token = token.lower()
        self.http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers={"authorization": f"Bearer {key}"},
            timeout=timeout,
        )

    def _get(self, path: str, **params: Any) -> Any:
        try:
            response = self.http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise HistoryUnavailable(f"node unreachable: {exc}") from None
        if response.status_code != 200:
            raise HistoryUnavailable(f"node refused {path}: HTTP {response.status_code}")
        return response.json()

    def _all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        for _ in range(MAX_PAGES):
            page = self._get(path, limit=PAGE, **params, **({"cursor": cursor} if cursor else {}))
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items
        raise HistoryUnavailable(f"{path}: more than {MAX_PAGES * PAGE} rows in the look-back")

    def merchant_names(self) -> dict[str, str]:
        """The node's merchant registry: lower-case address -> name (empty if unreadable)."""
        try:
            rows = self._get("/merchants")["items"]
        except HistoryUnavailable:
            return {}
        return {row["address"].lower(): row["name"] for row in rows}

    def history(self, account: str, model: Model, as_of: int | None = None) -> History:
        """The account's transfers of the token and its held payments over the look-back
        ending at `as_of` (Unix seconds; default the head block's time), with the balance
        then: today's, less what moved after `as_of`. Holds carry their status today."""
        head = int(self._get("/status")["head"]["timestamp"])
        now = head if as_of is None else as_of
        if now > head:
            raise AsOfAfterHead(f"as_of {now} is after the head block's time {head}")
        since = max(now - model.lookback, 0)
        me = account.lower()
        balance = int(self._get(f"/accounts/{account}").get("token_balance") or 0)
        rows = self._all(f"/accounts/{account}/transfers", from_time=since, token=self.token)
        transfers = []
        for r in rows:
            moved = Transfer(int(r["timestamp"]), r["from"].lower(), r["to"].lower(),
                             int(r["amount"]))  # fmt: skip
            if moved.timestamp <= now:
                transfers.append(moved)
                continue
            balance -= moved.amount if moved.recipient == me else 0
            balance += moved.amount if moved.sender == me else 0
        holds = self._all(f"/accounts/{account}/holds", from_time=since, token=self.token)
        held = [
            Held(int(h["timestamp"]), int(h["amount"]), str(h["status"]))
            for h in holds
            if h["direction"] == "out" and int(h["timestamp"]) <= now
        ]
        return History(me, now, balance, transfers, held)
