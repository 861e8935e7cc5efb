"""Genesis documents: the JSON an operator writes once, and the block-0 state built from it.

The format follows Besu's QBFT genesis where it can (`config.chainId`, `config.qbft.*`, `alloc`,
`gasLimit`), with the validator list given directly instead of pre-encoded `extraData`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import rlp
from eth.abc import AtomicDatabaseAPI, BlockHeaderAPI, DatabaseAPI
from eth.constants import BLANK_ROOT_HASH, CREATE_CONTRACT_ADDRESS, EMPTY_SHA3, UINT_256_CEILING
from eth.rlp.accounts import Account as StateAccount
from eth.vm.chain_context import ChainContext
from eth.vm.message import Message
from eth_account import Account
from eth_hash.auto import keccak
from eth_typing import Address, Hash32
from eth_utils import to_canonical_address, to_checksum_address

from node.chain.evm.vm import TallyVM
from node.chain.trie_updates import apply_updates
from node.qbftheader.extra_data import genesis_extra_data
from node.qbftheader.verify import QBFT_MIX_HASH
from node.storage.store import MemoryStore, StoreBatch

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_COUNT = 10
DEV_BALANCE_WEI = 10_000 * 10**18
DEV_CHAIN_ID = 1337
DEFAULT_GAS_LIMIT = 60_000_000

log = logging.getLogger(__name__)


class GenesisError(ValueError):
    """A genesis document that cannot describe a chain."""


@dataclass(frozen=True, slots=True)
class AllocEntry:
    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Deployment:
    """A contract created at genesis at a fixed address by running its init code.

    Contracts whose state comes from their constructor (roles, admins, limits) cannot be
    written into `alloc` by hand; running the init code at genesis yields exactly what a
    deployment transaction would, at an address every node knows in advance.
    """

    address: bytes
    init_code: bytes
    name: str = ""


GENESIS_DEPLOYER = bytes.fromhex("000000000000000000000000000000000000ffff")
"""`msg.sender` of genesis deployments: a fixed address no one holds a key for (not the zero
address, which OpenZeppelin refuses as an owner or a mint recipient)."""


@dataclass(frozen=True, slots=True)
class GenesisBlock:
    """Block 0 as `Genesis.build` made it: its header and the state writes under its root."""

    genesis: Genesis = field(repr=False)
    """What it was built from: a chain writes it only for this same object."""
    header: BlockHeaderAPI
    state: Mapping[bytes, bytes | None] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Genesis:
    """Everything that fixes a chain's identity: change one field and it is another chain."""

    chain_id: int
    validators: tuple[bytes, ...]
    alloc: dict[bytes, AllocEntry]
    gas_limit: int = DEFAULT_GAS_LIMIT
    timestamp: int = 0
    """Block 0's time: when the document was written (`dated_now`). Kept in the JSON, so
    every node builds the same block 0; a document without it means 0, as before the field
    was stamped, so networks made then keep their genesis hash."""
    block_period_seconds: int = 1
    request_timeout_seconds: int = 2
    zero_base_fee: bool = True
    vanity: bytes = b""
    epoch_length: int = 30_000
    deployments: tuple[Deployment, ...] = ()
    permissions: dict[str, bytes] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": {
                "chainId": self.chain_id,
                "zeroBaseFee": self.zero_base_fee,
                "qbft": {
                    "blockPeriodSeconds": self.block_period_seconds,
                    "requestTimeoutSeconds": self.request_timeout_seconds,
                    "epochLength": self.epoch_length,
                },
                "permissions": {
                    name: to_checksum_address(address)
                    for name, address in sorted(self.permissions.items())
                },
            },
            "gasLimit": hex(self.gas_limit),
            "timestamp": hex(self.timestamp),
            "vanity": "0x" + self.vanity.hex(),
            "validators": [to_checksum_address(v) for v in self.validators],
            "alloc": {
                to_checksum_address(address): _alloc_to_json(entry)
                for address, entry in sorted(self.alloc.items())
            },
            "deployments": [
                {
                    "name": item.name,
                    "address": to_checksum_address(item.address),
                    "initCode": "0x" + item.init_code.hex(),
                }
                for item in self.deployments
            ],
        }

    def dated_now(self) -> Genesis:
        """This genesis dated now, for a tool writing a new network's document: block 0 then
        shows when the network began rather than 1970. It is dated one block period back, so
        the first block is due at once, as on an undated genesis, rather than a whole period
        after the network was created (an hour, on a dev chain run with a long period)."""
        return replace(self, timestamp=int(time.time()) - self.block_period_seconds)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Genesis:
        try:
            config = doc["config"]
            qbft = config.get("qbft", {})
            validators = tuple(sorted(to_canonical_address(v) for v in doc["validators"]))
            genesis = cls(
                chain_id=int(config["chainId"]),
                validators=validators,
                alloc={
                    to_canonical_address(address): _alloc_from_json(entry)
                    for address, entry in doc.get("alloc", {}).items()
                },
                gas_limit=_quantity(doc.get("gasLimit", DEFAULT_GAS_LIMIT)),
                timestamp=_quantity(doc.get("timestamp", 0)),
                block_period_seconds=int(qbft.get("blockPeriodSeconds", 1)),
                request_timeout_seconds=int(qbft.get("requestTimeoutSeconds", 2)),
                epoch_length=int(qbft.get("epochLength", 30_000)),
                deployments=tuple(
                    Deployment(
                        address=to_canonical_address(item["address"]),
                        init_code=bytes.fromhex(str(item["initCode"])[2:]),
                        name=str(item.get("name", "")),
                    )
                    for item in doc.get("deployments", [])
                ),
                permissions={
                    str(name): to_canonical_address(address)
                    for name, address in config.get("permissions", {}).items()
                },
                zero_base_fee=bool(config.get("zeroBaseFee", True)),
                vanity=bytes.fromhex(str(doc.get("vanity", "0x"))[2:]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GenesisError(f"invalid genesis document: {exc!r}") from exc
        genesis.check()
        return genesis

    @classmethod
    def load(cls, path: Path) -> Genesis:
        return cls.loads(path.read_bytes(), path)

    @classmethod
    def loads(cls, data: bytes, path: Path) -> Genesis:
        """The genesis in `data`, the bytes of the file at `path` (named in the error)."""
        try:
            return cls.from_json(json.loads(data))
        except json.JSONDecodeError as exc:
            raise GenesisError(f"{path}: not JSON: {exc}") from exc

    def check(self) -> None:
        if self.chain_id <= 0:
            raise GenesisError("chainId must be positive")
        if not self.validators:
            raise GenesisError("at least one validator is required")
        if self.gas_limit < 5_000 or self.gas_limit > 2**63 - 1:
            raise GenesisError("gasLimit out of range")
        if self.block_period_seconds < 1:
            raise GenesisError("blockPeriodSeconds must be at least 1")
        if self.epoch_length < 1:
            raise GenesisError("epochLength must be positive")
        if len(self.vanity) > 32:
            raise GenesisError("vanity is at most 32 bytes")

    def build(self) -> GenesisBlock:
        """Block 0 built in memory, to be written by every store that needs it."""
        started = time.monotonic()
        writes = StoreBatch(MemoryStore())
        header = self.header(writes)
        log.debug(  # not info: a refused `tally run` says one line, and it builds block 0
            "built block 0 of chain %d: %d accounts, %d state entries in %.1f s",
            self.chain_id,
            len(self.alloc),
            len(writes.pending),
            time.monotonic() - started,
        )
        return GenesisBlock(self, header, writes.pending)

    def header(self, db: AtomicDatabaseAPI) -> BlockHeaderAPI:
        """Write the allocated state into `db` and return the genesis header."""
        state_root = _write_alloc(db, self.alloc)
        header = TallyVM.create_header_from_parent(
            None,
            difficulty=0,
            gas_limit=self.gas_limit,
            timestamp=self.timestamp,
            extra_data=genesis_extra_data(list(self.validators), self.vanity),
            state_root=state_root,
            base_fee_per_gas=0 if self.zero_base_fee else 10**9,
            mix_hash=QBFT_MIX_HASH,
        )
        if not self.deployments:
            return header
        return header.copy(state_root=self._deploy(db, header))

    def _deploy(self, db: AtomicDatabaseAPI, header: BlockHeaderAPI) -> bytes:
        """Run every deployment's init code on the allocated state; the new state root."""
        state = TallyVM.build_state(db, header, ChainContext(self.chain_id))
        context = state.get_transaction_context_class()(
            gas_price=0, origin=Address(GENESIS_DEPLOYER)
        )
        for item in self.deployments:
            message = Message(
                gas=self.gas_limit,
                to=CREATE_CONTRACT_ADDRESS,
                sender=Address(GENESIS_DEPLOYER),
                value=0,
                data=b"",
                code=item.init_code,
                create_address=Address(item.address),
            )
            computation = state.computation_class.apply_create_message(state, message, context)
            if computation.is_error:
                raise GenesisError(
                    f"genesis deployment {item.name or item.address.hex()} failed: "
                    f"{computation.error!r}"
                )
        state.persist()
        return state.state_root


def _write_alloc(db: DatabaseAPI, alloc: Mapping[bytes, AllocEntry]) -> Hash32:
    """Write `alloc`'s accounts, code and storage into `db`; the state root.

    py-evm's `AccountDB` would write each account and slot into its trie one key at a time,
    re-reading, re-encoding and re-hashing the path from the root for each: minutes for a
    genesis of 100,000 WalletToken holders (issue 16). Every trie here starts empty and its
    contents are known whole, so each is built in one `apply_updates` pass (the merge a block's
    writes go through), which hashes every node once and keeps only the final trie's nodes. The
    records and keys are py-evm's (`Account` RLP under keccak(address); RLP values under
    keccak of the slot as 32 bytes; code under its hash), so the node's `TallyAccountDB` reads
    them back; `tests/test_genesis_state.py` holds the result to `AccountDB`'s for the same
    alloc.
    """
    accounts: dict[bytes, bytes] = {}
    for address, entry in alloc.items():
        _check_alloc_entry(address, entry)
        code_hash = EMPTY_SHA3
        if entry.code:
            code_hash = Hash32(keccak(entry.code))
            db[code_hash] = entry.code
        storage = {
            keccak(slot.to_bytes(32, "big")): rlp.encode(value)
            for slot, value in entry.storage.items()
            if value  # a zero word is no entry, as `AccountDB.set_storage` deletes it
        }
        account = StateAccount(entry.nonce, entry.balance, _write_trie(db, storage), code_hash)
        accounts[keccak(address)] = rlp.encode(account)
    return _write_trie(db, accounts)


def _write_trie(db: DatabaseAPI, items: dict[bytes, bytes]) -> Hash32:
    """A new trie of `items` written into `db` by node hash; its root."""
    root, nodes = apply_updates(db.__getitem__, BLANK_ROOT_HASH, items)
    for node_hash, encoded in nodes.items():
        db[node_hash] = encoded
    return Hash32(root)


def _check_alloc_entry(address: bytes, entry: AllocEntry) -> None:
    """What `AccountDB`'s setters validate: a 20-byte address and 256-bit words."""
    if len(address) != 20:
        raise GenesisError(f"alloc address {address.hex()} is not 20 bytes")
    words = (entry.balance, entry.nonce, *entry.storage.keys(), *entry.storage.values())
    if not all(0 <= word < UINT_256_CEILING for word in words):
        raise GenesisError(f"alloc entry {to_checksum_address(address)} has a value out of range")


def dev_accounts() -> list[Any]:
    """The ten well-known dev accounts (anvil's and Hardhat's), derived from the dev mnemonic."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        for index in range(DEV_ACCOUNT_COUNT)
    ]


def dev_genesis(
    validator: bytes,
    *,
    chain_id: int = DEV_CHAIN_ID,
    block_period: int = 1,
    validators: tuple[bytes, ...] | None = None,
    nodes: list[bytes] | None = None,
    permissioned: bool = False,
) -> Genesis:
    """A dev chain: the dev accounts prefunded and holding roles in the bank's contracts.

    The contracts are always deployed (the README tour uses them); `permissioned` makes the
    node enforce AccountRules and NodeRules, as a production network does. It is off by
    default so that any fresh key can transact on a developer's chain.
    """
    from node.domain.contracts import ACCOUNT_RULES, NODE_RULES, dev_deployments

    addresses: list[bytes] = [to_canonical_address(account.address) for account in dev_accounts()]
    validator_set = validators or (validator,)
    return Genesis(
        chain_id=chain_id,
        validators=tuple(sorted(validator_set)),
        alloc={address: AllocEntry(balance=DEV_BALANCE_WEI) for address in addresses},
        block_period_seconds=block_period,
        request_timeout_seconds=max(2, 2 * block_period),
        deployments=dev_deployments(addresses, nodes or list(validator_set)),
        permissions=(
            {"accountRules": ACCOUNT_RULES, "nodeRules": NODE_RULES} if permissioned else {}
        ),
    )


def _quantity(value: Any) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text, 16) if text.startswith("0x") else int(text)


def _alloc_from_json(entry: dict[str, Any]) -> AllocEntry:
    return AllocEntry(
        balance=_quantity(entry.get("balance", 0)),
        nonce=_quantity(entry.get("nonce", 0)),
        code=bytes.fromhex(str(entry.get("code", "0x"))[2:]),
        storage={
            _quantity(slot): _quantity(value) for slot, value in entry.get("storage", {}).items()
        },
    )


def _alloc_to_json(entry: AllocEntry) -> dict[str, Any]:
    doc: dict[str, Any] = {"balance": hex(entry.balance)}
    if entry.nonce:
        doc["nonce"] = hex(entry.nonce)
    if entry.code:
        doc["code"] = "0x" + entry.code.hex()
    if entry.storage:
        doc["storage"] = {hex(k): hex(v) for k, v in sorted(entry.storage.items())}
    return doc
