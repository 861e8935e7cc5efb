"""The `eth_`, `net_` and `web3_` JSON-RPC namespaces over the chain, pool and call executor.

Handlers parse their params (`node.rpc.params`), read through `node.query.ChainReader` (the
read side REST shares), and shape answers with `node.rpc.views`; they never write the store.
Transactions enter only through `node.query.relay` into the pool, so `eth_sendRawTransaction`
refusals carry the pool's reason with code -32000; a batch of them has their stateless checks
and sender recovery started in worker processes before the first is admitted (`relay.prepare`).
`eth_call` and `eth_estimateGas` parse and pick their block here, on the loop, and execute on
`node.query.callpool`'s threads, under its timeout and gas cap.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import eth_abi
from eth.abc import BlockHeaderAPI, ComputationAPI
from eth.exceptions import Revert
from eth.vm.forks.cancun.constants import MIN_BLOB_BASE_FEE
from eth.vm.forks.cancun.state import fake_exponential
from eth.vm.forks.prague.constants import BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE
from eth_hash.auto import keccak
from eth_typing import Address

from node import __version__
from node.chain.calls import (
    CallError,
    CallExecutor,
)
from node.chain.chain import Chain
from node.chain.vm import prague_header
from node.qbftheader.hashing import onchain_hash
from node.query.callpool import CallPool
from node.query.reader import ChainReader
from node.query.relay import Relay
from node.rpc import params as p
from node.rpc import views
from node.rpc.callparams import call_request, state_overrides
from node.rpc.dispatch import rpc_batch, rpc_method
from node.rpc.errors import ExecutionReverted, InvalidParams, RpcError, ServerError
from node.txpool.errors import TxPoolError
from node.txpool.pool import TxPool
from node.txpool.prechecks import Prechecks

MAX_STORAGE_VALUES = 1024
"""Slots one `eth_getStorageValues` may read (geth caps it at 1,024 too)."""
_ERROR_SELECTOR = bytes.fromhex("08c379a0")
_PANIC_SELECTOR = bytes.fromhex("4e487b71")


class BlockResolver:
    """Turns block params (tags, numbers, EIP-1898 objects) into headers."""

    def __init__(self, chain: Chain) -> None:
        self.reader = ChainReader(chain)

    def header(self, tag: Any) -> BlockHeaderAPI:
        """The header a state-reading method runs against; unknown blocks are an error."""
        header = self.find(p.block_tag(tag))
        if header is None:
            raise ServerError("header not found")
        return header

    def find(self, which: str | int | bytes) -> BlockHeaderAPI | None:
        return self.reader.block(which)


class EthApi:
    """Standard Ethereum methods; Tally has immediate finality, so safe = finalized = latest."""

    def __init__(
        self,
        chain: Chain,
        pool: TxPool,
        calls: CallExecutor,
        call_pool: CallPool,
        prechecks: Prechecks | None = None,
    ) -> None:
        self.chain = chain
        self.pool = pool
        self.calls = calls
        self.call_pool = call_pool
        self.blocks = BlockResolver(chain)
        self.reader = self.blocks.reader
        self.relay = Relay(chain, pool, prechecks)

    # web3_ / net_
    @rpc_method("web3_clientVersion")
    def client_version(self) -> str:
        return f"Tally/v{__version__}/python/py-evm"

    @rpc_method("web3_sha3", 1)
    def sha3(self, value: Any) -> str:
        return views.hexd(keccak(p.data(value)))

    @rpc_method("net_version")
    def net_version(self) -> str:
        return str(self.chain.chain_id)

    @rpc_method("net_listening")
    def net_listening(self) -> bool:
        return True

    @rpc_method("net_peerCount")
    def net_peer_count(self) -> str:
        return "0x0"

    # chain facts
    @rpc_method("eth_chainId")
    def chain_id(self) -> str:
        return views.hexq(self.chain.chain_id)

    @rpc_method("eth_syncing")
    def syncing(self) -> bool:
        return False

    @rpc_method("eth_blockNumber")
    def block_number(self) -> str:
        return views.hexq(self.reader.head().number)

    @rpc_method("eth_accounts")
    def accounts(self) -> list[str]:
        return []

    @rpc_method("eth_gasPrice")
    def gas_price(self) -> str:
        base_fee = prague_header(self.chain.head).base_fee_per_gas
        return views.hexq(base_fee + self.pool.config.min_gas_price)

    @rpc_method("eth_maxPriorityFeePerGas")
    def max_priority_fee(self) -> str:
        return views.hexq(self.pool.config.min_gas_price)

    # state
    @rpc_method("eth_getBalance", 1, 2)
    def get_balance(self, address: Any, block: Any) -> str:
        account = Address(p.address(address))
        return views.hexq(self.chain.state_at(self.blocks.header(block)).get_balance(account))

    @rpc_method("eth_getTransactionCount", 1, 2)
    def get_transaction_count(self, address: Any, block: Any) -> str:
        account = Address(p.address(address))
        if block == "pending":
            state = self.chain.state_at(self.blocks.header("latest"))
            return views.hexq(self.pool.pending_nonce(account, state))
        return views.hexq(self.chain.state_at(self.blocks.header(block)).get_nonce(account))

    @rpc_method("eth_getCode", 1, 2)
    def get_code(self, address: Any, block: Any) -> str:
        account = Address(p.address(address))
        return views.hexd(self.chain.state_at(self.blocks.header(block)).get_code(account))

    @rpc_method("eth_getStorageAt", 2, 3)
    def get_storage_at(self, address: Any, slot: Any, block: Any) -> str:
        account = Address(p.address(address))
        position = _storage_slot(slot)
        value = self.chain.state_at(self.blocks.header(block)).get_storage(account, position)
        return views.hexd(value.to_bytes(32, "big"))

    @rpc_method("eth_getStorageValues", 1, 2)
    def get_storage_values(self, requests: Any, block: Any) -> dict[str, list[str]]:
        """execution-apis' batch read: {address: [slots]} -> {address: [values]}, one state
        (addresses answered in lowercase hex, as geth marshals them)."""
        if not isinstance(requests, dict):
            raise InvalidParams("invalid argument 0: expected an object of address to slots")
        if not requests:
            raise InvalidParams("empty request")  # execution-apis' wording
        wanted = []
        for address, slots in requests.items():
            if not isinstance(slots, list):
                raise InvalidParams("invalid argument 0: slots must be an array")
            account = p.address(address)
            wanted.append((views.hexd(account), account, [_storage_slot(s) for s in slots]))
        if sum(len(slots) for _, _, slots in wanted) > MAX_STORAGE_VALUES:
            raise InvalidParams(f"too many slots requested (limit {MAX_STORAGE_VALUES})")
        state = self.chain.state_at(self.blocks.header(block))
        return {
            name: [
                views.hexd(state.get_storage(Address(account), slot).to_bytes(32, "big"))
                for slot in slots
            ]
            for name, account, slots in wanted
        }

    # execution
    @rpc_method("eth_call", 1, 3)
    async def call(self, request: Any, block: Any, overrides: Any) -> str:
        header = self.blocks.header(block)
        message, state = call_request(request), state_overrides(overrides)
        try:
            computation = await self.call_pool.run(
                lambda limits: self.calls.call(message, header, state, limits=limits)
            )
        except CallError as exc:
            raise ServerError(str(exc)) from exc
        _raise_if_failed(computation)
        return views.hexd(computation.output)

    @rpc_method("eth_createAccessList", 1, 3)
    async def create_access_list(self, request: Any, block: Any, overrides: Any) -> dict[str, Any]:
        """geth's semantics: the list a transaction like `request` should carry, the gas it
        then uses, and `error` when it fails with it (a failure is an answer, not an error)."""
        header = self.blocks.header(block)
        message, state = call_request(request), state_overrides(overrides)
        try:
            found = await self.call_pool.run(
                lambda limits: self.calls.create_access_list(message, header, state, limits=limits)
            )
        except CallError as exc:
            raise ServerError(f"failed to apply transaction: {exc}") from exc
        answer: dict[str, Any] = {
            "accessList": views.access_list_json(found.access_list),
            "gasUsed": views.hexq(found.gas_used),
        }
        if found.error is not None:
            answer["error"] = found.error
        return answer

    @rpc_method("eth_estimateGas", 1, 3)
    async def estimate_gas(self, request: Any, block: Any, overrides: Any) -> str:
        header = self.blocks.header(block)
        message, state = call_request(request), state_overrides(overrides)
        try:
            outcome = await self.call_pool.run(
                lambda limits: self.calls.estimate_gas(message, header, state, limits=limits)
            )
        except CallError as exc:
            raise ServerError(str(exc)) from exc
        if not isinstance(outcome, int):
            _raise_if_failed(outcome)
            raise ServerError("gas required exceeds allowance")
        return views.hexq(outcome)

    # transactions
    @rpc_method("eth_sendRawTransaction", 1)
    async def send_raw_transaction(self, raw: Any) -> str:
        payload = p.data(raw, "transaction")
        try:
            pooled = await self.relay.submit_prepared(payload)
        except TxPoolError as exc:
            raise ServerError(str(exc)) from exc
        return views.hexd(pooled.hash)

    @rpc_batch("eth_sendRawTransaction")
    @contextmanager
    def prepare_raw_transactions(self, calls: list[Any]) -> Iterator[None]:
        """A batch's raw transactions, checked in worker processes while it runs; params
        that do not parse are left for the handler to refuse."""
        raws = []
        for params in calls:
            if isinstance(params, list) and len(params) == 1:
                with suppress(RpcError):
                    raws.append(p.data(params[0], "transaction"))
        started = self.relay.prepare(raws)
        try:
            yield
        finally:
            self.relay.release(started)

    @rpc_method("eth_getTransactionByHash", 1)
    def get_transaction_by_hash(self, tx_hash: Any) -> dict[str, Any] | None:
        key = p.hash32(tx_hash)
        record = self.reader.transaction(key)
        if record is not None:
            header = self.reader.header_by_hash(record.block_hash)
            base_fee = header.base_fee_per_gas if header is not None else 0
            return views.mined_transaction_json(key, record, base_fee)
        pooled = self.pool.get(key)
        if pooled is None:
            return None
        return views.transaction_json(pooled.tx, pooled.hash, pooled.sender, None)

    @rpc_method("eth_getTransactionReceipt", 1)
    def get_transaction_receipt(self, tx_hash: Any) -> dict[str, Any] | None:
        key = p.hash32(tx_hash)
        receipt = self.reader.receipt(key)
        if receipt is None:
            return None
        record = self.reader.transaction(key)
        if record is None:
            return None
        return views.receipt_json(key, record, receipt, self.reader.recipient(key, record))

    # blocks
    def _block_json(self, header: BlockHeaderAPI | None, full: Any) -> dict[str, Any] | None:
        if header is None:
            return None
        full_transactions = p.boolean(full, "fullTransactions") if full is not None else False
        block_hash = onchain_hash(header)
        hashes = self.reader.tx_hashes(block_hash)
        transactions: list[Any]
        size = len(header.extra_data) + 540
        if full_transactions:
            transactions = []
            for tx_hash in hashes:
                record = self.reader.transaction(tx_hash)
                if record is not None:
                    size += len(record.raw)
                    transactions.append(
                        views.mined_transaction_json(tx_hash, record, header.base_fee_per_gas)
                    )
        else:
            transactions = [views.hexd(tx_hash) for tx_hash in hashes]
            size += 110 * len(hashes)
        return views.block_json(header, block_hash, transactions, size)

    @rpc_method("eth_getBlockByNumber", 1, 2)
    def get_block_by_number(self, block: Any, full: Any) -> dict[str, Any] | None:
        return self._block_json(self.blocks.find(p.block_tag(block)), full)

    @rpc_method("eth_getBlockByHash", 1, 2)
    def get_block_by_hash(self, block_hash: Any, full: Any) -> dict[str, Any] | None:
        return self._block_json(self.reader.header_by_hash(p.hash32(block_hash)), full)

    def _tx_count(self, header: BlockHeaderAPI | None) -> str | None:
        if header is None:
            return None
        return views.hexq(len(self.reader.tx_hashes(onchain_hash(header))))

    @rpc_method("eth_getBlockTransactionCountByNumber", 1)
    def tx_count_by_number(self, block: Any) -> str | None:
        return self._tx_count(self.blocks.find(p.block_tag(block)))

    @rpc_method("eth_getBlockTransactionCountByHash", 1)
    def tx_count_by_hash(self, block_hash: Any) -> str | None:
        return self._tx_count(self.reader.header_by_hash(p.hash32(block_hash)))

    @rpc_method("eth_getUncleCountByBlockNumber", 1)
    def uncle_count_by_number(self, block: Any) -> str | None:
        return None if self.blocks.find(p.block_tag(block)) is None else "0x0"

    @rpc_method("eth_getUncleCountByBlockHash", 1)
    def uncle_count_by_hash(self, block_hash: Any) -> str | None:
        return None if self.reader.header_by_hash(p.hash32(block_hash)) is None else "0x0"

    def _tx_at(self, header: BlockHeaderAPI | None, index: Any) -> dict[str, Any] | None:
        position = p.quantity(index, "index")
        if header is None:
            return None
        hashes = self.reader.tx_hashes(onchain_hash(header))
        if position >= len(hashes):
            return None
        record = self.reader.transaction(hashes[position])
        if record is None:
            return None
        return views.mined_transaction_json(hashes[position], record, header.base_fee_per_gas)

    @rpc_method("eth_getTransactionByBlockNumberAndIndex", 2)
    def tx_by_number_and_index(self, block: Any, index: Any) -> dict[str, Any] | None:
        return self._tx_at(self.blocks.find(p.block_tag(block)), index)

    @rpc_method("eth_getTransactionByBlockHashAndIndex", 2)
    def tx_by_hash_and_index(self, block_hash: Any, index: Any) -> dict[str, Any] | None:
        return self._tx_at(self.reader.header_by_hash(p.hash32(block_hash)), index)

    @rpc_method("eth_blobBaseFee")
    def blob_base_fee(self) -> str:
        """EIP-7516's BLOBBASEFEE: Prague's formula over the head's excess blob gas. Tally
        carries no blobs, so the excess stays 0 and this is the minimum, 1 wei."""
        excess = self.reader.head().header.excess_blob_gas
        return views.hexq(
            fake_exponential(MIN_BLOB_BASE_FEE, excess, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE)
        )

    @rpc_method("eth_getBlockReceipts", 1)
    def block_receipts(self, block: Any) -> list[dict[str, Any]] | None:
        header = self.blocks.find(p.block_or_hash(block))
        if header is None:
            return None
        receipts = []
        for tx_hash in self.reader.tx_hashes(onchain_hash(header)):
            receipt = self.get_transaction_receipt(views.hexd(tx_hash))
            if receipt is not None:
                receipts.append(receipt)
        return receipts


def _storage_slot(value: Any) -> int:
    """A storage key: hex of at most 32 bytes (geth left-pads shorter ones); longer or
    malformed keys get geth's -32000 "unable to decode storage key" (execution-apis)."""
    if not isinstance(value, str):
        raise InvalidParams("invalid storage key: expected 0x-prefixed hex string")
    if not value.startswith(("0x", "0X")):
        raise ServerError("unable to decode storage key: hex string without 0x prefix")
    digits = value[2:]
    if len(digits) > 64:
        raise ServerError(
            "unable to decode storage key: hex string too long, want at most 32 bytes"
        )
    if any(c not in string.hexdigits for c in digits):
        raise ServerError("unable to decode storage key: hex string invalid")
    return int(digits or "0", 16)


def _raise_if_failed(computation: ComputationAPI) -> None:
    """Map a failed computation to geth's errors: code 3 with revert data, else -32000."""
    if not computation.is_error:
        return
    if isinstance(computation.error, Revert):
        output = computation.output
        raise ExecutionReverted(_revert_message(output), views.hexd(output))
    raise ServerError(str(computation.error) or type(computation.error).__name__)


def _revert_message(output: bytes) -> str:
    if output[:4] == _ERROR_SELECTOR:
        try:
            (reason,) = eth_abi.decode(["string"], output[4:])
            return f"execution reverted: {reason}"
        except Exception:
            return "execution reverted"
    if output[:4] == _PANIC_SELECTOR and len(output) == 36:
        return f"execution reverted: panic code {hex(int.from_bytes(output[4:], 'big'))}"
    return "execution reverted"
