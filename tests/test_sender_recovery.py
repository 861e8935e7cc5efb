"""`recover_sender` gives the sender py-evm's own recovery gives, for every transaction type.

Admission recovers every sender with `node.chain.vm.recover_sender` and execution trusts it,
so it must agree with py-evm's `tx.sender` (through eth_keys) on every signature: real
transactions signed by eth-account with random keys and fields, each decoded twice, one
recovered each way.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth.constants import SECPK1_N
from eth_account import Account
from eth_keys import keys
from eth_keys.exceptions import BadSignature
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from node.chain.vm import decode_transaction, recover_sender
from tests.test_rpc_rejections import flipped_r, with_signature

CHAIN_ID = 1337
KINDS = ("unprotected", "legacy", "2930", "1559", "7702")

private_keys = st.integers(min_value=1, max_value=SECPK1_N - 1)
addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)


def signed(key: int, kind: str, nonce: int, value: int, data: bytes, to: str) -> bytes:
    account = Account.from_key(key.to_bytes(32, "big"))
    tx: dict[str, Any] = {"nonce": nonce, "gas": 100_000, "value": value, "data": data, "to": to}
    if kind == "unprotected":
        tx["gasPrice"] = 1
    else:
        tx["chainId"] = CHAIN_ID
        if kind == "legacy":
            tx["gasPrice"] = 1
        elif kind == "2930":
            tx.update(type=1, gasPrice=1, accessList=[{"address": to, "storageKeys": []}])
        else:
            tx.update(type=2, maxFeePerGas=3, maxPriorityFeePerGas=2)
            if kind == "7702":
                authority = Account.create()
                tx.update(
                    type=4,
                    accessList=[],
                    authorizationList=[
                        authority.sign_authorization(
                            {"chainId": CHAIN_ID, "address": to, "nonce": 0}
                        )
                    ],
                )
    return bytes(account.sign_transaction(tx).raw_transaction)


@settings(max_examples=150, deadline=None)
@given(
    key=private_keys,
    kind=st.sampled_from(KINDS),
    nonce=st.integers(min_value=0, max_value=2**64 - 2),
    value=st.integers(min_value=0, max_value=2**256 - 1),
    data=st.binary(max_size=80),
    to=addresses,
)
def test_recovers_what_py_evm_recovers(
    key: int, kind: str, nonce: int, value: int, data: bytes, to: str
) -> None:
    raw = signed(key, kind, nonce, value, data, to)
    expected = decode_transaction(raw).sender
    tx = decode_transaction(raw)
    assert recover_sender(tx) == expected
    assert tx.sender == expected  # cached where py-evm reads it
    assert expected == keys.PrivateKey(key.to_bytes(32, "big")).public_key.to_canonical_address()


def test_both_refuse_a_signature_that_recovers_nothing() -> None:
    raw = signed(7, "1559", 0, 1, b"", to_checksum_address(b"\x11" * 20))
    bad = with_signature(raw, r=flipped_r(raw, on_curve=False))
    with pytest.raises(BadSignature):
        _ = decode_transaction(bad).sender
    with pytest.raises(ValueError):
        recover_sender(decode_transaction(bad))
