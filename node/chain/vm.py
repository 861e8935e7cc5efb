"""The EVM Tally runs: py-evm's newest fork (Prague) with the node's own block bookkeeping.

py-evm's stock VM persists transaction and receipt tries and reads receipts back from them
after execution; Tally keeps bodies and receipts under its own keys instead (see
`node.storage.schema`), so the few VM hooks that read those tries are redirected here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, cast

from eth._utils.address import generate_contract_address
from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    MessageAPI,
    ReceiptAPI,
    SignedTransactionAPI,
    TransactionBuilderAPI,
)
from eth.constants import CREATE_CONTRACT_ADDRESS, GENESIS_PARENT_HASH
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth.vm.forks.cancun.transactions import BlobTransaction
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.state import PragueState, PragueTransactionExecutor
from eth.vm.message import Message
from eth_typing import Hash32

from node.chain.evm.interpreter import TallyComputation
from node.chain.evm.state_db import TallyAccountDB

MAX_PREV_HEADER_DEPTH = 256

FORK_NAME = "prague"


class PragueHeader(Protocol):
    """The header fields py-evm's fork-generic `BlockHeaderAPI` types as optional, or lacks.

    Tally runs Prague from genesis, so every header is a `PragueBlockHeader` and always has
    them; see `prague_header`.
    """

    @property
    def base_fee_per_gas(self) -> int: ...

    @property
    def withdrawals_root(self) -> Hash32: ...

    @property
    def parent_beacon_block_root(self) -> Hash32: ...

    @property
    def requests_hash(self) -> Hash32: ...


def prague_header(header: BlockHeaderAPI) -> PragueHeader:
    """`header` typed with its Prague fields present (a cast: no check, no copy)."""
    return cast(PragueHeader, header)


class TallyTransactionExecutor(PragueTransactionExecutor):
    """Skips re-checking what the pool's admission already checked for a transaction.

    py-evm's `transaction.validate()` recovers the signature again (a third of a plain
    transfer's execution time). Transactions the pool admitted had their fields, intrinsic
    gas and signature checked, and their sender recovered, at admission; the block builder
    lists them in `TallyState.prevalidated` (by id) so only the state checks (nonce, balance,
    fee against base fee) run again. Anything else is validated in full.
    """

    # py-evm types it StateAPI; this executor only runs under `TallyState`, which names it.
    vm_state: TallyState

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        if id(transaction) in self.vm_state.prevalidated:
            self.vm_state.validate_transaction(transaction)
        else:
            super().validate_transaction(transaction)

    def build_evm_message(self, transaction: SignedTransactionAPI) -> MessageAPI:
        """`CancunTransactionExecutor.build_evm_message` without its unconditional debug line.

        py-evm formats a debug message for every transaction whether or not debug logging is
        on, including `repr(transaction)`, a keccak of the data and the callee's whole code in
        hex: about 2% of an ERC-20 transfer's execution, for a message nobody reads.
        """
        state = self.vm_state
        fee = transaction.gas * state.get_gas_price(transaction)
        if transaction.type_id == BLOB_TX_TYPE:
            fee += self.calc_data_fee(cast(BlobTransaction, transaction))
        state.delta_balance(transaction.sender, -1 * fee)
        state.increment_nonce(transaction.sender)
        refund = self.calc_message_refund(transaction)
        message_gas = transaction.gas - transaction.intrinsic_gas
        if transaction.to == CREATE_CONTRACT_ADDRESS:
            contract_address = generate_contract_address(
                transaction.sender, state.get_nonce(transaction.sender) - 1
            )
            data = b""
            code = transaction.data
            is_delegation = False
        else:
            contract_address = None
            data = transaction.data
            code, delegation_address = self.get_code_at_address(transaction.to)
            is_delegation = delegation_address is not None
        return Message(
            gas=message_gas,
            to=transaction.to,
            sender=transaction.sender,
            value=transaction.value,
            data=data,
            code=code,
            # py-evm annotates `create_address: Address = None`; None (not a create) is its default.
            create_address=contract_address,  # type: ignore[arg-type]
            refund=refund,
            is_delegation=is_delegation,
        )


class TallyState(PragueState):
    account_db_class = TallyAccountDB
    computation_class = TallyComputation
    transaction_executor_class = TallyTransactionExecutor
    prevalidated: frozenset[int] = frozenset()


class TallyVM(PragueVM):
    """Prague with block post-processing fed from in-memory receipts.

    `PragueVM.process_deposit_request_data` reads the block's receipts back from the receipt
    trie in the database; Tally never writes that trie, so the receipts just produced are
    handed over in `receipts_for_postprocessing` before post-processing runs.
    """

    _state_class = TallyState
    receipts_for_postprocessing: tuple[ReceiptAPI, ...] = ()

    @classmethod
    def get_prev_hashes(cls, last_block_hash: Hash32, chaindb: Any) -> Iterator[Hash32]:
        """Ancestor hashes for BLOCKHASH, as clients see them (QBFT on-chain hashes).

        py-evm's version yields `header.hash`, which for a QBFT header covers the commit
        seals; Tally's block hashes exclude them, and `parent_hash` links hold those.
        """
        if last_block_hash == GENESIS_PARENT_HASH:
            return
        current = last_block_hash
        for _ in range(MAX_PREV_HEADER_DEPTH):
            yield current
            header = chaindb.get_block_header_by_hash(current)
            if header.block_number == 0:
                return
            current = header.parent_hash

    def process_deposit_request_data(self, block: BlockAPI) -> None:
        from eth.vm.forks.prague.constants import (
            DEPOSIT_CONTRACT_ADDRESS,
            DEPOSIT_EVENT_SIGNATURE_HASH,
            DEPOSIT_REQUEST_TYPE,
        )

        request_data = b""
        for receipt in self.receipts_for_postprocessing:
            for log in receipt.logs:
                is_deposit = (
                    log.address == DEPOSIT_CONTRACT_ADDRESS
                    and len(log.topics) > 0
                    and log.topics[0].to_bytes(32, "big") == DEPOSIT_EVENT_SIGNATURE_HASH
                )
                if is_deposit:
                    data = log.data
                    request_data += (
                        data[192:240]
                        + data[288:320]
                        + data[352:360]
                        + data[416:512]
                        + data[544:552]
                    )
        block.block_requests.append(DEPOSIT_REQUEST_TYPE + request_data)


TRANSACTION_BUILDER: type[TransactionBuilderAPI] = TallyVM.get_transaction_builder()


def decode_transaction(raw: bytes) -> SignedTransactionAPI:
    """Decode a raw (legacy RLP or EIP-2718 typed) signed transaction.

    Raises whatever py-evm raises for malformed input (rlp.DecodingError, ValidationError,
    ValueError); callers at the edge translate that into a user-facing rejection.
    """
    return TRANSACTION_BUILDER.decode(raw)


def transaction_fields(tx: SignedTransactionAPI) -> dict[str, Any]:
    """The fee fields of any transaction type, normalised (legacy: both fees = gas price)."""
    if hasattr(tx, "max_fee_per_gas"):
        return {
            "max_fee_per_gas": tx.max_fee_per_gas,
            "max_priority_fee_per_gas": tx.max_priority_fee_per_gas,
        }
    return {"max_fee_per_gas": tx.gas_price, "max_priority_fee_per_gas": tx.gas_price}
