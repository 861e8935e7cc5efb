"""The wallet: pay, read balances and history, wait for finality, from one key in one store.

A `Wallet` is the SDK's front door. Every payment takes the same path, in this order:

1. the spending policy approves it (`client.policy`), holding the amount against the day's
   limit; a refusal raises before anything else happens, so the key store is never asked;
2. gas is estimated and fees read from the node (Tally may run at gas price zero);
3. under the account's nonce lock: the next nonce is taken, the transaction signed by the key
   store (only the digest goes in) and sent; the nonce advances only if the node accepted it, so
   concurrent sends from one account get consecutive nonces and a refused send leaves no gap;
4. the policy commits the amount; optionally the wallet waits until the transaction's block is
   final (QBFT finality is immediate: final as soon as it is in a block the node calls
   `finalized`), raising `FinalityTimeout` after the deadline and `TransactionFailed` on revert.

Errors from the node are the typed ones of `client.errors` (see `client.rpc`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from eth_utils import event_signature_to_log_topic, to_checksum_address
from web3 import Web3

from client.errors import FinalityTimeout, NodeError, NonceTooLow, TransactionFailed
from client.policy import NATIVE, Payment, SpendingPolicy, asset_key
from client.rpc import DEFAULT_RPC_URL, connect, request
from client.signing import SignedTransaction, sign_authorization, sign_transaction
from client.tls import ClientTls
from tally_common.keystore.base import KeyStore

TxType = Literal["legacy", "access-list", "eip1559"]
TRANSFER_TOPIC = "0x" + event_signature_to_log_topic("Transfer(address,address,uint256)").hex()
PLAIN_TRANSFER_GAS = 21_000
ESTIMATE_HEADROOM = 20_000
"""Gas added to an estimate (with a tenth of it): an estimate is exact for the state it ran on,
and that state can change before the transaction's block. A storage word another transaction
set back to zero costs 20,000 to set again instead of 2,900 (a withdrawal requested while the
previous one is burned ran out of gas so). Unused gas is not charged."""


@dataclass(frozen=True)
class Receipt:
    """The parts of a receipt a payer needs; `raw` keeps the node's full answer."""

    tx_hash: str
    block_number: int
    block_hash: str
    status: int
    gas_used: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_rpc(cls, raw: dict[str, Any]) -> Receipt:
        return cls(
            raw["transactionHash"],
            int(raw["blockNumber"], 16),
            raw["blockHash"],
            int(raw["status"], 16),
            int(raw["gasUsed"], 16),
            raw,
        )


@dataclass(frozen=True)
class Submitted:
    """A transaction the node accepted; `receipt` is set when the wallet waited for it."""

    tx_hash: str
    nonce: int
    sender: str
    receipt: Receipt | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One movement of value to or from the wallet's address."""

    block_number: int
    tx_hash: str
    asset: str
    direction: Literal["in", "out", "self"]
    counterparty: str
    amount: int


class NonceManager:
    """Local nonces for one account, safe for concurrent senders.

    The first use reads the node's pending count; afterwards nonces are handed out locally, so
    many threads can send without a round trip each and without colliding. Whoever holds
    `reserve()` has the next nonce until it reports success; anything unexpected (a transport
    error might have delivered the transaction after all) makes the next user re-read the node.
    """

    def __init__(self, fetch: Callable[[], int]) -> None:
        self._fetch = fetch
        self._lock = threading.Lock()
        self._next: int | None = None

    @contextmanager
    def reserve(self) -> Iterator[NonceSlot]:
        with self._lock:
            if self._next is None:
                self._next = self._fetch()
            slot = NonceSlot(self._next)
            try:
                yield slot
            except BaseException:
                self._next = None
                raise
            if slot.used:
                self._next = slot.nonce + 1
            else:
                self._next = None

    def forget(self) -> None:
        """Re-read the node's pending count next time (another client used the account)."""
        with self._lock:
            self._next = None


@dataclass
class NonceSlot:
    """The nonce being used under `NonceManager.reserve`; `resync` reads the node again."""

    nonce: int
    used: bool = False


class Wallet:
    """One key (`label` in `store`) paying on one Tally node under one spending policy."""

    def __init__(
        self,
        store: KeyStore,
        label: str,
        rpc: str | Web3 = DEFAULT_RPC_URL,
        policy: SpendingPolicy | None = None,
        tx_type: TxType = "eip1559",
        tls: ClientTls | None = None,
    ) -> None:
        self.store = store
        self.label = label
        self.w3 = connect(rpc, tls=tls)
        self.policy = policy or SpendingPolicy.unrestricted()
        self.tx_type = tx_type
        self.address = store.address(label)
        self._chain_id: int | None = None
        self.nonces = NonceManager(self._pending_nonce)

    def __repr__(self) -> str:
        return f"Wallet({self.address}, store={self.store!r})"

    def rpc(self, method: str, *params: Any, abi: Any = ()) -> Any:
        """A raw JSON-RPC call with the SDK's typed errors."""
        return request(self.w3, method, list(params), abi)

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.rpc("eth_chainId"), 16)
        return self._chain_id

    def _pending_nonce(self) -> int:
        return int(self.rpc("eth_getTransactionCount", self.address, "pending"), 16)

    # --- reading -----------------------------------------------------------------------------

    def balance(self, token: str | None = None, address: str | None = None) -> int:
        """Balance in the smallest unit: wei, or the token's base unit when `token` is given."""
        owner = to_checksum_address(address or self.address)
        if token is None:
            return int(self.rpc("eth_getBalance", owner, "latest"), 16)
        return self.token(token).balance_of(owner)

    def token(self, address: str) -> Any:
        """An ERC-20 bound to this wallet (`client.tokens.Erc20`)."""
        from client.tokens import Erc20

        return Erc20(self, address)

    def wallet_token(self, address: str) -> Any:
        """The bank's wallet token (needs the `WalletToken` artifact of the contracts work)."""
        from client.tokens import WalletToken

        return WalletToken(self, address)

    # --- fees and gas ------------------------------------------------------------------------

    def estimate_gas(self, tx: dict[str, Any], abi: Any = ()) -> int:
        """`eth_estimateGas` from this account; a revert raises `ExecutionReverted` with the
        reason decoded against `abi`."""
        call = {"from": self.address, **_hex_fields(tx)}
        return int(self.rpc("eth_estimateGas", call, abi=abi), 16)

    def _padded(self, estimate: int) -> int:
        """`estimate` with `ESTIMATE_HEADROOM`, never past the block gas limit."""
        padded = estimate + estimate // 10 + ESTIMATE_HEADROOM
        if padded > 1_000_000:  # only a large one can reach the limit: ask for it then
            block = self.rpc("eth_getBlockByNumber", "latest", False)
            padded = max(estimate, min(padded, int(block["gasLimit"], 16)))
        return padded

    def fees(self) -> dict[str, int]:
        """Fee fields for this wallet's transaction type, from the node's own suggestion."""
        if self.tx_type == "eip1559":
            block = self.rpc("eth_getBlockByNumber", "latest", False)
            base = int(block.get("baseFeePerGas") or "0x0", 16)
            try:
                tip = int(self.rpc("eth_maxPriorityFeePerGas"), 16)
            except NodeError:
                tip = 0
            return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}
        return {"gasPrice": int(self.rpc("eth_gasPrice"), 16)}

    def _dynamic_fees(self) -> dict[str, int]:
        """EIP-1559 fee fields whatever `tx_type` is: a set-code transaction has no gas price."""
        if self.tx_type == "eip1559":
            return self.fees()
        price = int(self.rpc("eth_gasPrice"), 16)
        return {"maxFeePerGas": price, "maxPriorityFeePerGas": price}

    # --- sending -----------------------------------------------------------------------------

    def authorize(
        self, delegate: str, *, nonce: int | None = None, sends: bool = False
    ) -> dict[str, Any]:
        """An EIP-7702 authorization, signed in the key store, letting this account run
        `delegate`'s code (`send(..., authorizations=[...])` carries it; any wallet may).

        `nonce` defaults to the account's pending nonce, plus one when `sends` says this same
        wallet sends the carrying transaction (its nonce is used first). Bound to this chain.
        """
        if nonce is None:
            nonce = self._pending_nonce() + (1 if sends else 0)
        return sign_authorization(self.store, self.label, self.chain_id, delegate, nonce)

    def send(
        self,
        to: str | None,
        value: int = 0,
        data: bytes = b"",
        *,
        payment: Payment | None = None,
        totp: str | None = None,
        gas: int | None = None,
        abi: Any = (),
        wait: bool = True,
        timeout: float = 30.0,
        on_wait: Callable[[float], None] | None = None,
        authorizations: list[dict[str, Any]] | None = None,
    ) -> Submitted:
        """Approve, sign and send one transaction; the lower-level door every payment uses.

        `payment` is what the policy judges (for a token transfer: the token, the recipient and
        the token amount); by default it is the native `value` to `to`. `authorizations`
        (from `authorize`) make it an EIP-7702 set-code transaction (type 4).
        """
        if payment is None:
            payment = Payment(NATIVE, to or "0x" + "00" * 20, value)
        reservation = self.policy.approve(payment, totp)
        try:
            tx: dict[str, Any] = {"value": value, "data": data, "chainId": self.chain_id}
            if to is not None:
                tx["to"] = to_checksum_address(to)
            if authorizations:
                tx["authorizationList"] = authorizations
            if gas is None:
                gas = self._padded(self.estimate_gas(tx, abi))
            tx["gas"] = gas
            tx.update(self.fees() if not authorizations else self._dynamic_fees())
            if self.tx_type == "access-list" and not authorizations:
                tx["accessList"] = []
            signed = self._sign_and_send(tx)
        except BaseException:
            reservation.cancel()
            raise
        reservation.commit()
        submitted = Submitted(signed.hash_hex, signed.nonce, signed.sender)
        if wait:
            receipt = self.wait_for_finality(submitted.tx_hash, timeout, on_wait=on_wait)
            submitted = Submitted(submitted.tx_hash, submitted.nonce, submitted.sender, receipt)
        return submitted

    def _sign_and_send(self, tx: dict[str, Any]) -> SignedTransaction:
        for attempt in (1, 2):
            with self.nonces.reserve() as slot:
                signed = sign_transaction(self.store, self.label, {**tx, "nonce": slot.nonce})
                try:
                    self.rpc("eth_sendRawTransaction", "0x" + signed.raw.hex())
                except NonceTooLow:
                    if attempt == 2:
                        raise
                    continue  # someone else used the account: the slot re-reads the node
                slot.used = True
                return signed
        raise AssertionError("unreachable")

    def transfer(
        self,
        to: str,
        amount: int,
        *,
        totp: str | None = None,
        wait: bool = True,
        timeout: float = 30.0,
        on_wait: Callable[[float], None] | None = None,
    ) -> Submitted:
        """Send `amount` wei to `to`."""
        gas = PLAIN_TRANSFER_GAS if not self._has_code(to) else None
        return self.send(
            to, amount, totp=totp, gas=gas, wait=wait, timeout=timeout, on_wait=on_wait
        )

    def pay_token(
        self,
        token: str,
        to: str,
        amount: int,
        *,
        totp: str | None = None,
        wait: bool = True,
        timeout: float = 30.0,
        on_wait: Callable[[float], None] | None = None,
    ) -> Submitted:
        """Send `amount` base units of the ERC-20 at `token` to `to`."""
        return self.token(token).transfer(
            to, amount, totp=totp, wait=wait, timeout=timeout, on_wait=on_wait
        )

    def _has_code(self, address: str) -> bool:
        return self.rpc("eth_getCode", to_checksum_address(address), "latest") not in ("0x", None)

    # --- finality ----------------------------------------------------------------------------

    def wait_for_finality(
        self,
        tx_hash: str,
        timeout: float = 30.0,
        poll: float = 0.1,
        on_wait: Callable[[float], None] | None = None,
    ) -> Receipt:
        """The receipt once its block is final; `on_wait(elapsed)` is called at every poll."""
        start = time.monotonic()
        while True:
            raw = self.rpc("eth_getTransactionReceipt", tx_hash)
            if raw is not None:
                receipt = Receipt.from_rpc(raw)
                final = self.rpc("eth_getBlockByNumber", "finalized", False)
                if final is not None and int(final["number"], 16) >= receipt.block_number:
                    if receipt.status != 1:
                        raise TransactionFailed(tx_hash, receipt.block_number)
                    return receipt
            elapsed = time.monotonic() - start
            if elapsed >= timeout:
                raise FinalityTimeout(tx_hash, timeout)
            if on_wait is not None:
                on_wait(elapsed)
            time.sleep(min(poll, max(0.0, timeout - elapsed)))

    # --- history -----------------------------------------------------------------------------

    def history(
        self, from_block: int | None = None, to_block: int | None = None, lookback: int = 256
    ) -> list[HistoryEntry]:
        """Native transfers and ERC-20 `Transfer` events to or from this address, oldest first.

        Reads blocks and `eth_getLogs` over JSON-RPC, so it works against any node; without
        `from_block` it covers the last `lookback` blocks.
        """
        head = int(self.rpc("eth_blockNumber"), 16)
        last = head if to_block is None else min(to_block, head)
        first = max(0, last - lookback + 1) if from_block is None else from_block
        me = self.address
        entries: list[tuple[int, int, HistoryEntry]] = []
        for number in range(first, last + 1):
            block = self.rpc("eth_getBlockByNumber", hex(number), True)
            for index, tx in enumerate(block["transactions"]):
                value = int(tx["value"], 16)
                sender = to_checksum_address(tx["from"])
                recipient = to_checksum_address(tx["to"]) if tx.get("to") else None
                if value == 0 or me not in (sender, recipient):
                    continue
                direction, other = _direction(me, sender, recipient or sender)
                entries.append(
                    (
                        number,
                        index,
                        HistoryEntry(number, tx["hash"], NATIVE, direction, other, value),
                    )
                )
        mine = "0x" + "00" * 12 + me[2:].lower()
        seen: set[tuple[str, int]] = set()
        for topics in ([TRANSFER_TOPIC, mine], [TRANSFER_TOPIC, None, mine]):
            logs = self.rpc(
                "eth_getLogs", {"fromBlock": hex(first), "toBlock": hex(last), "topics": topics}
            )
            for log in logs:
                key = (log["transactionHash"], int(log["logIndex"], 16))
                if len(log["topics"]) != 3 or key in seen:
                    continue  # ERC-721 Transfer has a fourth topic; self-transfers match twice
                seen.add(key)
                sender = to_checksum_address("0x" + log["topics"][1][-40:])
                recipient = to_checksum_address("0x" + log["topics"][2][-40:])
                direction, other = _direction(me, sender, recipient)
                number = int(log["blockNumber"], 16)
                entry = HistoryEntry(
                    number,
                    log["transactionHash"],
                    asset_key(log["address"]),
                    direction,
                    other,
                    int(log["data"], 16) if log["data"] not in ("0x", "") else 0,
                )
                entries.append((number, 1_000_000 + key[1], entry))
        return [entry for _, _, entry in sorted(entries, key=lambda item: item[:2])]


def _direction(me: str, sender: str, recipient: str) -> tuple[Literal["in", "out", "self"], str]:
    if sender == recipient:
        return "self", me
    return ("out", recipient) if sender == me else ("in", sender)


def _hex_fields(tx: dict[str, Any]) -> dict[str, Any]:
    """A transaction dict as JSON-RPC wants it: quantities and data in hex."""
    out: dict[str, Any] = {}
    for key, value in tx.items():
        if key in ("chainId", "nonce", "gas", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"):
            continue
        if key == "authorizationList":
            out[key] = [
                {k: hex(v) if isinstance(v, int) else v for k, v in entry.items()}
                for entry in value
            ]
        elif isinstance(value, int):
            out[key] = hex(value)
        elif isinstance(value, bytes | bytearray):
            out[key] = "0x" + bytes(value).hex()
        else:
            out[key] = value
    return out
