"""A dev chain in one process, for benchmarks that time block building without a node.

`benchmarks/execution.py` and `benchmarks/internal_calls.py` both build blocks of pre-signed
transfers straight through `node.chain.Chain`, as a validator's builder does, so that what
they time is execution and not JSON-RPC, the pool or consensus. What they share is here: the
chain on a dev genesis, signing (the dev account's own nonces counted), transactions handed
over as the pool admits them (decoded, sender recovered before the clock starts), blocks built
and committed, and the OpenZeppelin ERC-20 (`DevToken`) they pay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from contracts import load_artifact
from node.chain.admitted import AdmittedTransaction, Executable
from node.chain.chain import Chain, PendingBlock
from node.chain.executor import ExecutedTransaction, tx_hash_of
from node.chain.genesis import dev_accounts, dev_genesis
from node.chain.vm import decode_transaction
from node.qbftheader.extra_data import QbftExtraData
from node.storage.chainstore import ChainStore
from node.storage.store import KeyValueStore

VALIDATOR = b"\x11" * 20
EXTRA = QbftExtraData(b"\x00" * 32, (VALIDATOR,), None, 0, ()).encode()
TRANSFER = function_signature_to_4byte_selector("transfer(address,uint256)")


def signed(
    account: LocalAccount,
    nonce: int,
    to: bytes | str | None,
    data: bytes = b"",
    gas: int = 100_000,
    value: int = 0,
) -> bytes:
    """A legacy transaction on the dev chain (1337) at gas price 0; `to` None creates."""
    fields: dict[str, Any] = {
        "nonce": nonce,
        "gas": gas,
        "gasPrice": 0,
        "value": value,
        "data": data,
        "chainId": 1337,
    }
    if to is not None:
        fields["to"] = to_checksum_address(to)
    return bytes(account.sign_transaction(fields).raw_transaction)


def admitted(raws: Sequence[bytes]) -> list[AdmittedTransaction]:
    """`raws` decoded with senders recovered before the clock, as the pool admits them."""
    txs = [decode_transaction(raw) for raw in raws]
    return [AdmittedTransaction(tx, tx.sender, tx_hash_of(tx)) for tx in txs]


def pay(to: bytes | str, amount: int) -> bytes:
    """ERC-20 `transfer(to, amount)` call data."""
    return TRANSFER + encode(["address", "uint256"], [to_checksum_address(to), amount])


def token_deployment(supply: int = 10**30) -> bytes:
    """Init code of `DevToken` minting `supply` to its deployer."""
    code = bytes.fromhex(load_artifact("DevToken")["bytecode"][2:])
    return code + encode(["uint256"], [supply])


class DevChain:
    """A dev-genesis chain on `store`, its dev account's nonces counted."""

    def __init__(self, store: KeyValueStore) -> None:
        self.chain = Chain(ChainStore(store), dev_genesis(VALIDATOR))
        self.dev = dev_accounts()[0]
        self.nonce = 0

    @property
    def next_timestamp(self) -> int:
        return self.chain.head.timestamp + 1

    def sign(
        self, to: bytes | str | None, data: bytes = b"", gas: int = 100_000, value: int = 0
    ) -> bytes:
        """A transaction from the dev account, at its next nonce."""
        raw = signed(self.dev, self.nonce, to, data, gas, value)
        self.nonce += 1
        return raw

    def build(self, transactions: Sequence[Executable]) -> PendingBlock:
        """One block of `transactions` built on the head, not committed."""
        return self.chain.build(
            transactions, timestamp=self.next_timestamp, coinbase=VALIDATOR, extra_data=EXTRA
        )

    def commit(self, transactions: Sequence[Executable]) -> list[ExecutedTransaction]:
        """Build one block of `transactions` on the head and commit it; all must go in."""
        pending = self.build(transactions)
        included = pending.executed.transactions
        if len(included) != len(transactions):
            left = pending.executed.skipped[:1] or "deferred: the block's gas limit"
            raise SystemExit(f"{len(transactions) - len(included)} left out of a block: {left}")
        self.chain.commit(pending, pending.header)
        return included
