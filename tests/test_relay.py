"""A transaction is admitted against the committed head, even while `Chain.tip` lags it.

`Chain.commit` writes a block's batch from a worker thread and swaps `tip` afterwards; in
between, the event loop can serve the block's receipt. A client funded by that block, which
sends from the funded account as soon as it read the receipt, was refused "insufficient
funds" when the relay read the state at `tip` (`tests/test_web3_e2e.py` hit it once in CI,
under load). Here the relay's submission runs at exactly that moment: right after the
block's batch is written (a real LevelDB), before `commit` returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.chain.genesis import dev_accounts
from node.query.reader import ChainReader
from node.query.relay import Relay
from node.storage.chainstore import ChainStore
from node.storage.records import ReceiptRecord
from node.storage.store import StoreBatch
from node.txpool.admission import AdmissionRules
from node.txpool.pool import PoolConfig, TxPool
from node.txpool.transaction import PooledTransaction
from tests.test_chain import build_and_commit, new_chain


def _signed(account: LocalAccount, nonce: int, to: str, value: int) -> bytes:
    tx: dict[str, Any] = {
        "nonce": nonce,
        "gas": 21000,
        "gasPrice": 0,
        "to": to,
        "value": value,
        "chainId": 1337,
    }
    return bytes(account.sign_transaction(tx).raw_transaction)


def test_a_sender_funded_by_a_block_whose_receipt_is_out_is_admitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = new_chain(tmp_path / "chain")
    pool = TxPool(PoolConfig(), AdmissionRules(chain_id=1337, block_gas_limit=10**9))
    relay = Relay(chain, pool)
    reader = ChainReader(chain)
    funded = Account.create()
    funding = _signed(dev_accounts()[0], 0, funded.address, 10**18)
    spend = _signed(funded, 0, "0x" + "33" * 20, 12345)
    pooled = pool.add(funding, chain.state_at(chain.head))
    seen: dict[str, ReceiptRecord | PooledTransaction | None] = {}

    written = ChainStore.commit

    def commit_then_serve_the_client(store: ChainStore, batch: StoreBatch) -> None:
        written(store, batch)
        # The event loop's turn, between the batch write and the `tip` swap.
        assert chain.head.block_number == 0
        seen["receipt"] = reader.store.receipt(pooled.hash)
        seen["admitted"] = relay.submit(spend)

    monkeypatch.setattr(ChainStore, "commit", commit_then_serve_the_client)
    build_and_commit(chain, [pooled.tx], timestamp=chain.head.timestamp + 1)

    assert seen["receipt"] is not None
    admitted = seen["admitted"]
    assert isinstance(admitted, PooledTransaction)
    assert admitted.sender == bytes.fromhex(funded.address[2:])
    assert chain.head.block_number == 1
