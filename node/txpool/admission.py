"""Admission: turn raw bytes into a `PooledTransaction`, or say why not.

Checks run cheapest first so junk is refused before the one expensive step, signature recovery
(~100 us): size, type byte, decoding, chain id, field ranges, fees, gas, and only then the
sender. The stateful checks (nonce, balance) come last and read the account through the
narrow `AccountStateReader` port, so this module knows nothing about storage.

The pool adds the checks that depend on what it already holds (duplicates, replacement, nonce
gaps, capacity); see `node.txpool.pool`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast

import rlp
from eth.abc import LegacyTransactionFieldsAPI, SignedTransactionAPI
from eth.constants import CREATE_CONTRACT_ADDRESS, GAS_TX, SECPK1_N
from eth.vm.forks.prague.constants import STANDARD_TOKEN_COST, TOTAL_COST_FLOOR_PER_TOKEN
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE
from eth_hash.auto import keccak
from eth_keys.exceptions import BadSignature
from eth_typing import Address
from eth_utils import ValidationError

from node.chain.setcode import authorities_of
from node.chain.vm import decode_transaction, recover_sender
from node.txpool.errors import (
    FloorDataGasTooLow,
    GasLimitExceeded,
    InitCodeTooLarge,
    InsufficientFunds,
    IntrinsicGasTooLow,
    InvalidChainId,
    InvalidSender,
    InvalidSetCode,
    MalformedTransaction,
    NonceMax,
    NonceTooLow,
    OversizedTransaction,
    TipAboveFeeCap,
    Underpriced,
    UnprotectedTransaction,
    UnsupportedTxType,
)
from node.txpool.transaction import PooledTransaction

DEFAULT_MAX_TX_SIZE = 128 * 1024
"""geth's limit (4 slots of 32 KiB): bounds the memory one transaction can pin."""

SUPPORTED_TYPED = frozenset({0x01, 0x02, 0x04})
"""EIP-2930, EIP-1559 and EIP-7702 (set code). Blob transactions (0x03) are not accepted:
Tally carries no blobs."""
SET_CODE = 0x04

_UINT64_MAX = 2**64 - 1
_UINT256_MAX = 2**256 - 1
_HALF_N = SECPK1_N // 2
_EIP155_V_MIN = 35

_DECODE_ERRORS = (rlp.exceptions.RLPException, ValidationError, ValueError, TypeError, IndexError)
_RECOVERY_ERRORS = (BadSignature, ValidationError, ValueError, TypeError)


class AccountStateReader(Protocol):
    """What admission needs from chain state: an account's nonce and balance.

    Addresses are 20-byte canonical addresses. Storage implements this over the head state;
    tests use py-evm's own `AccountDB`.
    """

    def get_nonce(self, address: Address) -> int:
        """The account's next nonce in the latest block's state."""
        ...

    def get_balance(self, address: Address) -> int:
        """The account's balance in wei in the latest block's state."""
        ...

    def get_code(self, address: Address) -> bytes:
        """The account's code (an EIP-7702 delegation designator for a delegated EOA)."""
        ...


@dataclass(frozen=True, slots=True)
class AdmissionRules:
    """The chain's and node's rules a transaction must meet to enter the pool.

    `min_gas_price` applies to the tip cap (a legacy transaction's gas price), as geth's
    `--txpool.pricelimit` does; private networks run at 0. `base_fee` is a floor for the fee
    cap: leave it at 0 unless the chain's base fee is non-zero, and replace the rules when it
    changes. `allow_unprotected` admits legacy transactions signed without a chain id.
    """

    chain_id: int
    block_gas_limit: int
    max_tx_size: int = DEFAULT_MAX_TX_SIZE
    min_gas_price: int = 0
    base_fee: int = 0
    allow_unprotected: bool = False


def transaction_hash(raw: bytes) -> bytes:
    """The transaction hash, straight from the raw bytes.

    py-evm decodes strictly (canonical RLP only, no trailing bytes), so any raw transaction it
    accepts re-encodes to the same bytes and its hash is keccak(raw) for every type. Hashing
    first lets the pool answer "already known" without decoding or recovering anything.
    """
    return keccak(raw)


def decode_checked(
    raw: bytes, rules: AdmissionRules, *, tx_hash: bytes | None = None, seq: int = 0
) -> PooledTransaction:
    """Every check that needs no chain state; recovers (and caches) the sender last."""
    size = len(raw)
    if size > rules.max_tx_size:
        raise OversizedTransaction(size, rules.max_tx_size)
    if size == 0:
        raise MalformedTransaction("empty input")
    first = raw[0]
    legacy = first >= 0xC0
    if first <= 0x7F and first not in SUPPORTED_TYPED:
        raise UnsupportedTxType(first)
    try:
        tx = decode_transaction(raw)
    except _DECODE_ERRORS as exc:
        raise MalformedTransaction(str(exc) or type(exc).__name__) from exc

    if legacy:
        v = cast(LegacyTransactionFieldsAPI, tx).v
        if v >= _EIP155_V_MIN:
            chain_id = tx.chain_id
        elif v in (27, 28):
            if not rules.allow_unprotected:
                raise UnprotectedTransaction()
            chain_id = None
        else:
            raise InvalidSender("invalid transaction v, r, s values")
        max_fee = max_tip = tx.gas_price
    else:
        chain_id = tx.chain_id
        if tx.y_parity > 1:
            raise InvalidSender("invalid transaction v, r, s values")
        if first == SET_CODE:
            _check_set_code(tx)
        if first in (0x02, SET_CODE):
            max_fee = tx.max_fee_per_gas
            max_tip = tx.max_priority_fee_per_gas
        else:
            max_fee = max_tip = tx.gas_price
    if chain_id is not None and chain_id != rules.chain_id:
        raise InvalidChainId(chain_id, rules.chain_id)

    nonce, gas, value, data = tx.nonce, tx.gas, tx.value, tx.data
    if nonce > _UINT64_MAX or gas > _UINT64_MAX:
        raise MalformedTransaction("input string too long for uint64")
    if max_fee > _UINT256_MAX or max_tip > _UINT256_MAX or value > _UINT256_MAX:
        raise MalformedTransaction("input string too long for uint256")
    if max_tip > max_fee:
        raise TipAboveFeeCap(_sender_or_zero(tx), max_tip, max_fee)
    if gas > rules.block_gas_limit:
        raise GasLimitExceeded(gas, rules.block_gas_limit)
    if max_tip < rules.min_gas_price:
        raise Underpriced(f"gas tip cap {max_tip}, minimum needed {rules.min_gas_price}")
    if max_fee < rules.base_fee:
        raise Underpriced(f"max fee per gas {max_fee} less than base fee {rules.base_fee}")
    _check_gas(tx.to, data, gas, tx.intrinsic_gas)

    r, s = tx.r, tx.s
    if not (0 < r < SECPK1_N and 0 < s <= _HALF_N):
        raise InvalidSender("invalid transaction v, r, s values")
    try:
        sender = recover_sender(tx)
    except _RECOVERY_ERRORS as exc:
        raise InvalidSender(str(exc)) from exc
    if nonce == _UINT64_MAX:
        raise NonceMax(sender, nonce)
    authorities = authorities_of(tx)

    return PooledTransaction(
        tx=tx,
        hash=tx_hash if tx_hash is not None else transaction_hash(raw),
        sender=sender,
        nonce=nonce,
        gas=gas,
        max_fee=max_fee,
        max_priority_fee=max_tip,
        value=value,
        cost=gas * max_fee + value,
        size=size,
        raw=raw,
        seq=seq,
        authorities=authorities,
    )


def _check_set_code(tx: SignedTransactionAPI) -> None:
    """EIP-7702's stateless rules, with geth's words: a recipient, at least one authorization,
    each with fields in range. Whether an authorization is valid for its authority (chain id,
    nonce, signature) is decided at execution, where an invalid one is skipped, not refused."""
    if not tx.to:
        raise MalformedTransaction("input string too short for common.Address")
    authorizations = cast(Any, tx).authorization_list
    if not authorizations:
        raise InvalidSetCode("set code tx must have at least one authorization tuple")
    for auth in authorizations:
        try:
            auth.validate_for_transaction()
        except ValidationError as exc:
            raise MalformedTransaction(str(exc)) from exc


def check_account(ptx: PooledTransaction, state_nonce: int, balance: int) -> None:
    """The checks against the sender's account: nonce not yet used, cost covered.

    The balance must cover this transaction alone, as geth's admission does; the sum over a
    sender's queue is not checked, so a later transaction may still fail for lack of funds at
    execution (the block builder then calls `TxPool.drop_invalid`).
    """
    if ptx.nonce < state_nonce:
        raise NonceTooLow(state_nonce, ptx.nonce)
    if balance < ptx.cost:
        raise InsufficientFunds(ptx.sender, balance, ptx.cost)


def admit(
    raw: bytes, rules: AdmissionRules, state: AccountStateReader, *, seq: int = 0
) -> PooledTransaction:
    """Validate `raw` fully (stateless, then against `state`) and return it ready to pool."""
    ptx = decode_checked(raw, rules, seq=seq)
    check_account(ptx, state.get_nonce(ptx.sender), state.get_balance(ptx.sender))
    return ptx


def _check_gas(to: bytes, data: bytes, gas: int, intrinsic: int) -> None:
    """Intrinsic gas, Prague's calldata floor (EIP-7623) and the init code limit (EIP-3860).

    py-evm applies the last two only during execution, where a violating transaction would
    still be included (and charged); geth refuses them at the pool, and so does Tally.
    """
    if gas < intrinsic:
        raise IntrinsicGasTooLow(gas, intrinsic)
    if data:
        zeros = data.count(0)
        tokens = zeros + (len(data) - zeros) * STANDARD_TOKEN_COST
        floor = GAS_TX + TOTAL_COST_FLOOR_PER_TOKEN * tokens
        if gas < floor:
            raise FloorDataGasTooLow(gas, floor)
        if to == CREATE_CONTRACT_ADDRESS and len(data) > MAX_INITCODE_SIZE:
            raise InitCodeTooLarge(len(data), MAX_INITCODE_SIZE)


def _sender_or_zero(tx: SignedTransactionAPI) -> bytes:
    """The sender for an error message, if it can be recovered; never raises."""
    try:
        return tx.sender
    except Exception:
        return b"\x00" * 20
