"""Payment requests: EIP-681 URIs, and QR codes of them (PNG and terminal).

A shop or a colleague asks for money with a URI any Ethereum wallet understands:

- coin: ``ethereum:<recipient>@<chainId>?value=<wei>``
- token: ``ethereum:<token>@<chainId>/transfer?address=<recipient>&uint256=<amount>``

`parse_payment_request` accepts what EIP-681 allows for these two forms (an optional ``pay-``
prefix, the chain id, numbers written as ``2.014e18``) and refuses anything else with a
`PaymentRequestError` that says what is wrong: a URI is user input, often scanned from paper,
and "invalid URI" helps nobody. ENS names are not resolved (a permissioned chain has no ENS), and
a mixed-case address must carry a valid EIP-55 checksum, which catches most typos. QR codes are
drawn by `segno` (pure Python, PNG without Pillow).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qsl

import segno
from eth_utils import is_checksum_address, is_hex_address, to_checksum_address


class PaymentRequestError(ValueError):
    """An EIP-681 payment request that is malformed or unsupported; the message says where.

    A `ValueError` rather than a member of the SDK's error tree, because the node's REST API
    builds requests too and must not import `client`; `client.errors` re-exports it.
    """


SCHEME = "ethereum:"
_TARGET = re.compile(
    r"^(?:pay-)?(?P<target>[^@/?]*)(?:@(?P<chain>[^/?]*))?(?:/(?P<function>[^?]*))?"
    r"(?:\?(?P<query>.*))?$"
)


@dataclass(frozen=True)
class PaymentRequest:
    """A request to pay `amount` (wei, or token base units when `token` is set) to `recipient`
    on chain `chain_id`."""

    recipient: str
    amount: int
    chain_id: int | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipient", _address(self.recipient, "recipient"))
        if self.token is not None:
            object.__setattr__(self, "token", _address(self.token, "token"))
        if self.amount < 0:
            raise PaymentRequestError("amount must not be negative")
        if self.chain_id is not None and self.chain_id <= 0:
            raise PaymentRequestError("chain id must be positive")

    def to_uri(self) -> str:
        """The EIP-681 URI (addresses checksummed, numbers as plain integers)."""
        chain = f"@{self.chain_id}" if self.chain_id is not None else ""
        if self.token is None:
            return f"{SCHEME}{self.recipient}{chain}?value={self.amount}"
        return (
            f"{SCHEME}{self.token}{chain}/transfer?address={self.recipient}&uint256={self.amount}"
        )

    def qr(self) -> segno.QRCode:
        """The QR code (error correction M: survives a smudge, stays small)."""
        return segno.make(self.to_uri(), error="m", micro=False)

    def save_png(self, path: str | Path, scale: int = 8) -> Path:
        """Write the QR code as a PNG and return its path."""
        path = Path(path)
        self.qr().save(str(path), kind="png", scale=scale, border=4)
        return path

    def terminal_qr(self, out: TextIO | None = None) -> str:
        """The QR code drawn with block characters, returned (and written to `out` if given)."""
        buffer = io.StringIO()
        self.qr().terminal(out=buffer, compact=True, border=2)
        text = buffer.getvalue()
        if out is not None:
            out.write(text)
        return text


def _address(value: str, what: str) -> str:
    if not is_hex_address(value):
        if value and not value.startswith("0x"):
            raise PaymentRequestError(
                f"{what} {value!r} is not a 0x address (ENS names are not supported)"
            )
        raise PaymentRequestError(f"{what} {value!r} is not a 20-byte 0x address")
    body = value[2:]
    mixed = body != body.lower() and body != body.upper()
    if mixed and not is_checksum_address(value):
        raise PaymentRequestError(f"{what} {value} has a wrong EIP-55 checksum (a typo?)")
    return to_checksum_address(value)


def _number(text: str, what: str) -> int:
    """EIP-681 numbers: decimal digits, optionally with a fraction and exponent (2.014e18),
    as long as the result is a whole number."""
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?([eE][0-9]+)?", text):
        raise PaymentRequestError(f"{what} {text!r} is not a number")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise PaymentRequestError(f"{what} {text!r} is not a number") from exc
    if value != value.to_integral_value():
        raise PaymentRequestError(f"{what} {text!r} is not a whole number of base units")
    return int(value)


def parse_payment_request(uri: str) -> PaymentRequest:
    """Parse a coin or ERC-20 `transfer` request; raise `PaymentRequestError` saying why not."""
    uri = uri.strip()
    if not uri.lower().startswith(SCHEME):
        raise PaymentRequestError(f"not an EIP-681 payment request: must start with {SCHEME!r}")
    match = _TARGET.match(uri[len(SCHEME) :])
    if match is None:
        raise PaymentRequestError("malformed payment request")
    target, chain, function, query = match.group("target", "chain", "function", "query")
    if not target:
        raise PaymentRequestError("payment request has no target address")
    chain_id = None
    if chain is not None:
        if not chain.isdigit():
            raise PaymentRequestError(f"chain id {chain!r} is not a decimal number")
        chain_id = int(chain)
    params: dict[str, str] = {}
    for key, value in parse_qsl(query or "", keep_blank_values=True, strict_parsing=False):
        if key in params:
            raise PaymentRequestError(f"parameter {key!r} appears twice")
        params[key] = value
    if function is None or function == "":
        unknown = set(params) - {"value", "gas", "gasLimit", "gasPrice"}
        if unknown:
            raise PaymentRequestError(f"unsupported parameters: {', '.join(sorted(unknown))}")
        if "value" not in params:
            raise PaymentRequestError("a coin payment request needs value=<wei>")
        return PaymentRequest(target, _number(params["value"], "value"), chain_id)
    if function != "transfer":
        raise PaymentRequestError(
            f"function {function!r} is not supported (only ERC-20 'transfer' requests)"
        )
    missing = [key for key in ("address", "uint256") if key not in params]
    if missing:
        raise PaymentRequestError(f"transfer request is missing {' and '.join(missing)}")
    if "value" in params:
        raise PaymentRequestError("a token transfer request must not carry value")
    unknown = set(params) - {"address", "uint256", "gas", "gasLimit", "gasPrice"}
    if unknown:
        raise PaymentRequestError(f"unsupported parameters: {', '.join(sorted(unknown))}")
    return PaymentRequest(
        _address(params["address"], "recipient"),
        _number(params["uint256"], "uint256"),
        chain_id,
        target,
    )
