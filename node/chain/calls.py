"""Read-only execution for `eth_call` and `eth_estimateGas`, with state overrides.

Calls run on a throw-away batch over the block's state, in the context of a child block (as
geth does for "latest"), at gas price zero; nothing they write reaches the store. The state
is read by root from LevelDB, where trie nodes are never deleted, so a call sees one block's
state whole even while other threads commit new blocks.

Two kinds of caller: the node itself (permission rules, the REST API's bank reads) runs calls
with the block gas limit and no time limit, since a permission check decides what a block may
hold and must come out the same on every node; a client's call comes with `CallLimits` (the
operator's gas cap and a deadline, `node.rpc.callpool`) and runs `BoundedComputation`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from eth._utils.address import generate_contract_address
from eth.abc import BlockHeaderAPI, ComputationAPI, SignedTransactionAPI, StateAPI
from eth.vm.chain_context import ChainContext
from eth.vm.spoof import SpoofTransaction
from eth_typing import Address
from eth_utils import ValidationError

from node.chain.chain import Chain
from node.chain.executor import HeaderSource
from node.chain.interpreter import BoundedComputation, Deadline
from node.chain.tracing.hooks import Outcome, Session, Tracer, TracingComputation, TxInfo
from node.chain.vm import TallyState, TallyVM
from node.consensus.hashing import onchain_hash
from node.storage.store import StoreBatch

MAX_CODE_OVERRIDE = 2 * 24_576
"""The largest code a state override may install: 49,152 bytes, EIP-3860's initcode limit and
so the most code the EVM ever runs in one frame on chain (deployed code: EIP-170, 24,576).
Any contract a client could deploy, or deploy from, fits; a 7 MB override no longer does."""


class CallError(Exception):
    """A call that could not run at all (bad nonce or balance)."""


@dataclass(frozen=True, slots=True)
class CallLimits:
    """What bounds a client's call: geth's `--rpc.gascap` and `--rpc.evmtimeout`.

    `gas_cap` lowers any larger gas a request asks for (as geth does); `deadline` covers the
    whole request, so every run of an `eth_estimateGas` search counts against it.
    """

    gas_cap: int
    deadline: Deadline


class _CallState(TallyState):
    """A client call's state: its computations check `deadline` (`BoundedComputation`)."""

    computation_class = BoundedComputation
    deadline: Deadline


class _CallVM(TallyVM):
    """Builds `_CallState`s; only ever used for client calls, never for a block."""

    _state_class = _CallState


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
    """Runs messages against a block's state without committing anything.

    `gas_cap` is the gas of the node's own calls (the block gas limit): they must not depend
    on any one node's settings.
    """

    def __init__(self, chain: Chain, gas_cap: int) -> None:
        self._chain = chain
        self.gas_cap = gas_cap
        self._context = ChainContext(chain.chain_id)

    def _state(
        self,
        header: BlockHeaderAPI,
        overrides: dict[bytes, AccountOverride],
        limits: CallLimits | None,
    ) -> StateAPI:
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
        vm_class = TallyVM if limits is None else _CallVM
        state = vm_class.build_state(
            batch, child, self._context, TallyVM.get_prev_hashes(block_hash, source)
        )
        if limits is not None:
            cast(_CallState, state).deadline = limits.deadline
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

    def _run(
        self,
        state: StateAPI,
        request: CallRequest,
        gas: int,
        observe: Callable[[SignedTransactionAPI, ComputationAPI], None] | None = None,
    ) -> ComputationAPI:
        balance = state.get_balance(Address(request.sender))
        if balance < request.value:
            # geth's wording: wallets (ethers' INSUFFICIENT_FUNDS) recognise it.
            raise CallError(
                "insufficient funds for gas * price + value: "
                f"address 0x{request.sender.hex()} have {balance} want {request.value}"
            )
        snapshot = state.snapshot()
        try:
            transaction = self._transaction(state, request, gas)
            computation = state.apply_transaction(transaction)
            if observe is not None:  # before the revert: it sees the state the call left
                observe(transaction, computation)
            return computation
        except ValidationError as exc:
            raise CallError(str(exc)) from exc
        finally:
            state.revert(snapshot)

    def call(
        self,
        request: CallRequest,
        header: BlockHeaderAPI,
        overrides: dict[bytes, AccountOverride] | None = None,
        *,
        limits: CallLimits | None = None,
    ) -> ComputationAPI:
        """Run `request` on the state after `header`; raises `ExecutionTimeout` past the
        deadline of `limits`."""
        cap = self.gas_cap if limits is None else limits.gas_cap
        gas = cap if request.gas is None else min(request.gas, cap)
        return self._run(self._state(header, overrides or {}, limits), request, gas)

    def trace(
        self,
        request: CallRequest,
        header: BlockHeaderAPI,
        overrides: dict[bytes, AccountOverride] | None,
        *,
        limits: CallLimits,
        tracer: Tracer,
    ) -> None:
        """`call`, with `tracer` hooked into the execution (`debug_traceCall`)."""
        gas = limits.gas_cap if request.gas is None else min(request.gas, limits.gas_cap)
        state = self._state(header, overrides or {}, limits)
        outcome: list[Outcome] = []

        def observe(transaction: SignedTransactionAPI, computation: ComputationAPI) -> None:
            used = TallyVM.finalize_gas_used(transaction, computation)
            outcome.append(Outcome(used, computation))
            tracer.finish(outcome[0], state)

        traced = cast(Any, state)
        traced.trace = Session(tracer, limits.deadline)
        traced.computation_class = TracingComputation
        info = TxInfo(
            sender=request.sender,
            to=request.to
            or generate_contract_address(
                Address(request.sender), state.get_nonce(Address(request.sender))
            ),
            is_create=not request.to,
            gas=gas,
            gas_price=0,
            coinbase=header.coinbase,
        )
        tracer.start(info, state)
        self._run(state, request, gas, observe)

    def estimate_gas(
        self,
        request: CallRequest,
        header: BlockHeaderAPI,
        overrides: dict[bytes, AccountOverride] | None = None,
        *,
        limits: CallLimits | None = None,
    ) -> int | ComputationAPI:
        """The least gas with which the call succeeds, or the failed computation at the
        highest gas allowed: the request's gas, else the block gas limit, within the cap."""
        state = self._state(header, overrides or {}, limits)
        high = header.gas_limit if request.gas is None else request.gas
        high = min(high, self.gas_cap if limits is None else limits.gas_cap)
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
