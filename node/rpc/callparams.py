"""Parsing a call object (`eth_call`, `eth_estimateGas`, `eth_createAccessList`).

Besides from/to/input/value/gas, the object may carry the fields that change what a
transaction costs and what is warm: `accessList` (EIP-2930) and `authorizationList`
(EIP-7702), in the JSON shape of a transaction object, so a wallet's estimate covers the
transaction it will send.
"""

from __future__ import annotations

from typing import Any

from eth.vm.forks.prague.transactions import Authorization
from eth_typing import Address

from node.chain.accesslist import AccessList
from node.chain.calls import MAX_CODE_OVERRIDE, AccountOverride, CallRequest
from node.rpc import params as p
from node.rpc.errors import InvalidParams, ServerError

MAX_AUTHORIZATIONS = 256
"""Authorizations one call may carry: each costs 25,000 gas, so a block-sized call fits
about 1,200; 256 keeps signature recovery per request bounded (~25 ms)."""


def call_request(request: Any) -> CallRequest:
    """A `CallRequest` from a call object; `InvalidParams` names the field that is wrong."""
    if not isinstance(request, dict):
        raise InvalidParams("call request must be an object")
    payload = request.get("input", request.get("data"))
    both = request.get("input") is not None and request.get("data") is not None
    if both and request["input"] != request["data"]:
        raise InvalidParams('both "data" and "input" are set and not equal')
    to = request.get("to")
    sender = p.address(request["from"], "from") if request.get("from") else b"\x00" * 20
    authorizations = _authorizations(request.get("authorizationList"))
    if authorizations and not to:
        # geth's wording (core.ErrSetCodeTxCreate).
        raise ServerError("EIP-7702 transaction cannot be used to create contract")
    return CallRequest(
        sender=sender,
        to=p.address(to, "to") if to else b"",
        data=p.data(payload, "input") if payload is not None else b"",
        value=p.quantity(request["value"], "value") if request.get("value") is not None else 0,
        gas=p.quantity(request["gas"], "gas") if request.get("gas") is not None else None,
        access_list=access_list(request.get("accessList")),
        authorizations=authorizations,
    )


def access_list(value: Any) -> AccessList:
    """[{address, storageKeys: [32-byte hex]}] as py-evm takes it; None is empty."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidParams("invalid accessList: expected an array")
    entries = []
    for entry in value:
        if not isinstance(entry, dict):
            raise InvalidParams("invalid accessList: each entry must be an object")
        keys = entry.get("storageKeys") or []
        if not isinstance(keys, list):
            raise InvalidParams("invalid accessList: storageKeys must be an array")
        slots = tuple(int.from_bytes(p.hash32(key, "storage key"), "big") for key in keys)
        entries.append((p.address(entry.get("address"), "accessList address"), slots))
    return tuple(entries)


def _authorizations(value: Any) -> tuple[Authorization, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidParams("invalid authorizationList: expected an array")
    if len(value) > MAX_AUTHORIZATIONS:
        raise InvalidParams(f"invalid authorizationList: more than {MAX_AUTHORIZATIONS} entries")
    return tuple(_authorization(entry) for entry in value)


def _authorization(entry: Any) -> Authorization:
    """One signed authorization: chainId, address, nonce, yParity (or v), r, s."""
    if not isinstance(entry, dict):
        raise InvalidParams("invalid authorizationList: each entry must be an object")
    parity = entry.get("yParity", entry.get("v"))
    nonce = p.quantity(entry.get("nonce"), "authorization nonce")
    if nonce >= 2**64:
        raise InvalidParams("invalid authorization nonce: exceeds 64 bits")
    y_parity = p.quantity(parity, "authorization yParity")
    if y_parity > 255:
        raise InvalidParams("invalid authorization yParity: exceeds 8 bits")
    return Authorization(
        chain_id=p.quantity(entry.get("chainId"), "authorization chainId"),
        address=Address(p.address(entry.get("address"), "authorization address")),
        nonce=nonce,
        y_parity=y_parity,
        r=p.quantity(entry.get("r"), "authorization r"),
        s=p.quantity(entry.get("s"), "authorization s"),
    )


def state_overrides(value: Any) -> dict[bytes, AccountOverride]:
    """geth's state-override set (eth_call, eth_estimateGas, debug_traceCall's `stateOverrides`)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParams("state overrides must be an object")
    result = {}
    for address, spec in value.items():
        if not isinstance(spec, dict):
            raise InvalidParams("each state override must be an object")
        if spec.get("state") is not None and spec.get("stateDiff") is not None:
            raise InvalidParams("state and stateDiff cannot both be set")
        result[p.address(address, "override address")] = AccountOverride(
            balance=p.quantity(spec["balance"], "balance") if "balance" in spec else None,
            nonce=p.quantity(spec["nonce"], "nonce") if "nonce" in spec else None,
            code=_code(spec["code"]) if "code" in spec else None,
            state=_slots(spec["state"]) if spec.get("state") is not None else None,
            state_diff=_slots(spec.get("stateDiff") or {}),
        )
    return result


def _code(value: Any) -> bytes:
    code = p.data(value, "code")
    if len(code) > MAX_CODE_OVERRIDE:
        raise InvalidParams(
            f"code override of {len(code)} bytes exceeds the {MAX_CODE_OVERRIDE}-byte limit"
        )
    return code


def _slots(value: Any) -> dict[int, int]:
    if not isinstance(value, dict):
        raise InvalidParams("storage override must be an object")
    return {
        int.from_bytes(p.hash32(slot, "slot"), "big"): int.from_bytes(
            p.hash32(word, "storage value"), "big"
        )
        for slot, word in value.items()
    }
