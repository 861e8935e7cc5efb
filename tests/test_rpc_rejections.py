"""`eth_sendRawTransaction` refusals over real HTTP, with real signed transactions.

Every refusal must carry code -32000 and geth's wording (the node's messages are matched by
prefix, as wallets match them), and must leave no trace: the sender's nonce (latest and
pending) and balance are unchanged and the refused transaction is not retrievable by hash.

The node here is "frozen": its block period is an hour, so after the one block the fixture
mines (genesis has timestamp 0, so that block comes at once) no further block is produced.
Pooled transactions therefore stay pending for the whole module, which makes replacement,
"already known" and pending-nonce checks deterministic instead of racing the block timer.
Each test that pools transactions uses its own dev account.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
import rlp
from eth.constants import SECPK1_N
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_keys import keys
from eth_typing import Address
from eth_utils import to_checksum_address

from node.chain.evm.vm import TallyVM
from tests.conftest import NodeProcess, RpcFailure, free_port

CHAIN_ID = 1337
SINK = to_checksum_address("0x" + "5e" * 20)
GWEI = 10**9
SECP256K1_P = 2**256 - 2**32 - 977
MAX_TX_SIZE = 128 * 1024
MAX_NONCE_GAP = 1024

# Dev accounts by role: each test that leaves transactions in the pool owns one.
MINED = 0  # sent nonce 0 in the fixture's block 1; used for every stateless refusal
REPLACE_UNDERPRICED = 1
ALREADY_KNOWN = 2
REPLACE_OK = 3
PENDING_COUNT = 4
NONCE_GAP = 5
CONTROL = 6


class Rpc:
    """JSON-RPC over one kept-alive HTTP connection (a new connection per call costs ~30 ms)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def __call__(self, method: str, params: list | None = None) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        answer = self.http.post("/", json=body).json()
        if "error" in answer:
            raise RpcFailure(answer["error"])
        return answer["result"]


@pytest.fixture(scope="module")
def rpc(tmp_path_factory: pytest.TempPathFactory, dev_accounts: list) -> Iterator[Rpc]:
    """A dev node that mines exactly one block (dev account 0's nonce 0), then none."""
    datadir = tmp_path_factory.mktemp("frozen") / "node"
    frozen = NodeProcess(datadir, free_port(), free_port(), block_period=3600)
    frozen.start()
    client = Rpc(frozen.url)
    try:
        receipt = wait_receipt(client, send(client, transfer(dev_accounts[MINED], 0)))
        assert receipt["status"] == "0x1"
        assert receipt["blockNumber"] == "0x1"
        yield client
    finally:
        client.http.close()
        frozen.stop()


# --- building and sending -----------------------------------------------------------------------


def transfer(account: LocalAccount, nonce: int, **fields: Any) -> bytes:
    """A signed EIP-1559 transfer that the node accepts unless `fields` break it."""
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": SINK,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
    }
    tx.update(fields)
    return bytes(account.sign_transaction(tx).raw_transaction)


def legacy_transfer(account: LocalAccount, nonce: int, chain_id: int | None = CHAIN_ID) -> bytes:
    """A signed legacy transfer; `chain_id=None` signs it without EIP-155 protection."""
    tx: dict[str, Any] = {"nonce": nonce, "to": SINK, "value": 1, "gas": 21_000, "gasPrice": 0}
    if chain_id is not None:
        tx["chainId"] = chain_id
    return bytes(account.sign_transaction(tx).raw_transaction)


def with_signature(
    raw: bytes, *, v: int | None = None, r: int | None = None, s: int | None = None
) -> bytes:
    """`raw` (legacy or typed) with its v (y parity), r and/or s replaced, minimally encoded.

    Every kind ends with those three fields.
    """
    typed = raw[0] < 0xC0
    fields = rlp.decode(raw[1:] if typed else raw)
    for position, value in ((-3, v), (-2, r), (-1, s)):
        if value is not None:
            fields[position] = value
    return (raw[:1] if typed else b"") + rlp.encode(fields)


def flipped_r(raw: bytes, *, on_curve: bool) -> int:
    """`raw`'s r with some bits flipped, chosen so that a curve point with that x does or
    does not exist (x**3 + 7 is or is not a quadratic residue mod p).

    Off the curve, public-key recovery fails whatever the recovery id. On it, recovery yields
    some other key: the transaction is then validly signed by a stranger.
    """
    r = rlp.decode(raw[1:])[-2]
    for index in range(len(r)):
        for mask in (0x01, 0x02, 0x80, 0xFF):
            flipped = bytearray(r)
            flipped[index] ^= mask
            x = int.from_bytes(flipped, "big")
            residue = pow(x**3 + 7, (SECP256K1_P - 1) // 2, SECP256K1_P) == 1
            if 0 < x < SECPK1_N and residue == on_curve:
                return x
    raise AssertionError("no suitable flip found")


def send(rpc: Rpc, raw: bytes) -> str:
    result = rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
    assert isinstance(result, str)
    return result


def wait_receipt(rpc: Rpc, tx_hash: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        receipt = rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            assert isinstance(receipt, dict)
            return receipt
        time.sleep(0.05)
    raise TimeoutError(f"no receipt for {tx_hash}")


def tx_hash_of(raw: bytes) -> str:
    return "0x" + keccak(raw).hex()


# --- what must not change -----------------------------------------------------------------------


@dataclass(frozen=True)
class AccountView:
    latest_nonce: str
    pending_nonce: str
    balance: str
    head: str


def view(rpc: Rpc, address: str) -> AccountView:
    return AccountView(
        latest_nonce=rpc("eth_getTransactionCount", [address, "latest"]),
        pending_nonce=rpc("eth_getTransactionCount", [address, "pending"]),
        balance=rpc("eth_getBalance", [address, "latest"]),
        head=rpc("eth_blockNumber"),
    )


def refused(rpc: Rpc, raw: bytes, prefix: str, sender: str) -> str:
    """Send `raw`, expect -32000 starting with `prefix`, and check that nothing changed."""
    before = view(rpc, sender)
    with pytest.raises(RpcFailure) as failure:
        send(rpc, raw)
    assert failure.value.code == -32000, failure.value.error
    assert failure.value.message.startswith(prefix), failure.value.message
    assert view(rpc, sender) == before
    assert rpc("eth_getTransactionByHash", [tx_hash_of(raw)]) is None
    assert rpc("eth_getTransactionReceipt", [tx_hash_of(raw)]) is None
    return failure.value.message


# --- the tests ----------------------------------------------------------------------------------


def test_control_transfer_is_accepted(rpc: Rpc, dev_accounts: list) -> None:
    """The builder used below makes valid transactions: only the injected defect is refused."""
    account = dev_accounts[CONTROL]
    raw = transfer(account, 0)
    assert send(rpc, raw) == tx_hash_of(raw)
    pooled = rpc("eth_getTransactionByHash", [tx_hash_of(raw)])
    assert isinstance(pooled, dict)
    assert pooled["from"].lower() == account.address.lower()
    assert pooled["blockHash"] is None


@pytest.mark.parametrize(
    "make_raw",
    [
        pytest.param(lambda tx: bytes.fromhex("deadbeef") * 8, id="junk-bytes"),
        pytest.param(lambda tx: tx[:-5], id="truncated-typed"),
        pytest.param(lambda tx: tx + b"\x00", id="trailing-byte"),
        pytest.param(lambda tx: rlp.encode([b"\x01", b"\x02"]), id="list-not-a-tx"),
        pytest.param(lambda tx: b"\x02" + rlp.encode([1, 2, 3]), id="short-typed-list"),
        pytest.param(lambda tx: b"", id="empty"),
    ],
)
def test_bad_rlp(rpc: Rpc, dev_accounts: list, make_raw: Any) -> None:
    account = dev_accounts[MINED]
    raw = make_raw(transfer(account, 1))
    refused(rpc, raw, "invalid transaction: rlp:", account.address)


def test_truncated_legacy(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[MINED]
    raw = legacy_transfer(account, 1)[:30]
    refused(rpc, raw, "invalid transaction: rlp:", account.address)


def test_high_s_is_refused(rpc: Rpc, dev_accounts: list) -> None:
    """(r, n - s) with the other parity is the same signature mathematically; EIP-2 forbids it."""
    account = dev_accounts[MINED]
    raw = transfer(account, 1)
    y_parity, _, s = (int.from_bytes(field, "big") for field in rlp.decode(raw[1:])[-3:])
    high_s = with_signature(raw, v=1 - y_parity, s=SECPK1_N - s)
    message = refused(rpc, high_s, "invalid sender", account.address)
    assert message == "invalid sender: invalid transaction v, r, s values"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(
            lambda raw: with_signature(raw, r=flipped_r(raw, on_curve=False)), id="r-off-curve"
        ),
        pytest.param(lambda raw: with_signature(raw, r=0), id="r-zero"),
        pytest.param(lambda raw: with_signature(raw, r=SECPK1_N), id="r-equals-n"),
        pytest.param(lambda raw: with_signature(raw, s=0), id="s-zero"),
    ],
)
def test_bad_signature(rpc: Rpc, dev_accounts: list, mutate: Any) -> None:
    account = dev_accounts[MINED]
    refused(rpc, mutate(transfer(account, 1)), "invalid sender", account.address)


def test_tampered_signature_recovers_a_stranger(rpc: Rpc, dev_accounts: list) -> None:
    """A flipped r that still names a curve point recovers some other, unfunded key: the node
    sees a transfer from that stranger and refuses it for lack of funds, never charging the
    real signer."""
    account = dev_accounts[MINED]
    raw = with_signature(transfer(account, 1), r=flipped_r(transfer(account, 1), on_curve=True))
    message = refused(rpc, raw, "insufficient funds for gas * price + value", account.address)
    assert account.address not in message
    assert message.endswith("have 0 want 1"), message


def test_unprotected_legacy(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[MINED]
    raw = legacy_transfer(account, 1, chain_id=None)
    assert rlp.decode(raw)[6] in (b"\x1b", b"\x1c")  # v = 27/28: no chain id
    message = refused(rpc, raw, "only replay-protected (EIP-155) transactions", account.address)
    assert message == "only replay-protected (EIP-155) transactions allowed over RPC"


@pytest.mark.parametrize("kind", ["eip1559", "legacy-eip155"])
def test_wrong_chain_id(rpc: Rpc, dev_accounts: list, kind: str) -> None:
    """Worded as geth does: "invalid sender: invalid chain id for signer: have 1 want 1337"."""
    account = dev_accounts[MINED]
    if kind == "eip1559":
        raw = transfer(account, 1, chainId=1)
    else:
        raw = legacy_transfer(account, 1, chain_id=1)
    message = refused(rpc, raw, "invalid sender: invalid chain id for signer", account.address)
    assert message.endswith("have 1 want 1337"), message


def test_unsupported_blob_type(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[MINED]
    raw = b"\x03" + transfer(account, 1)[1:]
    message = refused(rpc, raw, "transaction type not supported", account.address)
    assert message == "transaction type not supported: type 0x03"


def test_set_code_without_authorizations_and_blob_types(rpc: Rpc, dev_accounts: list) -> None:
    """EIP-7702 transactions are accepted (tests/test_set_code.py), but not one without an
    authorization (geth's words); blob transactions (0x03) are not accepted at all."""
    account = dev_accounts[MINED]
    # TallyVM is a Prague VM; py-evm types get_transaction_builder with the base API.
    builder = cast(type[PragueTransactionBuilder], TallyVM.get_transaction_builder())
    unsigned = builder.new_unsigned_set_code_transaction(
        CHAIN_ID, 1, 0, 0, 100_000, Address(bytes.fromhex(SINK[2:])), 0, b"", [], []
    )
    raw = unsigned.as_signed_transaction(keys.PrivateKey(bytes(account.key))).encode()
    assert raw[0] == 0x04
    message = refused(rpc, raw, "set code tx", account.address)
    assert message == "set code tx must have at least one authorization tuple"
    blob = b"\x03" + rlp.encode(
        [CHAIN_ID, 1, 0, 0, 21_000, b"\x11" * 20, 0, b"", [], 1, [], 0, 1, 1]
    )
    message = refused(rpc, blob, "transaction type not supported", account.address)
    assert message == "transaction type not supported: type 0x03"


def test_nonce_too_low(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[MINED]
    assert rpc("eth_getTransactionCount", [account.address, "latest"]) == "0x1"
    raw = transfer(account, 0, value=2)  # not the mined one: a different transaction
    message = refused(rpc, raw, "nonce too low", account.address)
    assert message == "nonce too low: next nonce 1, tx nonce 0"


def test_nonce_too_high_beyond_gap(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[NONCE_GAP]
    message = refused(rpc, transfer(account, MAX_NONCE_GAP + 1), "nonce too high", account.address)
    assert f"tx: {MAX_NONCE_GAP + 1} next: 0, max gap: {MAX_NONCE_GAP}" in message
    # the last nonce inside the gap is held (queued), and does not count as pending
    at_edge = transfer(account, MAX_NONCE_GAP)
    assert send(rpc, at_edge) == tx_hash_of(at_edge)
    assert rpc("eth_getTransactionCount", [account.address, "pending"]) == "0x0"


def test_gas_below_intrinsic(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[MINED]
    message = refused(
        rpc, transfer(account, 1, gas=20_000), "intrinsic gas too low", account.address
    )
    assert message == "intrinsic gas too low: have 20000, want 21000"


def test_gas_above_block_limit(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[MINED]
    latest = rpc("eth_getBlockByNumber", ["latest", False])
    assert isinstance(latest, dict)
    limit = int(latest["gasLimit"], 16)
    raw = transfer(account, 1, gas=limit + 1)
    message = refused(rpc, raw, "exceeds block gas limit", account.address)
    assert message == f"exceeds block gas limit: tx gas {limit + 1}, block gas limit {limit}"


def test_insufficient_funds_unfunded_key(rpc: Rpc) -> None:
    stranger = Account.create()
    raw = transfer(stranger, 0, value=1)
    message = refused(rpc, raw, "insufficient funds for gas * price + value", stranger.address)
    assert message.endswith(f"address {stranger.address} have 0 want 1"), message


def test_insufficient_funds_value_above_balance(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[MINED]
    balance = int(rpc("eth_getBalance", [account.address, "latest"]), 16)
    raw = transfer(account, 1, value=balance + 1)
    message = refused(rpc, raw, "insufficient funds for gas * price + value", account.address)
    assert message.endswith(f"have {balance} want {balance + 1}"), message


def test_oversize_transaction(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[MINED]
    raw = transfer(account, 1, data=b"\x01" * MAX_TX_SIZE, gas=10_000_000)
    assert len(raw) > MAX_TX_SIZE
    message = refused(rpc, raw, "oversized data", account.address)
    assert message == f"oversized data: transaction size {len(raw)}, limit {MAX_TX_SIZE}"


def test_max_priority_fee_above_max_fee(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[MINED]
    raw = transfer(account, 1, maxFeePerGas=GWEI, maxPriorityFeePerGas=GWEI + 1)
    message = refused(
        rpc, raw, "max priority fee per gas higher than max fee per gas", account.address
    )
    assert f"maxPriorityFeePerGas: {GWEI + 1}, maxFeePerGas: {GWEI}" in message


@pytest.mark.parametrize("nonce", [pytest.param(5, id="queued"), pytest.param(0, id="pending")])
def test_underpriced_replacement(rpc: Rpc, dev_accounts: list, nonce: int) -> None:
    """A pooled transaction is only replaced by one paying 10% more on both fee caps."""
    account = dev_accounts[REPLACE_UNDERPRICED]
    fees = {"maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": GWEI}
    original = transfer(account, nonce, **fees)
    assert send(rpc, original) == tx_hash_of(original)
    attempts = [
        transfer(account, nonce, value=2, **fees),  # same fees
        transfer(account, nonce, value=2, maxFeePerGas=9 * GWEI, maxPriorityFeePerGas=1),
        transfer(  # fee cap +10%, tip only +9%
            account, nonce, value=2, maxFeePerGas=11 * GWEI, maxPriorityFeePerGas=GWEI * 109 // 100
        ),
    ]
    for raw in attempts:
        message = refused(rpc, raw, "replacement transaction underpriced", account.address)
        assert f"need {11 * GWEI}" in message, message
    pooled = rpc("eth_getTransactionByHash", [tx_hash_of(original)])
    assert isinstance(pooled, dict)
    assert (pooled["nonce"], pooled["value"]) == (hex(nonce), "0x1")


def test_replacement_with_ten_percent_bump_is_accepted(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[REPLACE_OK]
    original = transfer(account, 0, maxFeePerGas=10 * GWEI, maxPriorityFeePerGas=GWEI)
    assert send(rpc, original) == tx_hash_of(original)
    assert rpc("eth_getTransactionCount", [account.address, "pending"]) == "0x1"
    bumped = transfer(
        account, 0, value=7, maxFeePerGas=11 * GWEI, maxPriorityFeePerGas=GWEI * 11 // 10
    )
    assert send(rpc, bumped) == tx_hash_of(bumped)
    assert rpc("eth_getTransactionByHash", [tx_hash_of(original)]) is None
    pooled = rpc("eth_getTransactionByHash", [tx_hash_of(bumped)])
    assert isinstance(pooled, dict)
    assert (pooled["nonce"], pooled["value"], pooled["maxFeePerGas"]) == (
        "0x0",
        "0x7",
        hex(11 * GWEI),
    )
    assert pooled["blockHash"] is None
    assert rpc("eth_getTransactionCount", [account.address, "pending"]) == "0x1"
    assert rpc("eth_getTransactionCount", [account.address, "latest"]) == "0x0"


def test_already_known(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[ALREADY_KNOWN]
    raw = transfer(account, 0)
    assert send(rpc, raw) == tx_hash_of(raw)
    before = view(rpc, account.address)
    with pytest.raises(RpcFailure) as failure:
        send(rpc, raw)
    assert (failure.value.code, failure.value.message) == (-32000, "already known")
    assert view(rpc, account.address) == before
    pooled = rpc("eth_getTransactionByHash", [tx_hash_of(raw)])
    assert isinstance(pooled, dict)
    assert pooled["hash"] == tx_hash_of(raw)


def test_pending_nonce_counts_pooled_transactions(rpc: Rpc, dev_accounts: list) -> None:
    account = dev_accounts[PENDING_COUNT]

    def counts() -> tuple[object, object]:
        return (
            rpc("eth_getTransactionCount", [account.address, "latest"]),
            rpc("eth_getTransactionCount", [account.address, "pending"]),
        )

    assert counts() == ("0x0", "0x0")
    for nonce in range(3):
        send(rpc, transfer(account, nonce))
    assert counts() == ("0x0", "0x3")
    send(rpc, transfer(account, 5))  # queued behind a gap: not pending
    assert counts() == ("0x0", "0x3")
    send(rpc, transfer(account, 3))
    send(rpc, transfer(account, 4))  # fills the gap: 0..5 are all pending now
    assert counts() == ("0x0", "0x6")
