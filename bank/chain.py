"""The issuer's side of WalletToken, through the SDK: mint, burn and reject with the issuer's
key (any `client` key store: the encrypted file store or a PKCS#11 token), and the reads the
gateway checks the chain with (top-up references, withdrawal status, logs).

Transactions are sent without waiting (`wait=False`) so the outbox can send many per block;
`outcome` then asks, without blocking, whether one is final and how it ended.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from eth_utils import event_abi_to_log_topic, to_checksum_address

from client import KeyStore
from client.errors import FinalityTimeout, TransactionFailed
from client.tokens import WalletToken, WithdrawalStatus
from client.wallet import Wallet

#: WalletToken's address on a `tally dev` chain (the node's genesis puts it there).
DEV_WALLET_TOKEN = "0x000000000000000000000000000000000000a002"
LOG_RANGE = 10_000
"""Blocks per `eth_getLogs` query: the node's default cap on one query's range."""


@dataclass(frozen=True)
class WithdrawalLog:
    """One `WithdrawalRequested` event, with its place in the chain."""

    id: int
    holder: str
    amount: int
    ref: str
    block_number: int
    log_index: int


@dataclass(frozen=True)
class Settled:
    """A mint or burn on chain: its amount and block."""

    amount: int
    block: int


def reason_bytes(reason: str) -> bytes:
    """A short ASCII reason as WalletToken's bytes32 (right-padded with zeros)."""
    return reason.encode("ascii", "replace")[:32].ljust(32, b"\0")


class Issuer:
    """The issuer key bound to the wallet token at `token`."""

    def __init__(self, store: KeyStore, label: str, rpc: str, token: str) -> None:
        self.wallet = Wallet(store, label, rpc)
        self.token = WalletToken(self.wallet, token)
        requested = self.token.contract.events.WithdrawalRequested
        self._requested_topic = "0x" + event_abi_to_log_topic(requested.abi).hex()
        events = self.token.contract.events
        self._topics = {
            name: "0x" + event_abi_to_log_topic(events[name].abi).hex()
            for name in ("Minted", "WithdrawalBurned", "WithdrawalRejected")
        }

    @property
    def address(self) -> str:
        return self.wallet.address

    def mint(self, to: str, amount: int, reference: str) -> str:
        return self.token.mint(to, amount, bytes.fromhex(reference), wait=False).tx_hash

    def burn(self, withdrawal_id: int) -> str:
        return self.token.burn_withdrawal(withdrawal_id, wait=False).tx_hash

    def reject(self, withdrawal_id: int, reason: str) -> str:
        return self.token.reject_withdrawal(withdrawal_id, reason_bytes(reason), wait=False).tx_hash

    def outcome(self, tx_hash: str) -> Literal["pending", "succeeded", "reverted"]:
        """Where a sent transaction stands, without waiting."""
        try:
            self.wallet.wait_for_finality(tx_hash, timeout=0)
        except FinalityTimeout:
            return "pending"
        except TransactionFailed:
            return "reverted"
        return "succeeded"

    def topped_up(self, reference: str) -> bool:
        return self.token.topped_up(bytes.fromhex(reference))

    def mint_tx(self, reference: str, since: float) -> str | None:
        """The transaction that minted against `reference` (the `Minted` log) in a block
        stamped at or after `since` (Unix seconds), if any."""
        return self._first_tx([self._topics["Minted"], None, "0x" + reference], since)

    def withdrawal_tx(self, withdrawal_id: int, burned: bool, since: float) -> str | None:
        """The transaction that burned (or rejected) the withdrawal since `since`, if any."""
        event = "WithdrawalBurned" if burned else "WithdrawalRejected"
        return self._first_tx([self._topics[event], "0x" + f"{withdrawal_id:064x}"], since)

    def _first_tx(self, topics: list[str | None], since: float) -> str | None:
        for log in self._logs(topics, self.block_at(since), self.head()):
            return str(log["transactionHash"])
        return None

    def head(self) -> int:
        return int(self.wallet.rpc("eth_blockNumber"), 16)

    def stamp(self, number: int) -> int:
        """Block `number`'s timestamp (Unix seconds)."""
        return int(self.wallet.rpc("eth_getBlockByNumber", hex(number), False)["timestamp"], 16)

    def block_at(self, moment: float) -> int:
        """The first block stamped at or after `moment` (the head + 1 if none is yet): a
        binary search over headers, whose timestamps never decrease along the chain, so about
        log2(height) header reads instead of a scan from block 0."""
        low, high = 0, self.head() + 1
        while low < high:
            middle = (low + high) // 2
            if self.stamp(middle) < moment:
                low = middle + 1
            else:
                high = middle
        return low

    def _logs(self, topics: list[Any], first: int, last: int) -> Iterator[dict[str, Any]]:
        """The token's logs matching `topics` in blocks first..last, in chain order, asked for
        `LOG_RANGE` blocks at a time (the node caps one query's range)."""
        for low in range(first, last + 1, LOG_RANGE):
            high = min(last, low + LOG_RANGE - 1)
            logs = self.wallet.rpc(
                "eth_getLogs",
                {"address": self.token.address, "fromBlock": hex(low), "toBlock": hex(high),
                 "topics": topics},
            )  # fmt: skip
            yield from (log for log in logs if not log.get("removed"))

    def settlements(self, first: int, last: int) -> tuple[dict[str, Settled], dict[int, Settled]]:
        """Mints by reference (64 hex) and burns by withdrawal id in blocks first..last, with
        their amounts and blocks."""
        minted: dict[str, Settled] = {}
        burned: dict[int, Settled] = {}
        topics = [[self._topics["Minted"], self._topics["WithdrawalBurned"]]]
        for log in self._logs(topics, first, last):
            settled = Settled(int(log["data"][2:66], 16), int(log["blockNumber"], 16))
            if log["topics"][0] == self._topics["Minted"]:
                minted[log["topics"][2][2:]] = settled
            else:
                burned[int(log["topics"][1], 16)] = settled
        return minted, burned

    def withdrawal_status(self, withdrawal_id: int) -> WithdrawalStatus:
        return self.token.withdrawal(withdrawal_id)[2]

    @property
    def requested_topic(self) -> str:
        """topic0 of `WithdrawalRequested`, the event the gateway's stream carries."""
        return self._requested_topic

    def withdrawal_of(self, event: dict[str, Any]) -> WithdrawalLog | None:
        """A node event-stream event (raw `topics` and `data`) as a withdrawal request, or
        None if it is not this token's `WithdrawalRequested`."""
        topics = event["topics"]
        if event["address"].lower() != self.token.address.lower() or (
            not topics or topics[0] != self._requested_topic
        ):
            return None
        data = event["data"]
        return WithdrawalLog(
            int(topics[1], 16),
            to_checksum_address("0x" + topics[2][-40:]),
            int(data[2:66], 16),
            data[66:130],
            int(event["block_number"]),
            int(event["log_index"]),
        )
