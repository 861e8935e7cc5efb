"""A block's state diff applies on another node only if it is exactly what the block wrote."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import rlp
from eth.rlp.accounts import Account
from eth_abi import encode
from eth_account import Account as EthAccount
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from contracts import load_artifact
from node.chain.chain import Chain, PendingBlock
from node.chain.diff_import import import_with_diff
from node.chain.genesis import dev_accounts, dev_genesis
from node.chain.state_diff import DiffRejected, StateDiff
from node.chain.vm import decode_transaction
from node.qbftheader.extra_data import QbftExtraData
from node.storage.chainstore import ChainStore
from node.storage.store import MemoryStore

VALIDATOR = b"\x11" * 20
EXTRA = QbftExtraData(b"\x00" * 32, (VALIDATOR,), None, 0, ()).encode()
TRANSFER = function_signature_to_4byte_selector("transfer(address,uint256)")


def signed(nonce: int, to: bytes | None, data: bytes = b"", gas: int = 200_000) -> bytes:
    tx = {"nonce": nonce, "gas": gas, "gasPrice": 0, "value": 0, "data": data, "chainId": 1337}
    if to is not None:
        tx["to"] = to_checksum_address(to)
    return bytes(dev_accounts()[0].sign_transaction(tx).raw_transaction)


Blocks = tuple[Chain, PendingBlock, list[bytes]]
"""The `blocks` fixture: (follower, pending, raws)."""


@pytest.fixture(scope="module")
def blocks() -> Blocks:
    """Two chains at the same head, and the next block built on one: (follower, pending, raws)."""
    leader = Chain(ChainStore(MemoryStore()), dev_genesis(VALIDATOR))
    follower = Chain(ChainStore(MemoryStore()), dev_genesis(VALIDATOR))
    deployer = bytes.fromhex(dev_accounts()[0].address[2:])
    token = keccak(rlp.encode([deployer, 0]))[12:]
    code = bytes.fromhex(load_artifact("DevToken")["bytecode"][2:])
    first = [signed(0, None, code + encode(["uint256"], [10**24]), gas=3_000_000)]
    for chain in (leader, follower):
        pending = chain.build(
            [decode_transaction(raw) for raw in first],
            timestamp=5,
            coinbase=VALIDATOR,
            extra_data=EXTRA,
        )
        chain.commit(pending, pending.header)
    raws = [
        signed(1 + i, token, TRANSFER + encode(["address", "uint256"], [who.address, 7]))
        for i, who in enumerate(EthAccount.create() for _ in range(6))
    ]
    runtime = bytes.fromhex("602a60005260206000f3")  # returns 42: code no node holds yet
    raws.append(signed(7, None, bytes.fromhex("600a600c600039600a6000f3") + runtime))
    pending = leader.build(
        [decode_transaction(raw) for raw in raws], timestamp=6, coinbase=VALIDATOR, extra_data=EXTRA
    )
    statuses = [item.receipt.state_root for item in pending.executed.transactions]
    assert statuses == [b"\x01"] * len(raws)
    return follower, pending, raws


def made_diff(blocks: Blocks) -> StateDiff:
    """The diff the leader's execution of the block made (building always makes one)."""
    diff = blocks[1].executed.state_diff
    assert diff is not None
    return diff


def attempt(blocks: Blocks, diff: StateDiff, receipts: list[bytes] | None = None) -> PendingBlock:
    follower, pending, raws = blocks
    encoded = [item.receipt.encode() for item in pending.executed.transactions]
    return import_with_diff(
        follower,
        pending.header,
        [decode_transaction(raw) for raw in raws],
        diff,
        encoded if receipts is None else receipts,
    )


def test_the_untouched_diff_applies(blocks: Blocks) -> None:
    pending = attempt(blocks, made_diff(blocks))
    assert pending.header.state_root == blocks[1].header.state_root


def _storage_write(diff: StateDiff) -> tuple[bytes, bytes]:
    address = next(a for a, change in diff.storage.items() if change.writes)
    return address, next(iter(diff.storage[address].writes))


def tamper_value(diff: StateDiff) -> None:
    address, slot = _storage_write(diff)
    diff.storage[address].writes[slot] = rlp.encode(123456)


def drop_write(diff: StateDiff) -> None:
    address, slot = _storage_write(diff)
    del diff.storage[address].writes[slot]


def drop_account(diff: StateDiff) -> None:
    del diff.accounts[next(iter(diff.accounts))]


def richer_account(diff: StateDiff) -> None:
    address = next(a for a, value in diff.accounts.items() if value)
    account = rlp.decode(diff.accounts[address], sedes=Account)
    diff.accounts[address] = rlp.encode(account.copy(balance=account.balance + 1))


def drop_code(diff: StateDiff) -> None:
    diff.code.clear()


def extra_storage(diff: StateDiff) -> None:
    address, _ = _storage_write(diff)
    diff.storage[b"\x42" * 20] = copy.deepcopy(diff.storage[address])


def wipe_instead(diff: StateDiff) -> None:
    address, _ = _storage_write(diff)
    diff.storage[address].wiped = True


@pytest.mark.parametrize(
    "tamper",
    [
        tamper_value,
        drop_write,
        drop_account,
        richer_account,
        drop_code,
        extra_storage,
        wipe_instead,
    ],
)
def test_a_tampered_diff_is_rejected(blocks: Blocks, tamper: Callable[[StateDiff], None]) -> None:
    diff = copy.deepcopy(made_diff(blocks))
    tamper(diff)
    with pytest.raises(DiffRejected):
        attempt(blocks, diff)


def test_receipts_must_match_the_header(blocks: Blocks) -> None:
    receipts = [item.receipt.encode() for item in blocks[1].executed.transactions]
    receipts[0], receipts[1] = receipts[1], receipts[0]
    with pytest.raises(DiffRejected, match="receipt"):
        attempt(blocks, made_diff(blocks), receipts)


def test_a_diff_survives_its_wire_encoding(blocks: Blocks) -> None:
    diff = made_diff(blocks)
    assert StateDiff.from_rlp(rlp.decode(rlp.encode(diff.to_rlp()))) == diff
    with pytest.raises(DiffRejected):
        StateDiff.from_rlp([[[b"short", b""]], [], []])
