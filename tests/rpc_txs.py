"""Signing and sending helpers shared by the JSON-RPC tests of logs, filters, subscriptions,
proofs and fees: everything goes through a real node as raw signed transactions."""

from __future__ import annotations

from typing import Any

from eth_hash.auto import keccak
from web3 import Web3
from web3.contract import Contract

from contracts import load_artifact

POKED_TOPIC = "0x" + keccak(b"Poked(address,uint256)").hex()


def address_topic(address: str) -> str:
    """An address as an indexed-event topic (left-padded to 32 bytes, lowercase)."""
    return "0x" + address[2:].lower().rjust(64, "0")


def sign(w3: Web3, account: Any, tx: dict, nonce: int | None = None) -> bytes:
    """A raw signed transaction (gas price 0 unless the caller set fees)."""
    fees = {} if "maxFeePerGas" in tx or "gasPrice" in tx else {"gasPrice": 0}
    if nonce is None:
        nonce = w3.eth.get_transaction_count(account.address, "pending")
    full = {"chainId": w3.eth.chain_id, "gas": 200_000, **fees, **tx, "nonce": nonce}
    full.pop("from", None)
    return bytes(account.sign_transaction(full).raw_transaction)


def send(w3: Web3, account: Any, tx: dict) -> dict:
    """Sign, send and wait for the receipt."""
    tx_hash = w3.eth.send_raw_transaction(sign(w3, account, tx))
    return dict(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30))


def deploy(w3: Web3, account: Any, name: str, *args: Any) -> Contract:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor(*args).build_transaction(
        {"from": account.address, "gasPrice": 0, "gas": 3_000_000, "nonce": 0, "chainId": 1}
    )
    receipt = send(w3, account, {"data": tx["data"], "gas": 3_000_000})
    assert receipt["status"] == 1
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def poke_tx(probe: Contract, value: int) -> dict:
    """The `to`/`data` of `Probe.poke(value)` (signing adds the rest)."""
    return {"to": probe.address, "data": probe.encode_abi("poke", [value]), "gas": 100_000}
