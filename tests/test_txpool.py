"""Transaction pool: admission rejections, pending/queued bookkeeping, replacement, eviction,
block selection and block updates, with real signed transactions and py-evm account state."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest
import rlp
from eth.constants import SECPK1_N
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_keys import keys
from eth_typing import Address

from node.chain.evm.vm import TallyVM
from node.txpool import errors
from node.txpool.admission import AdmissionRules, admit
from node.txpool.pool import PoolConfig, TxPool
from node.txpool.transaction import PooledTransaction
from tests.test_rpc_rejections import flipped_r, with_signature

CHAIN_ID = 1337
GAS_LIMIT = 30_000_000
TO = "0x" + "11" * 20
RICH = 10**24


class ChainState:
    """py-evm's own account database over an in-memory store: the pool reads real state."""

    def __init__(self) -> None:
        self.db = AccountDB(AtomicDB())

    def fund(self, account: LocalAccount, balance: int = RICH, nonce: int = 0) -> None:
        self.db.set_balance(Address(address(account)), balance)
        self.db.set_nonce(Address(address(account)), nonce)
        self.db.persist()

    def get_nonce(self, address: bytes) -> int:
        return self.db.get_nonce(Address(address))

    def get_balance(self, address: bytes) -> int:
        return self.db.get_balance(Address(address))

    def get_code(self, address: bytes) -> bytes:
        return self.db.get_code(Address(address))


def address(account: LocalAccount) -> Address:
    return Address(bytes.fromhex(account.address[2:]))


def sign(
    account: LocalAccount,
    nonce: int = 0,
    *,
    kind: str = "1559",
    fee: int = 10,
    tip: int | None = None,
    gas: int = 21_000,
    value: int = 1,
    data: bytes = b"",
    chain_id: int | None = CHAIN_ID,
    to: str | None = TO,
) -> bytes:
    """A raw signed transaction; `kind` is legacy, 2930 or 1559 (fee = gas price or fee cap)."""
    tx: dict[str, Any] = {"nonce": nonce, "gas": gas, "value": value, "data": data}
    if to is not None:
        tx["to"] = to
    if chain_id is not None:
        tx["chainId"] = chain_id
    if kind == "legacy":
        tx["gasPrice"] = fee
    elif kind == "2930":
        tx.update(type=1, gasPrice=fee, accessList=[])
    else:
        tx.update(type=2, maxFeePerGas=fee, maxPriorityFeePerGas=fee if tip is None else tip)
    return bytes(account.sign_transaction(tx).raw_transaction)


@pytest.fixture
def state() -> ChainState:
    return ChainState()


@pytest.fixture
def rules() -> AdmissionRules:
    return AdmissionRules(chain_id=CHAIN_ID, block_gas_limit=GAS_LIMIT)


@pytest.fixture
def pool(rules: AdmissionRules) -> TxPool:
    return TxPool(PoolConfig(), rules)


def funded(state: ChainState, balance: int = RICH, nonce: int = 0) -> LocalAccount:
    account = Account.create()
    state.fund(account, balance, nonce)
    return account


# --- admission: accepted transactions ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["legacy", "2930", "1559"])
def test_admits_each_supported_type(kind: str, state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    raw = sign(alice, kind=kind, fee=7, tip=None if kind != "1559" else 3, value=5)
    ptx = pool.add(raw, state)

    assert ptx.sender == address(alice)
    assert ptx.hash == keccak(raw) == ptx.tx.hash
    assert (ptx.nonce, ptx.gas, ptx.size, ptx.raw) == (0, 21_000, len(raw), raw)
    assert ptx.max_fee == 7
    assert ptx.max_priority_fee == (3 if kind == "1559" else 7)
    assert ptx.cost == 21_000 * 7 + 5
    assert pool.get(ptx.hash) is ptx
    assert "sender" in vars(ptx.tx), "sender recovered once and cached on the py-evm object"


def test_admit_function_checks_state(state: ChainState, rules: AdmissionRules) -> None:
    alice = funded(state, nonce=2)
    ptx = admit(sign(alice, 2), rules, state, seq=9)
    assert isinstance(ptx, PooledTransaction)
    assert ptx.seq == 9
    with pytest.raises(errors.NonceTooLow):
        admit(sign(alice, 1), rules, state)


def test_select_hands_over_the_same_decoded_object(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    ptx = pool.add(sign(alice, kind="legacy"), state)
    [chosen] = pool.select(GAS_LIMIT, 0)
    assert chosen is ptx
    assert chosen.tx is ptx.tx


def test_unprotected_legacy_allowed_when_configured(
    state: ChainState, rules: AdmissionRules
) -> None:
    alice = funded(state)
    pool = TxPool(PoolConfig(), replace(rules, allow_unprotected=True))
    assert pool.add(sign(alice, kind="legacy", chain_id=None), state).sender == address(alice)


# --- admission: every rejection with its message -------------------------------------------------


def rejected(pool: TxPool, raw: bytes, state: ChainState, error: type[Exception]) -> str:
    with pytest.raises(error) as info:
        pool.add(raw, state)
    assert isinstance(info.value, errors.TxPoolError)
    return str(info.value)


@pytest.mark.parametrize(
    "raw",
    [b"\xc3\x01\x02", b"\xf8\xff" + b"\x00" * 4, b"\x02\xc0", b"\x01\x82\x01\x02", b"\x85hello"],
)
def test_rejects_malformed(raw: bytes, state: ChainState, pool: TxPool) -> None:
    message = rejected(pool, raw, state, errors.MalformedTransaction)
    assert message.startswith("invalid transaction: rlp: ")


def test_rejects_empty_and_trailing_bytes(state: ChainState, pool: TxPool) -> None:
    rejected(pool, b"", state, errors.MalformedTransaction)
    alice = funded(state)
    rejected(pool, sign(alice) + b"\x00", state, errors.MalformedTransaction)


def test_rejects_non_canonical_encoding(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    fields = rlp.decode(sign(alice, kind="legacy"))
    fields[0] = b"\x00"  # nonce 0 written with a leading zero byte
    rejected(pool, rlp.encode(fields), state, errors.MalformedTransaction)


def test_rejects_bad_signature_values(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    for kind in ("legacy", "1559"):
        raw = sign(alice, kind=kind)
        tx_fields = rlp.decode(raw if kind == "legacy" else raw[1:])
        s = int.from_bytes(tx_fields[-1], "big")
        high_s = with_signature(raw, s=SECPK1_N - s)
        zero_r = with_signature(raw, r=0)
        for bad in (high_s, zero_r):
            message = rejected(pool, bad, state, errors.InvalidSender)
            assert message == "invalid sender: invalid transaction v, r, s values"
    bad_parity = with_signature(sign(alice, kind="1559"), v=5, s=1)
    rejected(pool, bad_parity, state, errors.InvalidSender)
    legacy_bad_v = with_signature(sign(alice, kind="legacy"), v=30, r=1, s=1)
    rejected(pool, legacy_bad_v, state, errors.InvalidSender)


def test_rejects_signature_that_recovers_nothing(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    raw = sign(alice, kind="2930")
    # An r that is not the x coordinate of any curve point: no key can be recovered.
    unrecoverable = with_signature(raw, v=0, r=flipped_r(raw, on_curve=False), s=1)
    message = rejected(pool, unrecoverable, state, errors.InvalidSender)
    assert message.startswith("invalid sender")


def test_rejects_unprotected_legacy(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    message = rejected(
        pool, sign(alice, kind="legacy", chain_id=None), state, errors.UnprotectedTransaction
    )
    assert message == "only replay-protected (EIP-155) transactions allowed over RPC"


@pytest.mark.parametrize("kind", ["legacy", "2930", "1559"])
def test_rejects_wrong_chain_id(kind: str, state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    message = rejected(pool, sign(alice, kind=kind, chain_id=1), state, errors.InvalidChainId)
    assert message == "invalid sender: invalid chain id for signer: have 1 want 1337"


def set_code(sender: LocalAccount, nonce: int, authorizations: list[Any], to: str = TO) -> bytes:
    tx: dict[str, Any] = {
        "type": 4,
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "maxFeePerGas": 1,
        "maxPriorityFeePerGas": 1,
        "gas": 100_000,
        "to": to,
        "value": 0,
        "data": b"",
        "accessList": [],
        "authorizationList": authorizations,
    }
    return bytes(sender.sign_transaction(tx).raw_transaction)


def test_admits_set_code_and_rejects_blob_types(state: ChainState, pool: TxPool) -> None:
    alice, bob = funded(state), funded(state)
    auth = bob.sign_authorization({"chainId": CHAIN_ID, "address": TO, "nonce": 0})
    pooled = pool.add(set_code(alice, 0, [auth]), state)
    assert pooled.authorities == (address(bob),)
    assert pooled.tx.intrinsic_gas == 21_000 + 25_000
    blob = b"\x03" + rlp.encode(
        [CHAIN_ID, 0, 1, 1, 21_000, b"\x11" * 20, 0, b"", [], 1, [], 0, 1, 1]
    )
    rejected(pool, blob, state, errors.UnsupportedTxType)
    rejected(pool, b"\x05\xc0", state, errors.UnsupportedTxType)


def test_set_code_stateless_rules(state: ChainState, pool: TxPool) -> None:
    """geth's words: no authorization, no recipient; an authorization for another chain or a
    stale nonce is admitted (execution skips it, EIP-7702)."""
    alice, bob = funded(state), funded(state)
    # py-evm types the builder as the base API, which lacks the Prague (EIP-7702) constructor.
    builder = cast(type[PragueTransactionBuilder], TallyVM.get_transaction_builder())
    empty = builder.new_unsigned_set_code_transaction(
        CHAIN_ID, 0, 1, 1, 100_000, Address(bytes.fromhex(TO[2:])), 0, b"", [], []
    )
    signed = empty.as_signed_transaction(keys.PrivateKey(bytes(alice.key)))
    message = rejected(pool, signed.encode(), state, errors.InvalidSetCode)
    assert message == "set code tx must have at least one authorization tuple"
    auth = bob.sign_authorization({"chainId": CHAIN_ID + 1, "address": TO, "nonce": 7})
    fields = rlp.decode(set_code(alice, 0, [auth])[1:])
    fields[5] = b""  # no recipient: EIP-7702 forbids creating a contract
    unsigned = b"\x04" + rlp.encode(fields)
    rejected(pool, unsigned, state, errors.MalformedTransaction)
    assert pool.add(set_code(alice, 0, [auth]), state).authorities == (address(bob),)


def test_set_code_pool_reservations(state: ChainState, pool: TxPool) -> None:
    """geth's rules: an authority with several pooled transactions cannot be named, and an
    account a pooled authorization names (or already delegated) holds one transaction."""
    alice, bob, carol = funded(state), funded(state), funded(state)
    pool.add(sign(bob, 0), state)
    pool.add(sign(bob, 1), state)
    busy = bob.sign_authorization({"chainId": CHAIN_ID, "address": TO, "nonce": 2})
    message = rejected(pool, set_code(alice, 0, [busy]), state, errors.AuthorityReserved)
    assert message == "authority already reserved"

    auth = carol.sign_authorization({"chainId": CHAIN_ID, "address": TO, "nonce": 1})
    pool.add(sign(carol, 0), state)
    pool.add(set_code(alice, 0, [auth]), state)
    message = rejected(pool, sign(carol, 1), state, errors.InflightLimitReached)
    assert message == "in-flight transaction limit reached for delegated accounts"
    assert pool.add(sign(carol, 0, fee=20), state).nonce == 0  # a replacement still is

    dave = funded(state)
    state.db.set_code(Address(address(dave)), b"\xef\x01\x00" + bytes.fromhex(TO[2:]))
    pool.add(sign(dave, 0), state)
    rejected(pool, sign(dave, 1), state, errors.InflightLimitReached)


def test_rejects_nonce_too_low(state: ChainState, pool: TxPool) -> None:
    alice = funded(state, nonce=5)
    message = rejected(pool, sign(alice, 4), state, errors.NonceTooLow)
    assert message == "nonce too low: next nonce 5, tx nonce 4"


def test_rejects_nonce_too_high(state: ChainState, rules: AdmissionRules) -> None:
    pool = TxPool(PoolConfig(max_nonce_gap=3), rules)
    alice = funded(state, nonce=2)
    pool.add(sign(alice, 2), state)  # next pending nonce becomes 3
    pool.add(sign(alice, 6), state)  # gap of 3: allowed
    message = rejected(pool, sign(alice, 7), state, errors.NonceTooHigh)
    assert message.startswith("nonce too high")


def test_nonce_gap_is_not_applied_while_syncing_or_restoring(
    state: ChainState, rules: AdmissionRules
) -> None:
    """Behind the network, a state nonce is stale: a nonce valid at the network's head is
    queued, not refused, and becomes pending once the state catches up (issue 12 point 6)."""
    syncing = True
    pool = TxPool(PoolConfig(max_nonce_gap=3), rules, syncing=lambda: syncing)
    alice = funded(state)
    far = pool.add(sign(alice, 10), state)
    assert not pool.is_pending(far.hash)
    restored = pool.add(sign(alice, 20), state, restoring=True)
    syncing = False
    rejected(pool, sign(alice, 30), state, errors.NonceTooHigh)
    assert [ptx.nonce for ptx in pool.transactions()] == [10, 20]

    state.fund(alice, nonce=10)  # the node caught up: nonces 0-9 were mined meanwhile
    pool.on_new_block((), state, senders=[Address(address(alice))])
    assert pool.is_pending(far.hash)
    assert not pool.is_pending(restored.hash)


def test_rejects_nonce_at_max(state: ChainState, pool: TxPool) -> None:
    alice = funded(state, nonce=2**64 - 1)
    message = rejected(pool, sign(alice, 2**64 - 1), state, errors.NonceMax)
    assert message.startswith("nonce has max value")


def test_rejects_intrinsic_gas_too_low(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    message = rejected(pool, sign(alice, gas=20_999), state, errors.IntrinsicGasTooLow)
    assert message == "intrinsic gas too low: have 20999, want 21000"
    data = b"\x01" * 10  # intrinsic 21000 + 16 * 10
    message = rejected(pool, sign(alice, gas=21_100, data=data), state, errors.IntrinsicGasTooLow)
    assert message == "intrinsic gas too low: have 21100, want 21160"


def test_rejects_below_calldata_floor(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    data = b"\x01" * 100  # intrinsic 22600, EIP-7623 floor 21000 + 10 * 400 = 25000
    message = rejected(pool, sign(alice, gas=22_600, data=data), state, errors.FloorDataGasTooLow)
    assert message == "insufficient gas for floor data gas cost: have 22600, want 25000"
    assert pool.add(sign(alice, gas=25_000, data=data), state)


def test_rejects_oversized_init_code(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    code = b"\x01" * 49_153
    raw = sign(alice, gas=GAS_LIMIT, data=code, to=None, fee=1)
    message = rejected(pool, raw, state, errors.InitCodeTooLarge)
    assert message == "max initcode size exceeded: code size 49153, limit 49152"


def test_rejects_gas_above_block_limit(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    message = rejected(pool, sign(alice, gas=GAS_LIMIT + 1), state, errors.GasLimitExceeded)
    assert message.startswith("exceeds block gas limit")


def test_rejects_insufficient_funds(state: ChainState, pool: TxPool) -> None:
    alice = funded(state, balance=21_000 * 10)
    message = rejected(pool, sign(alice, fee=10, value=1), state, errors.InsufficientFunds)
    assert message == (
        "insufficient funds for gas * price + value: "
        f"address {alice.address} have 210000 want 210001"
    )
    assert pool.add(sign(alice, fee=10, value=0), state)


def test_rejects_oversized(state: ChainState, rules: AdmissionRules) -> None:
    pool = TxPool(PoolConfig(), replace(rules, block_gas_limit=10**9))
    alice = funded(state)
    raw = sign(alice, gas=10**8, data=b"\x01" * (128 * 1024))
    message = rejected(pool, raw, state, errors.OversizedTransaction)
    assert message == f"oversized data: transaction size {len(raw)}, limit 131072"


def test_rejects_underpriced(state: ChainState, rules: AdmissionRules) -> None:
    pool = TxPool(PoolConfig(min_gas_price=5), rules)
    alice = funded(state)
    message = rejected(pool, sign(alice, kind="legacy", fee=4), state, errors.Underpriced)
    assert message.startswith("transaction underpriced")
    rejected(pool, sign(alice, fee=100, tip=4), state, errors.Underpriced)
    assert pool.add(sign(alice, fee=100, tip=5), state)

    floor = TxPool(PoolConfig(), replace(rules, base_fee=50))
    message = rejected(floor, sign(alice, fee=49, tip=0), state, errors.Underpriced)
    assert message.startswith("transaction underpriced")


def test_rejects_tip_above_fee_cap(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    message = rejected(pool, sign(alice, fee=5, tip=6), state, errors.TipAboveFeeCap)
    assert message.startswith("max priority fee per gas higher than max fee per gas")


def test_rejects_already_known(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    raw = sign(alice)
    pool.add(raw, state)
    assert rejected(pool, raw, state, errors.AlreadyKnown) == "already known"


def test_rejects_beyond_per_sender_limit(state: ChainState, rules: AdmissionRules) -> None:
    pool = TxPool(PoolConfig(max_per_sender=3), rules)
    alice = funded(state)
    for nonce in range(3):
        pool.add(sign(alice, nonce), state)
    message = rejected(pool, sign(alice, 3), state, errors.AccountLimitExceeded)
    assert message.startswith("account limit exceeded")
    pool.add(sign(alice, 2, fee=20), state)  # replacing within the limit still works
    pool.add(sign(funded(state)), state)  # and other senders are unaffected


# --- pending, queued, promotion --------------------------------------------------------------


def test_future_nonces_queue_then_promote(state: ChainState, pool: TxPool) -> None:
    alice = funded(state, nonce=3)
    announced: list[int] = []
    pool.on_pending.append(lambda ptx: announced.append(ptx.nonce))

    pool.add(sign(alice, 5), state)
    pool.add(sign(alice, 6), state)
    assert pool.stats()["pending"] == 0 and pool.stats()["queued"] == 2
    assert pool.pending_nonce(address(alice), state) == 3
    assert pool.select(GAS_LIMIT, 0) == []

    pool.add(sign(alice, 3), state)
    assert announced == [3]
    assert pool.pending_nonce(address(alice), state) == 4

    pool.add(sign(alice, 4), state)  # fills the gap: 4, 5, 6 become pending in order
    assert announced == [3, 4, 5, 6]
    assert pool.stats() == {"pending": 4, "queued": 0, "senders": 1, "total": 4}
    assert pool.pending_nonce(address(alice), state) == 7
    assert [p.nonce for p in pool.select(GAS_LIMIT, 0)] == [3, 4, 5, 6]


def test_pending_nonce_of_unknown_sender_is_state_nonce(state: ChainState, pool: TxPool) -> None:
    alice = funded(state, nonce=9)
    assert pool.pending_nonce(address(alice), state) == 9


def test_pending_nonce_follows_state_moved_without_notice(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    for nonce in (0, 1, 2, 4):
        pool.add(sign(alice, nonce), state)
    state.fund(alice, nonce=3)  # a block we were not told about included 0..2
    assert pool.pending_nonce(address(alice), state) == 3
    assert len(pool) == 1 and pool.stats()["queued"] == 1
    announced: list[int] = []
    pool.on_pending.append(lambda ptx: announced.append(ptx.nonce))
    state.fund(alice, nonce=4)
    pool.add(sign(alice, 6), state)  # the add notices the new nonce and promotes 4
    assert announced == [4]
    assert pool.pending_nonce(address(alice), state) == 5
    assert pool.stats()["pending"] == 1 and pool.stats()["queued"] == 1


def test_listener_errors_do_not_break_the_pool(state: ChainState, pool: TxPool) -> None:
    def broken(_: PooledTransaction) -> None:
        raise RuntimeError("subscriber went away")

    seen: list[bytes] = []
    pool.on_pending.extend([broken, lambda ptx: seen.append(ptx.hash)])
    ptx = pool.add(sign(funded(state)), state)
    assert seen == [ptx.hash]
    assert len(pool) == 1


# --- replacement --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["legacy", "1559"])
def test_replacement_needs_ten_percent(kind: str, state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    old = pool.add(sign(alice, 0, kind=kind, fee=100), state)
    message = rejected(
        pool, sign(alice, 0, kind=kind, fee=109), state, errors.ReplacementUnderpriced
    )
    assert message.startswith("replacement transaction underpriced")
    announced: list[bytes] = []
    pool.on_pending.append(lambda ptx: announced.append(ptx.hash))

    new = pool.add(sign(alice, 0, kind=kind, fee=110), state)
    assert pool.get(old.hash) is None and pool.get(new.hash) is new
    assert len(pool) == 1 and announced == [new.hash]
    assert pool.select(GAS_LIMIT, 0) == [new]


def test_replacement_must_raise_both_caps(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    pool.add(sign(alice, 0, fee=100, tip=10), state)
    rejected(pool, sign(alice, 0, fee=200, tip=10), state, errors.ReplacementUnderpriced)
    rejected(pool, sign(alice, 0, fee=100, tip=100), state, errors.ReplacementUnderpriced)
    assert pool.add(sign(alice, 0, fee=110, tip=11), state)


def test_zero_fee_transaction_replaced_only_by_paying_one(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    pool.add(sign(alice, 0, fee=0, value=1), state)
    rejected(pool, sign(alice, 0, fee=0, value=2), state, errors.ReplacementUnderpriced)
    assert pool.add(sign(alice, 0, fee=1), state)


def test_replacing_queued_tx_keeps_it_queued(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    pool.add(sign(alice, 2, fee=10), state)
    announced: list[int] = []
    pool.on_pending.append(lambda ptx: announced.append(ptx.nonce))
    pool.add(sign(alice, 2, fee=20), state)
    assert announced == []
    assert pool.stats()["queued"] == 1


# --- eviction when full ------------------------------------------------------------------------


def small_pool(rules: AdmissionRules, size: int) -> TxPool:
    return TxPool(PoolConfig(max_transactions=size), rules)


def test_full_pool_evicts_cheapest_of_another_sender(
    state: ChainState, rules: AdmissionRules
) -> None:
    pool = small_pool(rules, 3)
    low, mid, high = (pool.add(sign(funded(state), fee=f), state) for f in (1, 2, 3))
    assert rejected(pool, sign(funded(state), fee=1), state, errors.PoolFull) == "txpool is full"

    newcomer = pool.add(sign(funded(state), fee=4), state)
    assert pool.get(low.hash) is None
    assert {pool.get(p.hash) for p in (mid, high, newcomer)} == {mid, high, newcomer}
    assert pool.removed["evicted"] == 1


def test_full_pool_prefers_evicting_queued(state: ChainState, rules: AdmissionRules) -> None:
    pool = small_pool(rules, 3)
    cheap = pool.add(sign(funded(state), fee=1), state)
    pool.add(sign(funded(state), fee=2), state)
    future = pool.add(sign(funded(state), 5, fee=4), state)  # queued behind a gap
    pool.add(sign(funded(state), fee=5), state)
    assert pool.get(future.hash) is None
    assert pool.get(cheap.hash) is cheap


def test_future_tx_never_evicts_pending(state: ChainState, rules: AdmissionRules) -> None:
    pool = small_pool(rules, 2)
    pool.add(sign(funded(state), fee=1), state)
    pool.add(sign(funded(state), fee=1), state)
    rejected(pool, sign(funded(state), 3, fee=100), state, errors.PoolFull)


def test_eviction_never_opens_a_nonce_gap(state: ChainState, rules: AdmissionRules) -> None:
    pool = small_pool(rules, 4)
    alice = funded(state)
    head = pool.add(sign(alice, 0, fee=1), state)  # cheapest, but not alice's last nonce
    pool.add(sign(alice, 1, fee=50), state)
    pool.add(sign(alice, 2, fee=50), state)
    bob_tx = pool.add(sign(funded(state), fee=10), state)

    pool.add(sign(funded(state), fee=20), state)
    assert pool.get(bob_tx.hash) is None
    assert pool.get(head.hash) is head

    pool.add(sign(funded(state), fee=60), state)  # evicts the fee-20 newcomer
    assert pool.pending_nonce(address(alice), state) == 3
    pool.add(sign(funded(state), fee=60), state)  # now alice's tail is the cheapest tail
    assert pool.pending_nonce(address(alice), state) == 2
    assert pool.get(head.hash) is head


def test_full_pool_never_evicts_own_sender(state: ChainState, rules: AdmissionRules) -> None:
    pool = small_pool(rules, 2)
    alice = funded(state)
    pool.add(sign(alice, 0, fee=1), state)
    pool.add(sign(alice, 1, fee=1), state)
    rejected(pool, sign(alice, 2, fee=100), state, errors.PoolFull)


def test_eviction_after_churn_finds_live_cheapest(state: ChainState, rules: AdmissionRules) -> None:
    """Replacements and removals leave stale heap entries; eviction still picks correctly."""
    pool = small_pool(rules, 40)
    senders = [funded(state) for _ in range(8)]
    txs = [
        [pool.add(sign(s, n, fee=10 + i), state) for n in range(5)] for i, s in enumerate(senders)
    ]
    pool.add(sign(senders[0], 4, fee=40), state)  # sender 0's tail is no longer cheapest
    pool.drop_invalid(txs[2][2].hash)  # sender 2's nonces 3 and 4 become queued

    first = pool.add(sign(funded(state), fee=100), state)  # room left: no eviction
    assert len(pool) == 40 and pool.removed["evicted"] == 0
    pool.add(sign(funded(state), fee=100), state)  # queued tails go first
    assert pool.get(txs[2][4].hash) is None
    pool.add(sign(funded(state), fee=100), state)
    assert pool.get(txs[2][3].hash) is None
    pool.add(sign(funded(state), fee=100), state)  # then the cheapest pending tail: sender 1's
    assert pool.get(txs[1][4].hash) is None
    assert pool.get(txs[0][0].hash) is txs[0][0] and pool.get(first.hash) is first
    assert pool.removed["evicted"] == 3 and len(pool) == 40


def test_eviction_heap_is_compacted(state: ChainState, rules: AdmissionRules) -> None:
    pool = TxPool(PoolConfig(max_transactions=1_101, max_per_sender=1_100), rules)
    alice, bob = funded(state), funded(state)
    bob_tx = pool.add(sign(bob, fee=1), state)
    for nonce in range(1_100):  # every add moves alice's tail: one heap entry each
        pool.add(sign(alice, nonce, fee=5), state)
    assert len(pool._pending_tails) + len(pool._queued_tails) < 1_100
    pool.add(sign(funded(state), fee=2), state)
    assert pool.get(bob_tx.hash) is None and len(pool) == 1_101


# --- select -------------------------------------------------------------------------------------


def test_select_orders_by_tip_then_arrival(state: ChainState, pool: TxPool) -> None:
    alice, bob, carol = (funded(state) for _ in range(3))
    a0 = pool.add(sign(alice, 0, fee=5), state)
    a1 = pool.add(sign(alice, 1, fee=50), state)  # high tip, but behind alice's cheap nonce 0
    b0 = pool.add(sign(bob, 0, fee=20), state)
    c0 = pool.add(sign(carol, 0, fee=5), state)  # same tip as a0, arrived later
    assert pool.select(GAS_LIMIT, 0) == [b0, a0, a1, c0]


def test_select_uses_effective_tip_and_skips_below_base_fee(
    state: ChainState, pool: TxPool
) -> None:
    alice, bob, carol = (funded(state) for _ in range(3))
    a = pool.add(sign(alice, fee=100, tip=2), state)  # effective tip at 90: 2
    b = pool.add(sign(bob, fee=95, tip=50), state)  # effective tip at 90: 5
    pool.add(sign(carol, fee=80, tip=80), state)  # cannot pay base fee 90
    assert pool.select(GAS_LIMIT, 90) == [b, a]
    assert len(pool.select(GAS_LIMIT, 0)) == 3


def test_select_offers_what_the_block_could_hold_by_gas_used(
    state: ChainState, pool: TxPool
) -> None:
    """The builder fills a block by the gas transactions use, so `select` does not stop where
    their declared gas adds up: it offers as many as a block could hold (limit // 21,000),
    leaving out only a sender whose next transaction declares more than a whole block."""
    alice, bob = funded(state), funded(state)
    a0 = pool.add(sign(alice, 0, fee=9, gas=50_000), state)
    a1 = pool.add(sign(alice, 1, fee=9, gas=50_000), state)
    b0 = pool.add(sign(bob, 0, fee=1), state)
    b1 = pool.add(sign(bob, 1, fee=1), state)
    assert pool.select(100_000, 0) == [a0, a1, b0, b1]
    assert pool.select(63_000, 0) == [a0, a1, b0]  # room for three of 21,000
    assert pool.select(49_999, 0) == [b0, b1]  # alice's next declares more than a block
    assert pool.select(21_000, 0) == [b0]
    assert pool.select(20_999, 0) == []


def test_select_does_not_change_the_pool(state: ChainState, pool: TxPool) -> None:
    pool.add(sign(funded(state)), state)
    pool.select(GAS_LIMIT, 0)
    assert len(pool.select(GAS_LIMIT, 0)) == 1


# --- new blocks and removal -------------------------------------------------------------------


def test_on_new_block_drops_included_and_promotes(state: ChainState, pool: TxPool) -> None:
    alice, bob = funded(state), funded(state)
    a = [pool.add(sign(alice, n), state) for n in (0, 1, 3)]  # 3 waits behind a gap
    b0 = pool.add(sign(bob, 0), state)
    announced: list[bytes] = []
    pool.on_pending.append(lambda ptx: announced.append(ptx.hash))

    # The block included alice 0 and 1 and a nonce-2 tx from elsewhere: her state nonce is 3.
    state.fund(alice, nonce=3)
    pool.on_new_block([a[0].hash, a[1].hash], state)

    assert pool.get(a[0].hash) is None and pool.get(a[1].hash) is None
    assert announced == [a[2].hash]
    assert pool.stats() == {"pending": 2, "queued": 0, "senders": 2, "total": 2}
    assert pool.pending_nonce(address(alice), state) == 4
    assert pool.select(GAS_LIMIT, 0) == [a[2], b0]
    assert pool.removed["included"] == 2


def test_on_new_block_with_peer_senders(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    stale = pool.add(sign(alice, 0), state)
    state.fund(alice, nonce=1)  # a peer's block used alice's nonce 0 with another tx
    pool.on_new_block([keccak(b"unknown tx")], state, senders=[address(alice)])
    assert pool.get(stale.hash) is None
    assert pool.removed["stale"] == 1


def test_on_new_block_drops_unaffordable(state: ChainState, pool: TxPool) -> None:
    alice = funded(state, balance=10**18)
    txs = [pool.add(sign(alice, n, fee=1, value=v), state) for n, v in enumerate((1, 10**17, 1))]
    state.fund(alice, balance=10**16, nonce=0)  # spent elsewhere (e.g. a contract call)
    pool.on_new_block([], state, senders=[address(alice)])
    assert pool.get(txs[1].hash) is None
    assert pool.get(txs[0].hash) is txs[0] and pool.get(txs[2].hash) is txs[2]
    assert pool.stats()["pending"] == 1 and pool.stats()["queued"] == 1
    assert pool.select(GAS_LIMIT, 0) == [txs[0]]


def test_drop_invalid_demotes_later_nonces(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    txs = [pool.add(sign(alice, n), state) for n in range(3)]
    assert pool.drop_invalid(txs[1].hash) is txs[1]
    assert pool.drop_invalid(txs[1].hash) is None
    assert pool.stats()["pending"] == 1 and pool.stats()["queued"] == 1
    assert pool.select(GAS_LIMIT, 0) == [txs[0]]
    assert pool.pending_nonce(address(alice), state) == 1

    announced: list[int] = []
    pool.on_pending.append(lambda ptx: announced.append(ptx.nonce))
    pool.add(sign(alice, 1, fee=11), state)
    assert announced == [1, 2]


def test_remove_counts_reason(state: ChainState, pool: TxPool) -> None:
    alice = funded(state)
    txs = [pool.add(sign(alice, n), state) for n in range(2)]
    assert pool.remove([txs[1].hash, keccak(b"nope")], "expired") == 1
    assert pool.removed["expired"] == 1
    assert pool.remove([txs[0].hash], "expired") == 1
    assert len(pool) == 0 and pool.stats()["senders"] == 0
    assert pool.pending_nonce(address(alice), state) == 0


def test_permissioned_pool_refuses_an_authorization_a_forbidden_account_signed(
    state: ChainState, rules: AdmissionRules
) -> None:
    """An authorization acts for its signer (its nonce moves, its code is set): on a
    permissioned chain the signer must be allowed, as a sender must."""
    alice, bob, stranger = funded(state), funded(state), funded(state)
    allowed = {address(alice), address(bob)}
    pool = TxPool(PoolConfig(), rules, sender_allowed=allowed.__contains__)
    foreign = stranger.sign_authorization({"chainId": CHAIN_ID, "address": TO, "nonce": 0})
    message = rejected(pool, set_code(alice, 0, [foreign]), state, errors.AuthorityNotPermitted)
    assert message == (
        "authorization signer not authorized to send transactions: " + stranger.address
    )
    own = bob.sign_authorization({"chainId": CHAIN_ID, "address": TO, "nonce": 0})
    assert pool.add(set_code(alice, 0, [own]), state).authorities == (address(bob),)
