"""The issuer's side of WalletToken, through the SDK: mint, burn and reject with the issuer's
key (any `client` key store: the encrypted file store or a PKCS#11 token), and the reads the
gateway checks the chain with (top-up references, withdrawal status, logs).

Transactions are sent without waiting (`wait=False`) so the outbox can send many per block;
`outcome` then asks, without blocking, whether one is final and how it ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from eth_utils import event_abi_to_log_topic, to_checksum_address

from client import KeyStore
from client.errors import FinalityTimeout, TransactionFailed
from client.tokens import WalletToken, WithdrawalStatus
from client.wallet import Wallet

#: WalletToken's address on a `tally dev` chain (the node's genesis puts it there).
DEV_WALLET_TOKEN = "0x000000000000000000000000000000000000a002"


@dataclass(frozen=True)
class WithdrawalLog:
    """One `WithdrawalRequested` event, with its place in the chain."""

    id: int
    holder: str
    amount: int
    ref: str
    block_number: int
    log_index: int


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

    def mint_tx(self, reference: str) -> str | None:
        """The transaction that minted against `reference` (the `Minted` log), if any."""
        return self._first_tx([self._topics["Minted"], None, "0x" + reference])

    def withdrawal_tx(self, withdrawal_id: int, burned: bool) -> str | None:
        """The transaction that burned (or rejected) the withdrawal, if any."""
        event = "WithdrawalBurned" if burned else "WithdrawalRejected"
        return self._first_tx([self._topics[event], "0x" + f"{withdrawal_id:064x}"])

    def _first_tx(self, topics: list[str | None]) -> str | None:
        logs = self.wallet.rpc(
            "eth_getLogs",
            {"address": self.token.address, "fromBlock": "0x0", "toBlock": "latest",
             "topics": topics},
        )  # fmt: skip
        return str(logs[0]["transactionHash"]) if logs else None

    def settled_on(self, start: float, end: float) -> tuple[dict[str, int], dict[int, int]]:
        """Mints by reference (64 hex) and burns by withdrawal id, with their amounts, in
        blocks stamped in [start, end) (Unix seconds). Reads every such log once and each
        block's timestamp once: fine for a day's reconciliation, not an index."""
        logs = self.wallet.rpc(
            "eth_getLogs",
            {"address": self.token.address, "fromBlock": "0x0", "toBlock": "latest",
             "topics": [[self._topics["Minted"], self._topics["WithdrawalBurned"]]]},
        )  # fmt: skip
        stamps: dict[str, int] = {}
        minted: dict[str, int] = {}
        burned: dict[int, int] = {}
        for log in logs:
            block = log["blockNumber"]
            if block not in stamps:
                header = self.wallet.rpc("eth_getBlockByNumber", block, False)
                stamps[block] = int(header["timestamp"], 16)
            if not start <= stamps[block] < end or log.get("removed"):
                continue
            if log["topics"][0] == self._topics["Minted"]:
                minted[log["topics"][2][2:]] = int(log["data"][2:66], 16)
            else:
                burned[int(log["topics"][1], 16)] = int(log["data"][2:66], 16)
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
