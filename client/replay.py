"""Re-executing a Tally chain on the client with py-evm's stock Prague VM, from its genesis.

The node's executor (`node/chain/executor.py`) drives a subclass of py-evm's VM tuned for speed;
an auditor wants the opposite trade: the library's own VM methods, unmodified, so that a bug in
the node's shortcuts shows up as a mismatch. What Tally does differently from Ethereum mainnet
is mirrored here, each rule in one place:

- **Genesis:** `alloc` written as py-evm's `AccountDB` writes it, then every `deployments`
  entry's init code run at its fixed address by `GENESIS_DEPLOYER` (gas price 0); header with
  difficulty 0, QBFT's mixHash, the QBFT genesis extraData, base fee 0 when `zeroBaseFee`
  (else 1 gwei). Read from the same JSON document `tally_getGenesis` serves.
- **Block hashes** are QBFT's on-chain hashes: parents are stored here in their unsealed,
  round-0 form, so py-evm's own BLOCKHASH lookup (`get_prev_hashes`, which yields
  `header.hash`) sees the hashes Tally's blocks link to.
- **Header fields** the proposer chose (coinbase, timestamp, gas limit, extraData, mixHash,
  nonce, base fee, beacon root) are taken from the block; zero base fee is checked by the
  audit, not assumed by execution. No block reward, no withdrawals.
- **Block processing** is `block_preprocessing` (EIP-4788/2935 system writes), the
  transactions, then `block_postprocessing` (EIP-7685 requests), as py-evm's `import_block`
  does, without its header validation (which requires a 32-byte extraData and London's base
  fee formula, both of which Tally departs from).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth.consensus.context import ConsensusContext
from eth.constants import BLANK_ROOT_HASH, CREATE_CONTRACT_ADDRESS
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.exceptions import HeaderNotFound
from eth.vm.chain_context import ChainContext
from eth.vm.forks.prague import PragueVM
from eth.vm.message import Message
from eth_typing import Address
from eth_utils import ValidationError, to_bytes, to_canonical_address, to_int

from client.errors import GenesisDocumentError, ReplayError
from client.qbft import MIX_HASH, genesis_extra_data, onchain_form

GENESIS_DEPLOYER = Address(bytes.fromhex("000000000000000000000000000000000000ffff"))
"""`msg.sender` of Tally's genesis deployments (node/chain/genesis.py)."""
NON_ZERO_GENESIS_BASE_FEE = 10**9


@dataclass(frozen=True, slots=True)
class GenesisSpec:
    """What the audit needs from a Tally genesis document (`tally_getGenesis`, Besu-style JSON).

    Only block 0's state and extraData are covered by its hash; the consensus settings
    (`chainId`, `epochLength`, `blockPeriodSeconds`, `zeroBaseFee`) are taken on trust from the
    document, so an auditor who doubts the node passes their own copy.
    """

    chain_id: int
    validators: tuple[bytes, ...]
    gas_limit: int
    timestamp: int
    vanity: bytes
    zero_base_fee: bool
    block_period: int
    epoch_length: int
    alloc: Mapping[Address, Mapping[str, Any]] = field(default_factory=dict)
    deployments: tuple[tuple[Address, bytes], ...] = ()  # (address, init code)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> GenesisSpec:
        try:
            config = doc["config"]
            qbft = config.get("qbft", {})
            return cls(
                chain_id=int(config["chainId"]),
                validators=tuple(sorted(to_canonical_address(v) for v in doc["validators"])),
                gas_limit=_quantity(doc["gasLimit"]),
                timestamp=_quantity(doc.get("timestamp", 0)),
                vanity=to_bytes(hexstr=doc.get("vanity", "0x")),
                zero_base_fee=bool(config.get("zeroBaseFee", True)),
                block_period=int(qbft.get("blockPeriodSeconds", 1)),
                epoch_length=int(qbft.get("epochLength", 30_000)),
                alloc={to_canonical_address(a): e for a, e in doc.get("alloc", {}).items()},
                deployments=tuple(
                    (to_canonical_address(d["address"]), to_bytes(hexstr=d["initCode"]))
                    for d in doc.get("deployments", [])
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GenesisDocumentError(f"not a Tally genesis document: {exc!r}") from exc

    def build(self, chaindb: ChainDB) -> BlockHeaderAPI:
        """Write block 0's state into `chaindb` and return its header."""
        state = AccountDB(chaindb.db, BLANK_ROOT_HASH)
        for address, entry in self.alloc.items():
            state.set_balance(address, _quantity(entry.get("balance", 0)))
            state.set_nonce(address, _quantity(entry.get("nonce", 0)))
            code = to_bytes(hexstr=entry.get("code", "0x"))
            if code:
                state.set_code(address, code)
            for slot, value in entry.get("storage", {}).items():
                state.set_storage(address, _quantity(slot), _quantity(value))
        state.persist()
        header = PragueVM.create_header_from_parent(
            None,
            difficulty=0,
            gas_limit=self.gas_limit,
            timestamp=self.timestamp,
            extra_data=genesis_extra_data(self.validators, self.vanity),
            state_root=state.state_root,
            base_fee_per_gas=0 if self.zero_base_fee else NON_ZERO_GENESIS_BASE_FEE,
            mix_hash=MIX_HASH,
        )
        if not self.deployments:
            return header
        return header.copy(state_root=self._deploy(chaindb, header))

    def _deploy(self, chaindb: ChainDB, header: BlockHeaderAPI) -> bytes:
        vm_state = PragueVM.build_state(chaindb.db, header, ChainContext(self.chain_id))
        context = vm_state.get_transaction_context_class()(gas_price=0, origin=GENESIS_DEPLOYER)
        for address, init_code in self.deployments:
            message = Message(
                gas=self.gas_limit,
                to=CREATE_CONTRACT_ADDRESS,
                sender=GENESIS_DEPLOYER,
                value=0,
                data=b"",
                code=init_code,
                create_address=address,
            )
            computation = vm_state.computation_class.apply_create_message(
                vm_state, message, context
            )
            if computation.is_error:
                raise GenesisDocumentError(
                    f"genesis deployment at 0x{address.hex()} fails: {computation.error!r}"
                )
        vm_state.persist()
        return bytes(vm_state.state_root)


def _quantity(value: Any) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    return to_int(hexstr=text) if text.startswith("0x") else int(text)


@dataclass(frozen=True, slots=True)
class Executed:
    """What executing a block's transactions on its parent state produced."""

    header: BlockHeaderAPI
    receipts: tuple[ReceiptAPI, ...]


class Replayer:
    """An in-memory chain database advanced block by block with py-evm's Prague VM."""

    def __init__(self, genesis: GenesisSpec) -> None:
        self.chaindb = ChainDB(AtomicDB())
        self.chain_context = ChainContext(genesis.chain_id)
        self.genesis_header = genesis.build(self.chaindb)
        self.state_root: bytes = self.genesis_header.state_root
        self.remember(self.genesis_header)

    def remember(self, header: BlockHeaderAPI) -> None:
        """Make `header` findable by its on-chain hash, for BLOCKHASH in later blocks."""
        stored = onchain_form(header)
        self.chaindb.db[stored.hash] = rlp.encode(stored)

    def execute(
        self, header: BlockHeaderAPI, transactions: Sequence[SignedTransactionAPI]
    ) -> Executed:
        """Run `transactions` under `header`'s chosen fields on the state of the last block.

        The state advances to the result; the caller compares the header py-evm computed with
        the one the chain holds.
        """
        template = header.copy(
            state_root=self.state_root,
            transaction_root=BLANK_ROOT_HASH,
            receipt_root=BLANK_ROOT_HASH,
            gas_used=0,
            bloom=0,
            blob_gas_used=0,
        )
        vm = PragueVM(
            header=template,
            chaindb=self.chaindb,
            chain_context=self.chain_context,
            consensus_context=ConsensusContext(self.chaindb.db),
        )
        block = vm.get_block()
        try:
            vm.block_preprocessing(block)
            result, receipts, _ = vm.apply_all_transactions(transactions, vm.get_header())
        except (ValidationError, HeaderNotFound) as exc:
            raise ReplayError(f"py-evm refuses the block: {exc}") from exc
        filled = vm.set_block_transactions_and_withdrawals(block, result, transactions, receipts)
        processed = vm.block_postprocessing(filled)
        vm.state.persist()
        self.state_root = bytes(vm.state.state_root)
        return Executed(processed.header.copy(state_root=self.state_root), tuple(receipts))
