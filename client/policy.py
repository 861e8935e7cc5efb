"""Spending policy: what a wallet may sign, decided before the key store is asked.

A bank wallet's key is only as safe as the code that decides when to use it, so every payment
goes through `SpendingPolicy.approve` first and a refusal means no digest ever reaches the key
store (tests count the store's signatures to prove it). The rules, each raising its own
`PolicyViolation` subclass whose `rule` names it:

- **per-payment limit** and **daily limit**, per asset (`"ETH"` for the native coin, else the
  token's checksummed address), in the asset's smallest unit. The day is the UTC calendar day.
  Approval reserves the amount and the wallet commits it once the node has accepted the
  transaction (or cancels it), so concurrent payments cannot both squeeze under the limit.
- **counterparty allowlist**: when set, only these recipients.
- **second factor**: above an amount, a TOTP code (RFC 6238, `cryptography`'s implementation)
  from the user's authenticator app; a code is accepted once (no replay within its window).
- **PIN retry lockout** (`PinGuard`): after N wrong PINs or passwords in a row, no attempt
  reaches the token or the KDF until a cool-down has passed.

Spent totals, the last TOTP step and PIN failures live in a `PolicyState`, which can be kept in
a JSON file (written atomically) so limits survive restarts of the CLI.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from eth_utils import is_address, to_checksum_address

from client.errors import (
    CounterpartyNotAllowed,
    DailyLimitExceeded,
    PerPaymentLimitExceeded,
    PinLockedOut,
    SecondFactorInvalid,
    SecondFactorRequired,
)
from tally_common.keystore.file import write_atomically

NATIVE = "ETH"
Clock = Callable[[], float]


def asset_key(token: str | None) -> str:
    """How the policy names an asset: "ETH" or the token's checksummed address."""
    return NATIVE if token is None or token == NATIVE else to_checksum_address(token)


@dataclass(frozen=True)
class Payment:
    """What the policy judges: who gets how much of what."""

    asset: str
    to: str
    amount: int


@dataclass(frozen=True)
class AssetLimits:
    """Limits for one asset, in its smallest unit; None means no limit."""

    per_payment: int | None = None
    daily: int | None = None
    totp_above: int | None = None


# --- persistent state ------------------------------------------------------------------------


@dataclass
class PolicyState:
    """What the policy remembers between payments; `path` makes it survive restarts."""

    path: Path | None = None
    day: str = ""
    spent: dict[str, int] = field(default_factory=dict)
    last_totp_step: int = -1
    pin_failures: int = 0
    locked_until: float = 0.0

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PolicyState:
        path = Path(path)
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            path,
            data.get("day", ""),
            {key: int(value) for key, value in data.get("spent", {}).items()},
            int(data.get("last_totp_step", -1)),
            int(data.get("pin_failures", 0)),
            float(data.get("locked_until", 0.0)),
        )

    def save(self) -> None:
        if self.path is None:
            return
        body = {
            "day": self.day,
            "spent": {key: str(value) for key, value in self.spent.items()},
            "last_totp_step": self.last_totp_step,
            "pin_failures": self.pin_failures,
            "locked_until": self.locked_until,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(body, indent=2).encode())


# --- second factor ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpFactor:
    """An RFC 6238 authenticator shared with the user's phone (SHA-1, 6 digits, 30 s: what
    every authenticator app supports). `window` steps either side absorb clock drift."""

    secret: bytes
    digits: int = 6
    period: int = 30
    window: int = 1

    @classmethod
    def new(cls) -> TotpFactor:
        """A fresh 160-bit secret, RFC 4226's recommended length."""
        return cls(os.urandom(20))

    @classmethod
    def from_base32(cls, secret: str, **kwargs: Any) -> TotpFactor:
        padded = secret.strip().replace(" ", "").upper()
        padded += "=" * (-len(padded) % 8)
        return cls(base64.b32decode(padded), **kwargs)

    @property
    def base32(self) -> str:
        return base64.b32encode(self.secret).decode().rstrip("=")

    def _totp(self) -> TOTP:
        return TOTP(self.secret, self.digits, SHA1(), self.period, enforce_key_length=False)

    def code(self, at: float) -> str:
        """The code an authenticator shows at time `at` (for tests and for setup checks)."""
        return self._totp().generate(int(at)).decode()

    def provisioning_uri(self, account: str, issuer: str = "Tally") -> str:
        """The `otpauth://` URI an authenticator app scans (QR: `tally_common.eip681`)."""
        return self._totp().get_provisioning_uri(account, issuer)

    def matching_step(self, code: str, at: float) -> int | None:
        """The time step whose code equals `code`, within the drift window, else None."""
        totp = self._totp()
        step = int(at) // self.period
        for candidate in range(step - self.window, step + self.window + 1):
            try:
                totp.verify(code.encode(), candidate * self.period)
            except InvalidToken:
                continue
            return candidate
        return None


# --- PIN lockout -----------------------------------------------------------------------------


class PinGuard:
    """Locks out PIN/password attempts after `max_attempts` failures in a row.

    Key stores call it around every unlock (`tally_common.keystore.base.LoginGuard`). The count
    is in the policy state, so restarting the CLI does not reset it.
    """

    def __init__(
        self,
        max_attempts: int = 3,
        lockout_seconds: float = 300.0,
        state: PolicyState | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.max_attempts = max_attempts
        self.lockout_seconds = lockout_seconds
        self.state = state or PolicyState()
        self._clock = clock
        self._lock = threading.Lock()

    def check(self) -> None:
        with self._lock:
            remaining = self.state.locked_until - self._clock()
            if remaining > 0:
                raise PinLockedOut(
                    f"{self.state.pin_failures} wrong PINs/passwords in a row; "
                    f"try again in {remaining:.0f}s"
                )

    def failure(self) -> None:
        with self._lock:
            self.state.pin_failures += 1
            if self.state.pin_failures >= self.max_attempts:
                self.state.locked_until = self._clock() + self.lockout_seconds
            self.state.save()

    def success(self) -> None:
        with self._lock:
            if self.state.pin_failures or self.state.locked_until:
                self.state.pin_failures = 0
                self.state.locked_until = 0.0
                self.state.save()


# --- the policy ------------------------------------------------------------------------------


class Reservation:
    """An approved payment's hold on the daily limit: commit once sent, cancel otherwise."""

    def __init__(self, policy: SpendingPolicy, payment: Payment) -> None:
        self._policy = policy
        self.payment = payment
        self._open = True

    def commit(self) -> None:
        """The node accepted the transaction: the amount counts towards today's total."""
        if self._open:
            self._open = False
            self._policy._settle(self, spent=True)

    def cancel(self) -> None:
        """Nothing was sent: release the hold."""
        if self._open:
            self._open = False
            self._policy._settle(self, spent=False)


class SpendingPolicy:
    """The rules a payment must pass before it is signed (see the module docstring)."""

    def __init__(
        self,
        limits: Mapping[str, AssetLimits] | None = None,
        allowlist: Iterable[str] | None = None,
        totp: TotpFactor | None = None,
        state: PolicyState | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.limits = {asset_key(key): value for key, value in (limits or {}).items()}
        self.allowlist = None if allowlist is None else {to_checksum_address(a) for a in allowlist}
        self.totp = totp
        self.state = state or PolicyState()
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    @classmethod
    def unrestricted(cls) -> SpendingPolicy:
        """No limits: for scripts and tests that exercise something else."""
        return cls()

    @classmethod
    def load(cls, path: str | os.PathLike[str], clock: Clock = time.time) -> SpendingPolicy:
        """Read a JSON policy file; its state is kept beside it (`<name>.state.json`).

        Format: ``{"assets": {"ETH": {"per_payment": "10", "daily": "..", "totp_above": ".."},
        "0xToken...": {...}}, "allowlist": ["0x.."], "totp_secret": "BASE32"}`` (amounts are
        strings or integers in the asset's smallest unit; every key is optional).
        """
        path = Path(path)
        data = json.loads(path.read_text(encoding="utf-8"))

        def amount(value: Any) -> int | None:
            return None if value is None else int(value)

        limits = {
            asset: AssetLimits(
                amount(rule.get("per_payment")),
                amount(rule.get("daily")),
                amount(rule.get("totp_above")),
            )
            for asset, rule in data.get("assets", {}).items()
        }
        secret = data.get("totp_secret")
        return cls(
            limits,
            data.get("allowlist"),
            TotpFactor.from_base32(secret) if secret else None,
            PolicyState.load(path.with_suffix(".state.json")),
            clock,
        )

    def pin_guard(self, max_attempts: int = 3, lockout_seconds: float = 300.0) -> PinGuard:
        """A PIN lockout sharing this policy's state (and so its file)."""
        return PinGuard(max_attempts, lockout_seconds, self.state, self._clock)

    def _today(self) -> str:
        day = datetime.fromtimestamp(self._clock(), UTC).date().isoformat()
        if self.state.day != day:
            self.state.day = day
            self.state.spent = {}
        return day

    def spent_today(self, asset: str | None = None) -> int:
        """Committed plus held amounts of `asset` today."""
        key = asset_key(asset)
        with self._lock:
            self._today()
            return self.state.spent.get(key, 0) + self._held.get(key, 0)

    def approve(self, payment: Payment, totp_code: str | None = None) -> Reservation:
        """Check every rule, in a fixed order, and hold the amount; raise the first violation.

        Cheap checks come first and the second factor last, so a payment refused for its size
        never consumes a TOTP code.
        """
        asset = asset_key(payment.asset)
        if not is_address(payment.to):
            raise ValueError(f"not an address: {payment.to!r}")
        to = to_checksum_address(payment.to)
        if payment.amount < 0:
            raise ValueError("a payment amount cannot be negative")
        limits = self.limits.get(asset, AssetLimits())
        if self.allowlist is not None and to not in self.allowlist:
            raise CounterpartyNotAllowed(f"{to} is not an allowed counterparty")
        if limits.per_payment is not None and payment.amount > limits.per_payment:
            raise PerPaymentLimitExceeded(
                f"{payment.amount} {asset} is over the per-payment limit of {limits.per_payment}"
            )
        with self._lock:
            self._today()
            used = self.state.spent.get(asset, 0) + self._held.get(asset, 0)
            if limits.daily is not None and used + payment.amount > limits.daily:
                raise DailyLimitExceeded(
                    f"{payment.amount} {asset} would bring today's total to "
                    f"{used + payment.amount}, over the daily limit of {limits.daily}"
                )
            if limits.totp_above is not None and payment.amount > limits.totp_above:
                self._check_totp(totp_code, limits.totp_above, asset)
            self._held[asset] = self._held.get(asset, 0) + payment.amount
        return Reservation(self, Payment(asset, to, payment.amount))

    def _check_totp(self, code: str | None, threshold: int, asset: str) -> None:
        if self.totp is None:
            raise SecondFactorRequired(
                f"payments over {threshold} {asset} need a TOTP code, and none is configured"
            )
        if not code:
            raise SecondFactorRequired(
                f"payments over {threshold} {asset} need a code from the authenticator app"
            )
        step = self.totp.matching_step(code.strip(), self._clock())
        if step is None:
            raise SecondFactorInvalid("the authenticator code is wrong or has expired")
        if step <= self.state.last_totp_step:
            raise SecondFactorInvalid("this authenticator code was already used; wait for the next")
        self.state.last_totp_step = step
        self.state.save()

    def _settle(self, reservation: Reservation, spent: bool) -> None:
        asset, amount = reservation.payment.asset, reservation.payment.amount
        with self._lock:
            self._held[asset] = self._held.get(asset, 0) - amount
            if spent:
                self._today()
                self.state.spent[asset] = self.state.spent.get(asset, 0) + amount
                self.state.save()
