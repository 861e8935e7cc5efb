"""Read-only execution for `eth_call` and `eth_estimateGas`, with state overrides.

Calls run on a throw-away batch over the block's state, in the context of a child block (as
geth does for "latest"), at gas price zero; nothing they write reaches the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from eth.abc import BlockHeaderAPI, ComputationAPI, SignedTransactionAPI, StateAPI
from eth.vm.chain_context import ChainContext
from eth.vm.spoof import SpoofTransaction
from eth_typing import Address
from eth_utils import ValidationError

from node.chain.chain import Chain
from node.chain.executor import HeaderSource
from node.chain.vm import TallyVM
from node.consensus.hashing import onchain_hash
from node.storage.store import StoreBatch


class CallError(Exception):
    """A call that could not run at all (bad nonce/balance, gas above the cap)."""


@dataclass(frozen=True, slots=True)
class AccountOverride:
    balance: int | None = None
    nonce: int | None = None
    code: bytes | None = None
    state: dict[int, int] | None = None
    state_diff: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallRequest:
    sender: bytes
    to: bytes
    data: bytes
    value: int
    gas: int | None


class CallExecutor:
    """Runs messages against a block's state without committing anything."""

    def __init__(self, chain: Chain, gas_cap: int) -> None:
        self._chain = chain
        self.gas_cap = gas_cap
        self._context = ChainContext(chain.chain_id)

    def _state(self, header: BlockHeaderAPI, overrides: dict[bytes, AccountOverride]) -> StateAPI:
        block_hash = onchain_hash(header)
        child = self._chain.executor.new_header(
            header,
            parent_hash=block_hash,
            base_fee=0,
            timestamp=header.timestamp + 1,
            coinbase=header.coinbase,
            gas_limit=header.gas_limit,
            extra_data=header.extra_data,
            mix_hash=header.mix_hash,
        )
        batch = StoreBatch(self._chain.store.store)
        source = HeaderSource(batch, self._lookup)
        state = TallyVM.build_state(
            batch, child, self._context, TallyVM.get_prev_hashes(block_hash, source)
        )
        for address, override in overrides.items():
            _apply_override(state, address, override)
        return state

    def _lookup(self, block_hash: bytes) -> BlockHeaderAPI:
        header = self._chain.header_by_hash(block_hash)
        if header is None:
            raise KeyError(block_hash)
        return header

    def _transaction(self, state: StateAPI, request: CallRequest, gas: int) -> SignedTransactionAPI:
        unsigned = TallyVM.create_unsigned_transaction(
            nonce=state.get_nonce(Address(request.sender)),
            gas_price=0,
            gas=gas,
            to=Address(request.to),
            value=request.value,
            data=request.data,
        )
        # The signature fields only have to pass py-evm's shape checks (low s, non-zero):
        # a call is never signed, its sender is given. A `SpoofTransaction` proxies a signed
        # transaction without subclassing one; py-evm's own gas estimator casts it the same way.
        spoof = SpoofTransaction(
            unsigned,
            sender=request.sender,
            r=1,
            s=1,
            v=27,
            y_parity=0,
            type_id=None,
            chain_id=self._chain.chain_id,
        )
        return cast(SignedTransactionAPI, spoof)

    def _run(self, state: StateAPI, request: CallRequest, gas: int) -> ComputationAPI:
        balance = state.get_balance(Address(request.sender))
        if balance < request.value:
            # geth's wording: wallets (ethers' INSUFFICIENT_FUNDS) recognise it.
            raise CallError(
                "insufficient funds for gas * price + value: "
                f"address 0x{request.sender.hex()} have {balance} want {request.value}"
            )
        snapshot = state.snapshot()
        try:
            return state.apply_transaction(self._transaction(state, request, gas))
        except ValidationError as exc:
            raise CallError(str(exc)) from exc
        finally:
            state.revert(snapshot)

    def call(
        self,
        request: CallRequest,
        header: BlockHeaderAPI,
        overrides: dict[bytes, AccountOverride] | None = None,
    ) -> ComputationAPI:
        gas = self._gas_for(request)
        return self._run(self._state(header, overrides or {}), request, gas)

    def estimate_gas(
        self,
        request: CallRequest,
        header: BlockHeaderAPI,
        overrides: dict[bytes, AccountOverride] | None = None,
    ) -> int | ComputationAPI:
        """The least gas with which the call succeeds, or the failed computation at the cap."""
        state = self._state(header, overrides or {})
        high = self._gas_for(request)
        at_cap = self._run(state, request, high)
        if at_cap.is_error:
            return at_cap
        low = self._transaction(state, request, high).intrinsic_gas - 1
        used = at_cap.get_gas_used() - at_cap.get_gas_refund()
        guess = max(low + 1, min(high, used + used // 64 + 2_300))
        if not self._run(state, request, guess).is_error:
            high = guess
        else:
            low = guess
        while high - low > 1:
            middle = (low + high) // 2
            if self._run(state, request, middle).is_error:
                low = middle
            else:
                high = middle
        return high

    def _gas_for(self, request: CallRequest) -> int:
        if request.gas is None:
            return self.gas_cap
        if request.gas > self.gas_cap:
            raise CallError(f"gas {request.gas} above the call gas cap {self.gas_cap}")
        return request.gas


def _apply_override(state: StateAPI, raw_address: bytes, override: AccountOverride) -> None:
    address = Address(raw_address)
    if override.balance is not None:
        state.set_balance(address, override.balance)
    if override.nonce is not None:
        state.set_nonce(address, override.nonce)
    if override.code is not None:
        state.set_code(address, override.code)
    if override.state is not None:
        state.delete_storage(address)
        for slot, value in override.state.items():
            state.set_storage(address, slot, value)
    for slot, value in override.state_diff.items():
        state.set_storage(address, slot, value)
