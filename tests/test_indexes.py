"""The auditor indexes a node writes at block commit, read back from its LevelDB files.

A dev node runs real wallet payments, an escrow, a batch payout and a netting cycle through the
genesis contracts; the node is then stopped and its datadir opened with `ChainIndex`, whose
answers are compared with what JSON-RPC said about the same transactions (receipts and logs).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from contracts import load_artifact
from node.domain.contracts import BATCH_PAYOUT, ESCROW, NETTING, WALLET_TOKEN
from node.domain.indexes import ChainIndex, LogPosition
from node.storage.store import LevelDBStore
from tests.conftest import NodeProcess, free_port, web3_for

ADMIN, ISSUER, ENTERPRISE_A, ENTERPRISE_B, CUSTOMER_A, CUSTOMER_B, CUSTOMER_C = 0, 1, 3, 4, 6, 7, 8
EXTERNAL = 1
_refs = itertools.count(1)


def ref() -> bytes:
    return (0x1D << 248 | next(_refs)).to_bytes(32, "big")


class Bank:
    """The genesis contracts and a way to run one signed call to completion."""

    def __init__(self, w3: Web3, accounts: list[LocalAccount]) -> None:
        self.w3 = w3
        self.accounts = accounts

        def contract(name: str, address: bytes) -> Any:
            return w3.eth.contract(
                address=Web3.to_checksum_address(address), abi=load_artifact(name)["abi"]
            )

        self.token = contract("WalletToken", WALLET_TOKEN)
        self.escrow = contract("Escrow", ESCROW)
        self.payout = contract("BatchPayout", BATCH_PAYOUT)
        self.netting = contract("Netting", NETTING)

    def address(self, index: int) -> str:
        return self.accounts[index].address

    def run(self, index: int, call: Any) -> Any:
        account = self.accounts[index]
        tx = call.build_transaction(
            {
                "from": account.address,
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                "gas": 2_000_000,
                "gasPrice": 0,
            }
        )
        signed = account.sign_transaction(tx)
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(signed.raw_transaction), timeout=30
        )
        assert receipt["status"] == 1, receipt
        return receipt


IndexedChain = tuple[ChainIndex, dict[str, Any], Bank]


@pytest.fixture(scope="module")
def indexed_chain(
    tmp_path_factory: pytest.TempPathFactory, dev_accounts: list[LocalAccount]
) -> Iterator[IndexedChain]:
    """Run the settlement tour on a fresh dev node, stop it, open its LevelDB."""
    datadir = tmp_path_factory.mktemp("indexed")
    node = NodeProcess(datadir, free_port(), free_port()).start()
    try:
        bank = Bank(web3_for(node.url), dev_accounts)
        token, a, b = bank.token, bank.address(ENTERPRISE_A), bank.address(ENTERPRISE_B)
        receipts: dict[str, Any] = {}
        for who, amount in ((ENTERPRISE_A, 1_000_00), (CUSTOMER_A, 500_00)):
            bank.run(ISSUER, token.functions.mint(bank.address(who), amount, ref()))
        receipts["internal"] = bank.run(
            CUSTOMER_A, token.functions.transfer(bank.address(CUSTOMER_B), 10_00)
        )
        receipts["external"] = bank.run(
            CUSTOMER_A,
            token.functions.transferExternal(bank.address(CUSTOMER_C), 20_00, EXTERNAL),
        )
        bank.run(ENTERPRISE_A, token.functions.approve(bank.escrow.address, 150_00))
        deadline = bank.w3.eth.get_block("latest")["timestamp"] + 3600
        receipts["escrow_open"] = bank.run(
            ENTERPRISE_A,
            bank.escrow.functions.open(
                b, bank.address(CUSTOMER_C), [100_00, 50_00], deadline, ref()
            ),
        )
        receipts["escrow_release"] = bank.run(ENTERPRISE_A, bank.escrow.functions.release(1, 0))
        bank.run(ENTERPRISE_A, token.functions.approve(bank.payout.address, 11_00))
        receipts["batch"] = bank.run(
            ENTERPRISE_A,
            bank.payout.functions.pay(
                [bank.address(CUSTOMER_A), bank.address(CUSTOMER_B)], [5_00, 6_00], ref()
            ),
        )
        bank.run(ENTERPRISE_A, bank.netting.functions.record(b, 30_00, ref()))
        bank.run(ENTERPRISE_B, bank.netting.functions.record(a, 10_00, ref()))
        bank.run(ENTERPRISE_A, token.functions.approve(bank.netting.address, 20_00))
        receipts["netting"] = bank.run(
            ENTERPRISE_A, bank.netting.functions.settleCycle([a, b], [-20_00, 20_00])
        )
        receipts["all_transfers"] = bank.w3.eth.get_logs(
            {
                "fromBlock": 0,
                "toBlock": "latest",
                "topics": [Web3.keccak(text="Transfer(address,address,uint256)")],
            }
        )
    finally:
        node.stop()
    store = LevelDBStore(datadir / "chaindata")
    yield ChainIndex(store), receipts, bank
    store.close()


def test_token_transfers_by_account_match_the_chain_logs(indexed_chain: IndexedChain) -> None:
    index, receipts, bank = indexed_chain
    customer = bytes.fromhex(bank.address(CUSTOMER_A)[2:])
    expected = [
        (log["blockNumber"], log["transactionIndex"], log["logIndex"])
        for log in receipts["all_transfers"]
        if customer[-20:] in (log["topics"][1][12:], log["topics"][2][12:])
    ]
    rows = list(index.token_transfers(customer, newest_first=False))
    assert [
        (r.position.block_number, r.position.tx_index, r.position.log_index) for r in rows
    ] == expected
    assert rows[0].sender == b"\x00" * 20 and rows[0].amount == 500_00
    assert list(index.token_transfers(customer)) == rows[::-1]


def test_pages_resume_strictly_after_their_cursor(indexed_chain: IndexedChain) -> None:
    index, _, bank = indexed_chain
    enterprise = bytes.fromhex(bank.address(ENTERPRISE_A)[2:])
    for newest_first in (True, False):
        everything = list(index.token_transfers(enterprise, newest_first=newest_first))
        assert len(everything) >= 5
        pages, cursor = [], None
        while True:
            page = list(
                itertools.islice(
                    index.token_transfers(enterprise, newest_first=newest_first, after=cursor), 2
                )
            )
            if not page:
                break
            pages.extend(page)
            cursor = page[-1].position
        assert pages == everything
    transactions = list(index.account_transactions(enterprise))
    assert list(index.account_transactions(enterprise, after=transactions[2])) == transactions[3:]


def test_fee_payments_come_only_from_the_wallet_token(indexed_chain: IndexedChain) -> None:
    index, receipts, bank = indexed_chain
    payer = bytes.fromhex(bank.address(CUSTOMER_A)[2:])
    (fee,) = index.fee_payments(payer)
    charged = bank.token.events.FeeCharged().process_receipt(receipts["external"], DISCARD)[0]
    assert fee.kind == EXTERNAL and fee.amount == 20_00 and fee.fee == charged.args.fee > 0
    assert fee.tx_hash == bytes(receipts["external"]["transactionHash"])
    assert fee.position.log_index == charged.logIndex
    assert list(index.fee_payments(bytes.fromhex(bank.address(CUSTOMER_B)[2:]))) == []


def test_settlements_by_party_and_state(indexed_chain: IndexedChain) -> None:
    index, receipts, bank = indexed_chain
    a, b = (bytes.fromhex(bank.address(i)[2:]) for i in (ENTERPRISE_A, ENTERPRISE_B))
    escrow = index.settlement("escrow", 1)
    assert escrow is not None
    assert (escrow.state, escrow.total, escrow.settled) == ("open", 150_00, 100_00)
    assert escrow.parties[:2] == (a, b)
    assert [e.name for e in escrow.events] == ["EscrowOpened", "MilestoneReleased"]
    assert escrow.events[1].tx_hash == bytes(receipts["escrow_release"]["transactionHash"])

    batch = index.settlement("batch", 1)
    assert batch is not None and batch.state == "paid" and batch.total == batch.settled == 11_00
    assert batch.parties[0] == a and len(batch.parties) == 3

    cycle = index.settlement("netting", 1)
    assert cycle is not None
    assert (cycle.state, cycle.total, cycle.settled) == ("settled", 40_00, 20_00)
    assert set(cycle.parties) == {a, b}

    mine = list(index.settlements(party=a))
    assert [(s.kind, s.id) for s in mine] == [("netting", 1), ("batch", 1), ("escrow", 1)]
    assert [(s.kind, s.id) for s in index.settlements(party=b)] == [
        ("netting", 1),
        ("escrow", 1),
    ]
    assert list(index.settlements(party=a, after=("batch", 1))) == mine[2:]
    assert list(index.settlements()) == mine
    assert index.settlement("escrow", 99) is None


def test_time_range_maps_to_blocks(indexed_chain: IndexedChain) -> None:
    index, receipts, _ = indexed_chain
    block = receipts["batch"]["blockNumber"]
    first = index.block_at_or_after(0)
    assert first == 0
    head = index.block_at_or_before(2**40)
    assert head is not None and head >= block
    assert index.block_at_or_after(2**40) is None
    position = LogPosition(block, 0, 0)
    assert position < LogPosition(block + 1, 0, 0)
