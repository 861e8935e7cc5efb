"""Webhook deliveries: the signature a receiver checks, and which hosts the node may call.

Signature: `X-Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`,
as Stripe-style receivers expect; the receiver recomputes it over the raw body and refuses old
timestamps, so a captured delivery cannot be replayed later.

Targets (SSRF): a node posting wherever an API caller says could be pointed at the bank's
own network (metadata services, admin listeners). Without `--api-webhook-hosts` a target must
resolve only to public (global) addresses; with it, only the listed hosts (names, IPs or
networks) are allowed, private ones included. Addresses are checked when each delivery is
made, not only at subscription time, and redirects are never followed. (A name that changes
its answer between the check and httpx's own lookup is the residual risk: list IPs or
networks rather than names where that matters.)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Tally-Signature"
MAX_URL_LENGTH = 2048

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header's value for `body`."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


class TargetRefused(ValueError):
    """A webhook URL or host the node will not call, with the reason."""


def check_url(url: str) -> tuple[str, int]:
    """(host, port) of an acceptable webhook URL: http(s), a host, no credentials in it."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"url longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"url is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("url must be http:// or https://")
    if not parts.hostname:
        raise TargetRefused("url has no host")
    if parts.username or parts.password:
        raise TargetRefused("url must not carry credentials (the payload is signed instead)")
    return parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


class WebhookHosts:
    """`--api-webhook-hosts`: empty allows public addresses only; otherwise only these."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.names: set[str] = set()
        self.networks: list[IpNetwork] = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry.lower().rstrip("."))

    @property
    def restricted(self) -> bool:
        return bool(self.names or self.networks)

    def _address_ok(self, address: IpAddress) -> bool:
        if self.restricted:
            return any(address in network for network in self.networks)
        return address.is_global

    def check_host(self, host: str) -> None:
        """What can be decided without DNS: a listed name, or an IP literal's address."""
        if host in self.names:
            return
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            if self.restricted and not self.networks:
                raise TargetRefused(f"host {host} is not in --api-webhook-hosts") from None
            return
        if not self._address_ok(address):
            raise TargetRefused(self._refusal(host))

    async def check_resolved(self, host: str, port: int) -> None:
        """Every address `host` resolves to is allowed (a listed name needs no lookup)."""
        self.check_host(host)
        if host in self.names:
            return
        try:
            answers = await asyncio.get_running_loop().getaddrinfo(host, port)
        except OSError as exc:
            raise TargetRefused(f"cannot resolve {host}: {exc}") from None
        for answer in answers:
            address = ipaddress.ip_address(answer[4][0])
            if not self._address_ok(address):
                raise TargetRefused(self._refusal(f"{host} ({address})"))

    def _refusal(self, what: str) -> str:
        if self.restricted:
            return f"host {what} is not in --api-webhook-hosts"
        return f"host {what} is not a public address (allow it with --api-webhook-hosts)"
