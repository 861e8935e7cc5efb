"""Talking to a Tally node: a web3.py connection, and JSON-RPC errors turned into typed ones.

The SDK sends its own requests through web3's provider (`make_request`) rather than `w3.eth`,
because it wants the node's error object intact: web3.py turns it into a handful of exception
classes and loses the code on the way. Errors are mapped the way go-ethereum defines them, which
Tally's node follows: code -32000 with a canonical message prefix ("nonce too low",
"insufficient funds", ...) for pool refusals, code 3 with ABI-encoded revert data for reverts.
Revert data is decoded against the ABI of the contract called, so OpenZeppelin 5's custom errors
read as `ERC20InsufficientBalance(sender=0x.., balance=0, needed=5)` and not as hex.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import eth_abi
from eth_utils import (
    function_signature_to_4byte_selector,
    is_address,
    to_bytes,
    to_checksum_address,
)
from eth_utils.abi import abi_to_signature, get_abi_input_names, get_abi_input_types
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.middleware import ExtraDataToPOAMiddleware

from client.errors import (
    AlreadyKnown,
    ExecutionReverted,
    InsufficientFunds,
    NodeError,
    NonceTooHigh,
    NonceTooLow,
    TransactionRejected,
    Underpriced,
)

if TYPE_CHECKING:
    from client.tls import ClientTls

DEFAULT_RPC_URL = "http://127.0.0.1:8545"
_ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
_PANIC = function_signature_to_4byte_selector("Panic(uint256)")

#: Message prefixes of pool refusals (go-ethereum's wording, which Tally's pool reuses).
_REJECTIONS: Sequence[tuple[str, type[TransactionRejected]]] = (
    ("nonce too low", NonceTooLow),
    ("nonce too high", NonceTooHigh),
    ("insufficient funds", InsufficientFunds),
    ("replacement transaction underpriced", Underpriced),
    ("transaction underpriced", Underpriced),
    ("already known", AlreadyKnown),
)


def connect(
    url_or_web3: str | Web3 = DEFAULT_RPC_URL, timeout: float = 30.0, tls: ClientTls | None = None
) -> Web3:
    """web3.py for a Tally node; `tls` for an https node whose CA the system does not hold, or
    that wants a client certificate (a ready `Web3` is used as it is).

    QBFT headers carry validators and commit seals in extraData (as on Besu and GoQuorum), more
    than the 32 bytes web3.py allows by default, so its proof-of-authority middleware is added.
    """
    if isinstance(url_or_web3, Web3):
        w3 = url_or_web3
    else:
        settings = tls.requests_kwargs() if tls is not None else {}
        w3 = Web3(Web3.HTTPProvider(url_or_web3, request_kwargs={"timeout": timeout, **settings}))
    # A Web3 the caller already set up for PoA (injected unnamed) must not get it twice: two
    # copies rename extraData twice and every later block read fails with a KeyError.
    if "poa" not in w3.middleware_onion and ExtraDataToPOAMiddleware not in w3.middleware_onion:
        w3.middleware_onion.inject(ExtraDataToPOAMiddleware, name="poa", layer=0)
    return w3


def decode_revert(data: str | bytes | None, abi: Sequence[dict[str, Any]] = ()) -> str:
    """A human reason for revert data: Error(string), Panic(uint256), or a custom error found
    in `abi`; falls back to the selector in hex."""
    raw = to_bytes(hexstr=data) if isinstance(data, str) else bytes(data or b"")
    if len(raw) < 4:
        return ""
    selector, body = raw[:4], raw[4:]
    try:
        if selector == _ERROR_STRING:
            (reason,) = eth_abi.decode(["string"], body)
            return str(reason)
        if selector == _PANIC:
            (code,) = eth_abi.decode(["uint256"], body)
            return f"panic code {code:#x}"
        for entry in abi:
            if entry.get("type") != "error":
                continue
            signature = abi_to_signature(entry)  # type: ignore[arg-type]
            if function_signature_to_4byte_selector(signature) != selector:
                continue
            values = eth_abi.decode(get_abi_input_types(entry), body)  # type: ignore[arg-type]
            names = get_abi_input_names(entry)  # type: ignore[arg-type]
            args = ", ".join(f"{n}={_show(v)}" for n, v in zip(names, values, strict=True))
            return f"{entry['name']}({args})"
    except Exception:  # undecodable data: show the selector rather than fail the error path
        pass
    return f"custom error 0x{selector.hex()}"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and is_address(value):
        return to_checksum_address(value)
    return str(value)


def error_from_response(error: dict[str, Any], abi: Sequence[dict[str, Any]] = ()) -> NodeError:
    """The typed error for a JSON-RPC error object."""
    code = error.get("code")
    message = str(error.get("message", ""))
    data = error.get("data")
    if code == 3 or message.startswith("execution reverted"):
        reason = decode_revert(data, abi) if isinstance(data, str) else ""
        if not reason and ":" in message:
            reason = message.split(":", 1)[1].strip()
        return ExecutionReverted(reason, data if isinstance(data, str) else None)
    lowered = message.lower()
    for prefix, cls in _REJECTIONS:
        if lowered.startswith(prefix):
            return cls(message, code, data)
    return NodeError(message, code, data)


def request(w3: Web3, method: str, params: list[Any], abi: Sequence[dict[str, Any]] = ()) -> Any:
    """One JSON-RPC call through web3's provider; its error object raised as a typed error."""
    response = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in response and response["error"] is not None:
        error = response["error"]
        if isinstance(error, str):
            error = {"message": error}
        raise error_from_response(dict(error), abi)
    return response.get("result")


@contextmanager
def mapped_errors(abi: Sequence[dict[str, Any]] = ()) -> Iterator[None]:
    """Turn web3.py's exceptions (from `contract.functions...call()`) into the SDK's."""
    try:
        yield
    except ContractLogicError as exc:
        data = exc.data if isinstance(exc.data, str) else None
        reason = decode_revert(data, abi) if data else ""
        if not reason:
            message = str(exc.message or "")
            reason = message.split(":", 1)[1].strip() if ":" in message else ""
        raise ExecutionReverted(reason, data) from exc
    except Web3RPCError as exc:
        response = exc.rpc_response or {}
        error = response.get("error") if isinstance(response, dict) else None
        if isinstance(error, dict):
            raise error_from_response(dict(error), abi) from exc
        raise NodeError(str(exc)) from exc
