"""Building, re-executing and committing blocks with the real executor on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth.abc import SignedTransactionAPI
from eth_account import Account
from eth_typing import Address

from contracts import load_artifact
from node.chain.chain import Chain, PendingBlock
from node.chain.executor import BlockRejected
from node.chain.genesis import Genesis, dev_accounts, dev_genesis
from node.chain.vm import decode_transaction
from node.domain.indexes import ChainIndex
from node.qbftheader.extra_data import QbftExtraData
from node.qbftheader.hashing import onchain_hash
from node.storage import schema
from node.storage.chainstore import ChainStore
from node.storage.store import LevelDBStore, MemoryStore

VALIDATOR = b"\x11" * 20
RECIPIENT = "0x" + "22" * 20
EXTRA = QbftExtraData(b"\x00" * 32, (VALIDATOR,), None, 0, ()).encode()


def transfers(count: int, first_nonce: int = 0) -> list:
    senders = dev_accounts()[:4]
    raws = [
        senders[i % 4]
        .sign_transaction(
            {
                "nonce": first_nonce + i // 4,
                "gas": 21000,
                "gasPrice": 0,
                "to": RECIPIENT,
                "value": 10 + i,
                "chainId": 1337,
            }
        )
        .raw_transaction
        for i in range(count)
    ]
    return [decode_transaction(bytes(raw)) for raw in raws]


def new_chain(tmp_path: Path | None = None) -> Chain:
    store = MemoryStore() if tmp_path is None else LevelDBStore(tmp_path)
    return Chain(ChainStore(store), dev_genesis(VALIDATOR))


def build_and_commit(chain: Chain, txs: list, timestamp: int) -> PendingBlock:
    pending = chain.build(txs, timestamp=timestamp, coinbase=VALIDATOR, extra_data=EXTRA)
    chain.commit(pending, pending.header)
    return pending


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_built_block_re_executes_to_the_same_hash_elsewhere(
    on_disk: bool, tmp_path: Path
) -> None:
    builder = new_chain(tmp_path / "a" if on_disk else None)
    follower = new_chain(tmp_path / "b" if on_disk else None)
    txs = transfers(40)
    pending = build_and_commit(builder, txs, timestamp=10)
    assert len(pending.executed.transactions) == 40
    replay = follower.reexecute(pending.header, [decode_transaction(t.encode()) for t in txs])
    follower.commit(replay, pending.header)
    assert follower.head_hash == builder.head_hash == onchain_hash(pending.header)
    recipient = Address(bytes.fromhex(RECIPIENT[2:]))
    assert follower.state_at(follower.head).get_balance(recipient) == sum(10 + i for i in range(40))


def test_tampered_blocks_are_rejected() -> None:
    builder, follower = new_chain(), new_chain()
    txs = transfers(8)
    pending = build_and_commit(builder, txs, timestamp=10)
    copies = [decode_transaction(t.encode()) for t in txs]
    for field, value in (
        ("state_root", b"\x01" * 32),
        ("receipt_root", b"\x02" * 32),
        ("transaction_root", b"\x03" * 32),
        ("gas_used", 1),
    ):
        with pytest.raises(BlockRejected, match=field):
            follower.reexecute(pending.header.copy(**{field: value}), copies)
    with pytest.raises(BlockRejected):
        follower.reexecute(pending.header, copies[:-1])
    with pytest.raises(BlockRejected, match="base fee"):
        follower.reexecute(pending.header.copy(base_fee_per_gas=7), copies)


def test_building_skips_invalid_and_defers_what_does_not_fit() -> None:
    chain = new_chain()
    good = transfers(4)
    stale = transfers(1)[0]  # same nonce 0 as good[0]: invalid once good[0] ran
    broke = decode_transaction(
        bytes(
            Account.create()
            .sign_transaction(
                {
                    "nonce": 0,
                    "gas": 21000,
                    "gasPrice": 0,
                    "to": RECIPIENT,
                    "value": 1,
                    "chainId": 1337,
                }
            )
            .raw_transaction
        )
    )
    pending = chain.build([*good, stale, broke], timestamp=3, coinbase=VALIDATOR, extra_data=EXTRA)
    assert [item.tx for item in pending.executed.transactions] == good
    assert {id(tx) for tx, _ in pending.executed.skipped} == {id(stale), id(broke)}
    assert pending.executed.deferred == []


def signed_transfer(sender: int, nonce: int, gas: int) -> SignedTransactionAPI:
    raw = dev_accounts()[sender].sign_transaction(
        {"nonce": nonce, "gas": gas, "gasPrice": 0, "to": RECIPIENT, "value": 1, "chainId": 1337}
    )
    return decode_transaction(bytes(raw.raw_transaction))


def test_a_block_is_filled_by_the_gas_used_not_the_gas_declared() -> None:
    """As geth's builder: a transaction goes in while the gas left covers what it declares,
    and the block is charged what it uses. Three transfers declaring 50,000 (using 21,000)
    fit a 100,000 block; a fourth does not (37,000 left), and its sender's next nonce waits
    with it rather than fail for a nonce gap."""
    dev = dev_genesis(VALIDATOR)
    genesis = Genesis(dev.chain_id, dev.validators, dev.alloc, gas_limit=100_000)
    chain = Chain(ChainStore(MemoryStore()), genesis)
    first = [signed_transfer(0, nonce, 50_000) for nonce in range(3)]
    waiting = [signed_transfer(1, 0, 50_000), signed_transfer(1, 1, 21_000)]
    pending = chain.build([*first, *waiting], timestamp=3, coinbase=VALIDATOR, extra_data=EXTRA)
    assert [item.tx for item in pending.executed.transactions] == first
    assert pending.header.gas_used == 63_000
    assert pending.executed.deferred == waiting
    assert pending.executed.skipped == []


def test_an_open_block_takes_transactions_in_batches_and_matches_one_built_at_once() -> None:
    """A proposer executing its block ahead of its turn (`node.consensus.speculation`) adds
    transactions by batches and sets extraData at the end; the block is the same."""
    txs = transfers(8)
    at_once = new_chain().build(txs, timestamp=3, coinbase=VALIDATOR, extra_data=EXTRA)
    opened = new_chain().open_block(timestamp=3, coinbase=VALIDATOR, extra_data=b"")
    opened.apply(txs[:3])
    opened.apply(txs[3:])
    in_batches = opened.finish(EXTRA)
    assert in_batches.header == at_once.header
    assert opened.applied == 8


def test_receipts_and_records_are_committed_with_the_block(tmp_path: Path) -> None:
    chain = new_chain(tmp_path)
    txs = transfers(6)
    pending = build_and_commit(chain, txs, timestamp=10)
    block_hash = chain.head_hash
    hashes = chain.store.block_tx_hashes(block_hash)
    assert len(hashes) == 6
    receipt = chain.store.receipt(hashes[5])
    record = chain.store.transaction(hashes[5])
    assert receipt is not None and record is not None
    assert receipt.status == 1 and receipt.gas_used == 21000
    assert receipt.cumulative_gas_used == 6 * 21000 == pending.header.gas_used
    assert record.block_hash == block_hash and record.index == 5 and record.block_number == 1
    sender = bytes.fromhex(dev_accounts()[1].address[2:])
    assert list(ChainIndex(chain.store.store).account_transactions(sender)) == [(1, 5), (1, 1)]


def test_blockhash_opcode_sees_onchain_hashes() -> None:
    chain = new_chain()
    build_and_commit(chain, transfers(1), timestamp=5)
    first_hash = chain.head_hash
    # PUSH1 1, BLOCKHASH, PUSH1 0, MSTORE, PUSH1 32, PUSH1 0, RETURN
    runtime = bytes.fromhex("600140600052" + "60206000f3")
    from node.chain.calls import CallExecutor, CallRequest

    calls = CallExecutor(chain, chain.genesis.gas_limit)
    probe = b"\x99" * 20
    from node.chain.calls import AccountOverride

    result = calls.call(
        CallRequest(VALIDATOR, probe, b"", 0, None),
        chain.head,
        {probe: AccountOverride(code=runtime)},
    )
    assert result.output == first_hash


def test_deploy_and_call_a_compiled_contract() -> None:
    chain = new_chain()
    artifact = load_artifact("DevToken")
    deployer = dev_accounts()[0]
    from eth_abi import encode

    data = bytes.fromhex(artifact["bytecode"][2:]) + encode(["uint256"], [10**24])
    raw = deployer.sign_transaction(
        {"nonce": 0, "gas": 3_000_000, "gasPrice": 0, "data": data, "chainId": 1337}
    ).raw_transaction
    pending = build_and_commit(chain, [decode_transaction(bytes(raw))], timestamp=5)
    created = pending.executed.transactions[0].contract_address
    assert len(created) == 20
    assert chain.state_at(chain.head).get_code(Address(created)) != b""


def test_genesis_deploys_contracts_by_running_their_init_code() -> None:
    import dataclasses

    from eth_abi import encode

    from node.chain.calls import CallExecutor, CallRequest
    from node.chain.genesis import GENESIS_DEPLOYER, Deployment, Genesis

    artifact = load_artifact("DevToken")
    address = bytes.fromhex("00000000000000000000000000000000000a11ce")
    init_code = bytes.fromhex(artifact["bytecode"][2:]) + encode(["uint256"], [777])
    genesis = dataclasses.replace(
        dev_genesis(VALIDATOR), deployments=(Deployment(address, init_code, "DevToken"),)
    )
    assert Genesis.from_json(genesis.to_json()) == genesis
    first = Chain(ChainStore(MemoryStore()), genesis)
    second = Chain(ChainStore(MemoryStore()), Genesis.from_json(genesis.to_json()))
    assert first.head_hash == second.head_hash
    calls = CallExecutor(first, first.genesis.gas_limit)
    balance_of = bytes.fromhex("70a08231") + encode(["address"], ["0x" + GENESIS_DEPLOYER.hex()])
    result = calls.call(CallRequest(VALIDATOR, address, balance_of, 0, None), first.head)
    assert int.from_bytes(result.output, "big") == 777
    assert dev_genesis(VALIDATOR).header(MemoryStore()).state_root != first.head.state_root


def test_the_latest_records_stay_decoded_and_equal_what_the_store_holds(tmp_path: Path) -> None:
    store = LevelDBStore(tmp_path)
    try:
        chain = Chain(ChainStore(store, recent_records=3), dev_genesis(VALIDATOR))
        txs = transfers(4)
        built = build_and_commit(chain, txs[:2], timestamp=10)
        assert chain.store.receipt(built.executed.transactions[0].tx_hash) is not None
        later = build_and_commit(chain, txs[2:], timestamp=11)
        hashes = [t.tx_hash for t in built.executed.transactions + later.executed.transactions]
        on_disk = ChainStore(store)  # a second reader of the same LevelDB: decodes every read
        for tx_hash in hashes:
            assert chain.store.receipt(tx_hash) == on_disk.receipt(tx_hash) is not None
            assert chain.store.transaction(tx_hash) == on_disk.transaction(tx_hash) is not None
        # With the stored records gone, only the latest three are still answered, from memory.
        for tx_hash in hashes:
            del store[schema.receipt_key(tx_hash)]
            del store[schema.transaction_key(tx_hash)]
        assert [chain.store.receipt(h) is not None for h in hashes] == [False, True, True, True]
        assert [chain.store.transaction(h) is not None for h in hashes] == [False, True, True, True]
        # The kept `to` is the transaction's own: the recipient, and None for a creation.
        create = dev_accounts()[1].sign_transaction(
            {"nonce": 1, "gas": 100_000, "gasPrice": 0, "data": "0x600080fd", "chainId": 1337}
        )
        made = build_and_commit(chain, [decode_transaction(bytes(create.raw_transaction))], 12)
        for tx_hash in [*hashes[-2:], made.executed.transactions[0].tx_hash]:
            kept = chain.store.kept(tx_hash)
            assert kept is not None
            assert kept.to == (decode_transaction(kept.transaction.raw).to or None)
        assert kept is not None
        assert kept.to is None and kept.receipt.contract_address
        transfer = chain.store.kept(hashes[-1])
        assert transfer is not None and transfer.to == bytes.fromhex(RECIPIENT[2:])
        # A block built but not committed leaves nothing to read.
        pending = chain.build(
            transfers(1, first_nonce=1), timestamp=13, coinbase=VALIDATOR, extra_data=EXTRA
        )
        assert chain.store.receipt(pending.executed.transactions[0].tx_hash) is None
    finally:
        store.close()
