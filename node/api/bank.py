"""Read-only views of the bank's contracts (roles, tiers, freezes, balances, fee quotes).

Every read is a call through `CallExecutor` against a given block, using only the contracts'
public view functions (their storage layouts may change; their ABIs are the interface). A call
that fails (a custom genesis without the bank's contracts, say) reads as "unknown" (None).
Reads run on the call pool `eth_call` uses too (`node.query.callpool`): the EVM never
runs on the event loop that runs consensus, and REST reads share eth_call's threads, timeout
and queue bounds; when the pool is full the request gets 503 with Retry-After.
"""

from __future__ import annotations

from typing import Any

from eth.abc import BlockHeaderAPI
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector

from node.api.errors import Unavailable
from node.chain.calls import CallError, CallExecutor, CallRequest
from node.domain.contracts import ACCOUNT_RULES, POINTS, WALLET_TOKEN, ChainRole
from node.query.callpool import CallAborted, CallPool, CallsBusy

_READER = b"\x00" * 20


def _selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


_ROLE_AND_TIER = _selector("roleAndTier(address)")
_IS_FROZEN = _selector("isFrozen(address)")
_BALANCE_OF = _selector("balanceOf(address)")
_QUOTE_FEE = _selector("quoteFee(address,address,uint256,uint8)")
_FEE_COLLECTOR = _selector("feeCollector()")
_NAME = _selector("name()")
_SYMBOL = _selector("symbol()")
_DECIMALS = _selector("decimals()")


class BankReader:
    """Typed read-only calls to AccountRules, WalletToken and Points."""

    def __init__(self, calls: CallExecutor, pool: CallPool) -> None:
        self.calls = calls
        self.pool = pool

    async def _call(
        self, header: BlockHeaderAPI, contract: bytes, data: bytes, types: list[str]
    ) -> tuple[Any, ...] | None:
        request = CallRequest(_READER, contract, data, 0, None)
        try:
            computation = await self.pool.run(
                lambda limits: self.calls.call(request, header, limits=limits)
            )
        except CallsBusy as exc:
            raise Unavailable(str(exc), 1) from None
        except (CallError, CallAborted):  # no such contract, or it ran past the timeout
            return None
        if computation.is_error:
            return None
        try:
            return tuple(decode(types, computation.output))
        except Exception:  # a contract that answers with something else: unknown
            return None

    @staticmethod
    def _address(address: bytes) -> bytes:
        return encode(["address"], ["0x" + address.hex()])

    async def role_and_tier(
        self, header: BlockHeaderAPI, address: bytes
    ) -> tuple[ChainRole, int] | None:
        answer = await self._call(
            header, ACCOUNT_RULES, _ROLE_AND_TIER + self._address(address), ["uint8", "uint8"]
        )
        if answer is None:
            return None
        try:
            return ChainRole(answer[0]), int(answer[1])
        except ValueError:
            return None

    async def frozen(self, header: BlockHeaderAPI, address: bytes) -> bool | None:
        answer = await self._call(
            header, WALLET_TOKEN, _IS_FROZEN + self._address(address), ["bool"]
        )
        return None if answer is None else bool(answer[0])

    async def token_balance(
        self, header: BlockHeaderAPI, address: bytes, token: bytes = WALLET_TOKEN
    ) -> int | None:
        """`balanceOf(address)` of any ERC-20 (the wallet token unless `token` says)."""
        answer = await self._call(header, token, _BALANCE_OF + self._address(address), ["uint256"])
        return None if answer is None else int(answer[0])

    async def token_metadata(
        self, header: BlockHeaderAPI, token: bytes
    ) -> tuple[str, str, int | None]:
        """An ERC-20's name, symbol and decimals ("" and None where it does not say)."""
        name = await self._call(header, token, _NAME, ["string"])
        symbol = await self._call(header, token, _SYMBOL, ["string"])
        decimals = await self._call(header, token, _DECIMALS, ["uint8"])
        return (
            "" if name is None else str(name[0]),
            "" if symbol is None else str(symbol[0]),
            None if decimals is None else int(decimals[0]),
        )

    async def points(self, header: BlockHeaderAPI, address: bytes) -> int | None:
        answer = await self._call(header, POINTS, _BALANCE_OF + self._address(address), ["uint256"])
        return None if answer is None else int(answer[0])

    async def fee_collector(self, header: BlockHeaderAPI) -> bytes | None:
        answer = await self._call(header, WALLET_TOKEN, _FEE_COLLECTOR, ["address"])
        return None if answer is None else bytes.fromhex(answer[0][2:])

    async def quote_fee(
        self, header: BlockHeaderAPI, sender: bytes, recipient: bytes, amount: int, kind: int
    ) -> int | None:
        data = _QUOTE_FEE + encode(
            ["address", "address", "uint256", "uint8"],
            ["0x" + sender.hex(), "0x" + recipient.hex(), amount, kind],
        )
        answer = await self._call(header, WALLET_TOKEN, data, ["uint256"])
        return None if answer is None else int(answer[0])
