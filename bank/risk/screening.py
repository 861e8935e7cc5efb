"""Pre-submission screening: a wallet app's signed raw transaction is decoded (eth-account for
typed transactions and the sender, rlp for legacy ones), its WalletToken call read from the
token's ABI, and the payment judged by the same rules as the monitor, without being sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import rlp
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3

from bank.risk.rules import Payment, Reason
from client.artifacts import contract_abi
from client.tokens import WalletToken

PAYMENT_FUNCTIONS = ("transfer", "transferExternal", "transferFrom")


class NotAPayment(ValueError):
    """Not a signed transaction, or not a WalletToken payment (the reason is the message)."""


@dataclass(frozen=True)
class Screened:
    tx_hash: str
    payment: Payment


class Decoder:
    def __init__(self, token: str) -> None:
        self.token = to_checksum_address(token)
        self.contract = Web3().eth.contract(address=self.token, abi=contract_abi("WalletToken"))

    def decode(self, raw_hex: str) -> Screened:
        try:
            raw = HexBytes(raw_hex)
            sender = Account.recover_transaction(raw)
            to, data = self._to_and_data(bytes(raw))
        except NotAPayment:
            raise
        except Exception as exc:  # eth-account and rlp raise many kinds for garbage
            raise NotAPayment(f"not a signed transaction: {exc}") from None
        if to is None or to_checksum_address(to) != self.token:
            raise NotAPayment(f"not a call to the WalletToken at {self.token}")
        try:
            function, args = self.contract.decode_function_input(data)
        except ValueError:
            raise NotAPayment("not a WalletToken function") from None
        if function.fn_name not in PAYMENT_FUNCTIONS:
            raise NotAPayment(f"{function.fn_name} is not a payment")
        payer = args["from"] if function.fn_name == "transferFrom" else sender
        payment = Payment(to_checksum_address(payer), to_checksum_address(args["to"]),
                          int(args.get("amount", args.get("value", 0))), time.time())  # fmt: skip
        return Screened("0x" + keccak(bytes(raw)).hex(), payment)

    @staticmethod
    def _to_and_data(raw: bytes) -> tuple[str | None, bytes]:
        if raw and raw[0] <= 0x7F:
            typed = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
            address = typed.get("to")
            return (to_checksum_address(address) if address else None), bytes(
                HexBytes(typed["data"])
            )
        fields = rlp.decode(raw)  # legacy: nonce, gasPrice, gas, to, value, data, v, r, s
        to, data = fields[3], fields[5]
        return ("0x" + to.hex() if to else None), data


def chain_hold(token: WalletToken, payment: Payment) -> Reason | None:
    """Whether WalletToken itself would hold this payment as things stand (a flagged party, or
    an amount over the payer's tier review threshold; 0 reviews nothing), as a reason."""
    found = [
        f"{role} flagged"
        for role, address in (("payer", payment.payer), ("payee", payment.payee))
        if token.is_flagged(address)
    ]
    _role, tier = token.call("holderRole", payment.payer)
    threshold = int(token.call("reviewThreshold", tier))
    if threshold and payment.amount > threshold:
        found.append(f"over the review threshold {threshold}")
    if not found:
        return None
    return Reason("held_on_chain", 0, "the chain would hold it: " + ", ".join(found))
