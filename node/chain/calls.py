"""Read-only execution for `eth_call` and `eth_estimateGas`, with state overrides.

Calls run on a throw-away batch over the block's state, in the context of a child block (as
geth does for "latest"), at gas price zero; nothing they write reaches the store. The state
is read by root from LevelDB, where trie nodes are never deleted, so a call sees one block's
state whole even while other threads commit new blocks.

Two kinds of caller: the node itself (permission rules, the REST API's bank reads) runs calls
with the block gas limit and no time limit, since a permission check decides what a block may
hold and must come out the same on every node; a client's call comes with `CallLimits` (the
operator's gas cap and a deadline, `node.query.callpool`) and runs `BoundedComputation`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from eth.abc import BlockHeaderAPI, ComputationAPI, SignedTransactionAPI, StateAPI
from eth.exceptions import OutOfGas, Revert
from eth.vm.chain_context import ChainContext
from eth.vm.forks.prague.transactions import Authorization, PragueTransactionBuilder
from eth.vm.spoof import SpoofTransaction
from eth_typing import Address
from eth_utils import ValidationError

from node.chain.accesslist import PRECOMPILES, AccessList, AccessRecorder, RecordingComputation
from node.chain.chain import Chain
from node.chain.evm.internals import generate_contract_address
from node.chain.evm.interpreter import BoundedComputation, Deadline
from node.chain.evm.tracing import TracingComputation
from node.chain.evm.vm import TallyState, TallyVM
from node.chain.executor import HeaderSource
from node.chain.setcode import authority_of
from node.chain.tracing.hooks import Outcome, Session, Tracer, TxInfo
from node.chain.vm import TRANSACTION_BUILDER
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


_CallVM = TallyVM.with_state(_CallState)
"""Builds `_CallState`s; only ever used for client calls, never for a block."""


class _RecordingState(_CallState):
    """A call's state for `eth_createAccessList`: its computations fill `recorder`."""

    computation_class = RecordingComputation
    recorder: AccessRecorder


_RecordingVM = TallyVM.with_state(_RecordingState)


@dataclass(frozen=True, slots=True)
class AccountOverride:
    balance: int | None = None
    nonce: int | None = None
    code: bytes | None = None
    state: dict[int, int] | None = None
    state_diff: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A message to run. An access list makes it an EIP-2930 transaction, an authorization
    list an EIP-7702 one: both change its intrinsic gas and what is warm, as on chain."""

    sender: bytes
    to: bytes
    data: bytes
    value: int
    gas: int | None
    access_list: AccessList = ()
    authorizations: tuple[Authorization, ...] = ()


@dataclass(frozen=True, slots=True)
class AccessListResult:
    """geth's `eth_createAccessList` answer: the stable list, the gas a transaction carrying
    it uses, and the failure (if the call fails with it)."""

    access_list: AccessList
    gas_used: int
    error: str | None


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
        *,
        recording: bool = False,
    ) -> StateAPI:
        block_hash = self._chain.block_hash(header)
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
        vm_class: type[TallyVM] = _RecordingVM if recording else _CallVM
        if limits is None:
            vm_class = TallyVM
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

    def _transaction(
        self,
        state: StateAPI,
        request: CallRequest,
        gas: int,
        access_list: AccessList | None = None,
    ) -> SignedTransactionAPI:
        nonce = state.get_nonce(Address(request.sender))
        to, builder = Address(request.to), cast(type[PragueTransactionBuilder], TRANSACTION_BUILDER)
        chosen = request.access_list if access_list is None else access_list
        accesses = tuple((Address(address), slots) for address, slots in chosen)
        type_id: int | None = None
        unsigned: Any
        if request.authorizations:
            type_id = 4
            unsigned = builder.new_unsigned_set_code_transaction(
                self._chain.chain_id,
                nonce,
                0,
                0,
                gas,
                to,
                request.value,
                request.data,
                accesses,
                request.authorizations,
            )
        elif accesses:
            type_id = 1
            unsigned = builder.new_unsigned_access_list_transaction(
                self._chain.chain_id, nonce, 0, gas, to, request.value, request.data, accesses
            )
        else:
            unsigned = TallyVM.create_unsigned_transaction(
                nonce=nonce, gas_price=0, gas=gas, to=to, value=request.value, data=request.data
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
            type_id=type_id,
            chain_id=self._chain.chain_id,
        )
        return cast(SignedTransactionAPI, spoof)

    def _run(
        self,
        state: StateAPI,
        request: CallRequest,
        gas: int,
        access_list: AccessList | None = None,
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
            transaction = self._transaction(state, request, gas, access_list)
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
        self._run(state, request, gas, observe=observe)

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

    def create_access_list(
        self,
        request: CallRequest,
        header: BlockHeaderAPI,
        overrides: dict[bytes, AccountOverride] | None = None,
        *,
        limits: CallLimits,
    ) -> AccessListResult:
        """geth's algorithm: run with the list found so far until a run touches nothing new.

        The list only grows and is bounded by what the code can reach, so the loop ends; the
        deadline of `limits` bounds it in time as any call is bounded.
        """
        state = self._state(header, overrides or {}, limits, recording=True)
        recording = cast(_RecordingState, state)
        cap = limits.gas_cap
        gas = cap if request.gas is None else min(request.gas, cap)
        excluded = self._excluded(state, request)
        current = AccessRecorder(request.access_list, excluded).access_list()
        while True:
            recording.recorder = AccessRecorder(current, excluded)
            computation = self._run(state, request, gas, current)
            found = recording.recorder.access_list()
            if found == current:
                tx = self._transaction(state, request, gas, current)
                used = _gas_used(state, tx, computation)
                return AccessListResult(current, used, _error_text(computation))
            current = found

    def _excluded(self, state: StateAPI, request: CallRequest) -> frozenset[bytes]:
        """Sender, recipient (or the created address), precompiles and authorities: warm in
        any case, so listing them costs gas for nothing (geth leaves them out too)."""
        to = request.to
        if not to:
            sender = Address(request.sender)
            to = generate_contract_address(sender, state.get_nonce(sender))
        excluded = {request.sender, to, *PRECOMPILES}
        for auth in request.authorizations:
            if auth.chain_id not in (0, self._chain.chain_id):
                continue
            authority = authority_of(auth)
            if authority is not None:
                excluded.add(authority)
        return frozenset(excluded)


def _gas_used(state: StateAPI, tx: SignedTransactionAPI, computation: ComputationAPI) -> int:
    """What a receipt would show: gas less refund, raised to Prague's calldata floor."""
    used = tx.gas - computation.get_gas_remaining()
    executor = cast(Any, state.get_transaction_executor())  # London's refund rule
    refund = executor.calculate_gas_refund(computation, used)
    return used - refund + getattr(computation, "data_floor_gas", 0)


def _error_text(computation: ComputationAPI) -> str | None:
    """The failure as geth words it in `eth_createAccessList`'s `error` field."""
    if not computation.is_error:
        return None
    error = computation.error
    if isinstance(error, Revert):
        return "execution reverted"
    if isinstance(error, OutOfGas):
        return "out of gas"
    return str(error) or type(error).__name__


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
