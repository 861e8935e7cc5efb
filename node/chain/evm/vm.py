"""The EVM Tally runs: py-evm's newest fork (Prague) with the node's own block bookkeeping.

py-evm's stock VM persists transaction and receipt tries and reads receipts back from them
after execution; Tally keeps bodies and receipts under its own keys instead (see
`node.storage.schema`), so the few VM hooks that read those tries are redirected here. The
block executor (`node.chain.executor`) drives the VM's pieces itself; what it needs of py-evm's
private VM and state attributes is a method here (`start_block`, `apply_in_block`,
`state_diff`, `with_state`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from eth._utils.address import generate_contract_address
from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    ComputationAPI,
    MessageAPI,
    ReceiptAPI,
    SignedTransactionAPI,
)
from eth.constants import CREATE_CONTRACT_ADDRESS, GENESIS_PARENT_HASH
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth.vm.forks.cancun.transactions import BlobTransaction
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.state import PragueState, PragueTransactionExecutor
from eth.vm.message import Message
from eth_typing import Address, Hash32

from node.chain.admitted import AdmittedTransaction, Executable
from node.chain.evm.interpreter import TallyComputation
from node.chain.evm.state_db import TallyAccountDB
from node.chain.state_diff import StateDiff

MAX_PREV_HEADER_DEPTH = 256


class TallyTransactionExecutor(PragueTransactionExecutor):
    """Skips re-checking what the pool's admission already checked for a transaction.

    Overrides `FrontierTransactionExecutor.validate_transaction`: py-evm's
    `transaction.validate()` recovers the signature again (a third of a plain transfer's
    execution time). A transaction applied as an `AdmittedTransaction` (`TallyState.
    apply_admitted`) had its fields, intrinsic gas and signature checked, and its sender
    recovered, at admission, so only the state checks (nonce, balance, fee against base fee)
    run again. Anything else is validated in full.
    """

    # py-evm types it StateAPI; this executor only runs under `TallyState`, which names it.
    vm_state: TallyState

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        admitted = self.vm_state.admitted
        if admitted is not None and admitted.tx is transaction:
            self.vm_state.validate_transaction(transaction)
        else:
            super().validate_transaction(transaction)

    def build_evm_message(self, transaction: SignedTransactionAPI) -> MessageAPI:
        """A copy of `CancunTransactionExecutor.build_evm_message` without its debug line.

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
    """Prague's state over `TallyAccountDB`, running `TallyComputation`."""

    account_db_class = TallyAccountDB
    computation_class = TallyComputation
    transaction_executor_class = TallyTransactionExecutor
    admitted: AdmittedTransaction | None = None
    """The admitted transaction being applied now, if any (`TallyTransactionExecutor`)."""

    def apply_admitted(self, admitted: AdmittedTransaction) -> ComputationAPI:
        """`apply_transaction` of an admitted transaction: its stateless checks are skipped."""
        self.admitted = admitted
        try:
            return self.apply_transaction(admitted.tx)
        finally:
            self.admitted = None

    def delta_balance(self, address: Address, delta: int) -> None:
        """Pays nothing to a coinbase that has no account, instead of creating one.

        py-evm pays every transaction's fee to the coinbase and touches it; at a zero gas
        price the fee is 0, and EIP-161 deletes the touched empty account again at the
        transaction's end. Creating it and deleting it (a storage wipe included) around every
        transaction was 7 % of a re-executed ERC-20 transfer (py-spy, four validators), for a
        state that ends exactly as it began.
        """
        if delta == 0 and address == self.coinbase and not self.account_exists(address):
            return
        super().delta_balance(address, delta)

    def state_diff(self) -> StateDiff | None:
        """What this state wrote when persisted (py-evm keeps its account database private)."""
        return getattr(self._account_db, "state_diff", None)


class GasCursor:
    """What `ByzantiumVM.make_receipt` reads of the running header: the gas used so far.

    Stands in for a header copy per transaction; `make_receipt` reads only `gas_used` of it.
    """

    __slots__ = ("gas_limit", "gas_used")

    def __init__(self, gas_limit: int) -> None:
        self.gas_limit = gas_limit
        self.gas_used = 0


class TallyVM(PragueVM):
    """Prague with block post-processing fed from in-memory receipts.

    `PragueVM.process_deposit_request_data` reads the block's receipts back from the receipt
    trie in the database; Tally never writes that trie, so the receipts just produced are
    handed over in `receipts_for_postprocessing` before post-processing runs.
    """

    _state_class = TallyState
    receipts_for_postprocessing: tuple[ReceiptAPI, ...] = ()

    @classmethod
    def with_state(cls, state_class: type[TallyState]) -> type[TallyVM]:
        """This VM building `state_class` states (py-evm picks it by `_state_class`)."""
        name = f"{state_class.__name__}VM"
        return cast("type[TallyVM]", type(name, (cls,), {"_state_class": state_class}))

    def start_block(self, header: BlockHeaderAPI) -> BlockAPI:
        """An empty block on `header`, made the block this VM executes (py-evm's `_block`).

        The executor applies transactions itself (`apply_in_block`) and builds the final
        block from the receipts, so the VM's block never holds them.
        """
        block = self.get_block_class()(header, transactions=[], uncles=[], withdrawals=[])
        self._block = block
        return block

    def apply_in_block(
        self, cursor: GasCursor, item: Executable
    ) -> tuple[ReceiptAPI, ComputationAPI]:
        """`VM.apply_transaction` minus a header copy per transaction and `validate_receipt`.

        The running header only feeds the gas used so far (`GasCursor`), and
        `validate_receipt` re-hashes every log into a bloom to check py-evm's own receipt.
        py-evm validates (nonce, balance, fees) before touching any state, and the journal is
        locked first, so a transaction rejected with `ValidationError` leaves nothing to revert.
        """
        state = cast(TallyState, self.state)
        state.lock_changes()
        if isinstance(item, AdmittedTransaction):
            tx = item.tx
            computation = state.apply_admitted(item)
        else:
            tx = item
            computation = state.apply_transaction(tx)
        receipt = self.make_receipt(cursor, tx, computation, state)  # type: ignore[arg-type]
        return receipt, computation

    @classmethod
    def get_prev_hashes(cls, last_block_hash: Hash32, chaindb: Any) -> Iterator[Hash32]:
        """Ancestor hashes for BLOCKHASH, as clients see them (QBFT on-chain hashes).

        Overrides `VM.get_prev_hashes`, which yields `header.hash`: for a QBFT header that
        covers the commit seals; Tally's block hashes exclude them, and `parent_hash` links
        hold those.
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
        """A copy of `PragueVM.process_deposit_request_data` reading the receipts handed over."""
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
