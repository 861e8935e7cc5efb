"""On-chain permissioning enforced by the node: at the pool, at block validation, and in sync.

In-process tests use real chains with the bank contracts deployed at genesis and the node's
`PermissionRules` wired as the service wires them; the process test runs
`tally dev --permissioned` and changes AccountRules through the 2-of-3 admin group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth.abc import SignedTransactionAPI
from eth_abi import encode
from eth_account import Account
from eth_account.datastructures import SignedMessage
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector
from web3.types import TxReceipt

from contracts import load_artifact
from node.chain.calls import CallExecutor
from node.chain.chain import Chain, PendingBlock
from node.chain.executor import BlockRejected
from node.chain.genesis import dev_accounts, dev_genesis
from node.chain.vm import decode_transaction
from node.domain.contracts import ACCOUNT_RULES, ADMIN_GROUP, NODE_RULES
from node.permissions.rules import PermissionRules
from node.qbftheader.extra_data import QbftExtraData
from node.storage.chainstore import ChainStore
from node.storage.store import MemoryStore
from tests.conftest import NodeProcess, RpcFailure, web3_for

VALIDATOR = b"\x11" * 20
EXTRA = QbftExtraData(b"\x00" * 32, (VALIDATOR,), None, 0, ()).encode()
DEV = dev_accounts()


def permissioned_chain(*, enforce: bool = True) -> Chain:
    """A permissioned dev chain. The rules are read through calls on the chain they govern,
    so (as the node does) the chain is handed a lookup that finds them once they exist."""
    rules: list[PermissionRules] = []
    chain = Chain(
        ChainStore(MemoryStore()),
        dev_genesis(VALIDATOR, permissioned=True),
        sender_rules=lambda parent: rules[0].sender_check(parent) if rules else None,
    )
    if enforce:
        rules.append(
            PermissionRules(CallExecutor(chain, chain.genesis.gas_limit), ACCOUNT_RULES, NODE_RULES)
        )
    return chain


def signed(
    account: LocalAccount, nonce: int, to: bytes, data: bytes = b"", value: int = 0
) -> SignedTransactionAPI:
    tx: dict[str, Any] = {  # eth-account's TransactionDictType wants HexStr for "to"
        "nonce": nonce,
        "gas": 500_000,
        "gasPrice": 0,
        "to": "0x" + to.hex(),
        "value": value,
        "data": data,
        "chainId": 1337,
    }
    raw = account.sign_transaction(tx).raw_transaction
    return decode_transaction(bytes(raw))


def commit(chain: Chain, txs: list[SignedTransactionAPI]) -> PendingBlock:
    pending = chain.build(
        txs, timestamp=chain.head.timestamp + 1, coinbase=VALIDATOR, extra_data=EXTRA
    )
    chain.commit(pending, pending.header)
    return pending


def admin_call(name: str, *args: Any) -> bytes:
    abi = load_artifact("AccountRules")["abi"]
    (entry,) = [item for item in abi if item.get("name") == name]
    types = [item["type"] for item in entry["inputs"]]
    signature = f"{name}({','.join(types)})"
    return function_signature_to_4byte_selector(signature) + encode(types, list(args))


def propose(target: bytes, data: bytes) -> bytes:
    selector = function_signature_to_4byte_selector("propose(address,bytes)")
    return selector + encode(["address", "bytes"], ["0x" + target.hex(), data])


def approve(proposal_id: int) -> bytes:
    return function_signature_to_4byte_selector("approve(uint256)") + encode(
        ["uint256"], [proposal_id]
    )


def test_the_rules_list_the_dev_accounts_and_the_validator() -> None:
    chain = permissioned_chain()
    rules = PermissionRules(CallExecutor(chain, chain.genesis.gas_limit), ACCOUNT_RULES, NODE_RULES)
    check = rules.sender_check(chain.head)
    assert check is not None
    assert all(check(bytes.fromhex(a.address[2:])) for a in DEV)
    assert not check(bytes.fromhex(Account.create().address[2:]))
    assert rules.allowed_nodes(chain.head) == frozenset({VALIDATOR})


def test_a_builder_leaves_out_forbidden_senders() -> None:
    chain = permissioned_chain()
    stranger = Account.create()
    allowed = signed(DEV[6], 0, b"\x22" * 20)
    forbidden = signed(stranger, 0, b"\x22" * 20)
    pending = chain.build([allowed, forbidden], timestamp=5, coinbase=VALIDATOR, extra_data=EXTRA)
    assert [item.tx for item in pending.executed.transactions] == [allowed]
    assert [reason for _, reason in pending.executed.skipped] == ["sender account not permitted"]


def test_a_validator_rejects_a_block_with_a_forbidden_transaction() -> None:
    rogue = permissioned_chain(enforce=False)  # a faulty proposer that ignores the rules
    honest = permissioned_chain()
    stranger = Account.create()
    tx = signed(stranger, 0, b"\x22" * 20)
    pending = commit(rogue, [tx])
    assert len(pending.executed.transactions) == 1
    with pytest.raises(BlockRejected, match="not permitted"):
        honest.reexecute(pending.header, [decode_transaction(tx.encode())])
    assert honest.head.block_number == 0


def set_code(
    account: LocalAccount, nonce: int, authorization: SignedMessage
) -> SignedTransactionAPI:
    tx: dict[str, Any] = {  # eth-account's TransactionDictType has no authorization lists
        "type": 4,
        "chainId": 1337,
        "nonce": nonce,
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
        "gas": 100_000,
        "to": DEV[0].address,
        "value": 0,
        "data": b"",
        "accessList": [],
        "authorizationList": [authorization],
    }
    raw = account.sign_transaction(tx).raw_transaction
    return decode_transaction(bytes(raw))


def test_authorizations_are_held_to_the_senders_rule() -> None:
    """A set-code authorization acts for its signer: a builder leaves out a transaction whose
    authorization a forbidden account signed, and a validator rejects a block holding one."""
    stranger = Account.create()
    foreign = stranger.sign_authorization({"chainId": 1337, "address": DEV[0].address, "nonce": 0})
    own = DEV[7].sign_authorization({"chainId": 1337, "address": DEV[0].address, "nonce": 0})
    chain = permissioned_chain()
    forbidden, allowed = set_code(DEV[6], 0, foreign), set_code(DEV[6], 1, own)
    pending = chain.build([forbidden], timestamp=5, coinbase=VALIDATOR, extra_data=EXTRA)
    assert [reason for _, reason in pending.executed.skipped] == [
        "authorization signer not permitted"
    ]
    rogue, honest = permissioned_chain(enforce=False), permissioned_chain()
    made = commit(rogue, [forbidden, allowed])
    assert len(made.executed.transactions) == 2
    with pytest.raises(BlockRejected, match=f"authority 0x{stranger.address[2:].lower()}"):
        honest.reexecute(
            made.header, [decode_transaction(tx.encode()) for tx in (forbidden, allowed)]
        )
    assert honest.head.block_number == 0
    fine = commit(permissioned_chain(enforce=False), [set_code(DEV[6], 0, own)])
    checked = honest.reexecute(fine.header, [set_code(DEV[6], 0, own)])
    assert checked.header.hash == fine.header.hash


def test_history_made_before_a_removal_still_syncs() -> None:
    source = permissioned_chain()
    customer = DEV[9]
    customer_address = bytes.fromhex(customer.address[2:])
    blocks = [commit(source, [signed(customer, 0, b"\x33" * 20)])]
    removal = admin_call("removeAccount", customer.address)
    blocks.append(commit(source, [signed(DEV[0], 0, ADMIN_GROUP, propose(ACCOUNT_RULES, removal))]))
    blocks.append(commit(source, [signed(DEV[1], 0, ADMIN_GROUP, approve(1))]))
    after = source.sender_rules(source.head)
    assert after is not None and not after(customer_address)
    late = source.build(
        [signed(customer, 1, b"\x33" * 20)],
        timestamp=source.head.timestamp + 1,
        coinbase=VALIDATOR,
        extra_data=EXTRA,
    )
    assert late.executed.transactions == []

    newcomer = permissioned_chain()
    for pending in blocks:
        txs = [decode_transaction(item.tx.encode()) for item in pending.executed.transactions]
        replay = newcomer.reexecute(pending.header, txs)
        newcomer.commit(replay, pending.header)
    assert newcomer.head_hash == source.head_hash


def test_permissioned_dev_node_enforces_account_rules(
    node_factory: Callable[..., NodeProcess],
) -> None:
    node = node_factory(extra_args=("--permissioned",))
    w3 = web3_for(node.url)
    stranger = Account.create()
    with pytest.raises(RpcFailure) as refused:
        node.rpc(
            "eth_sendRawTransaction",
            [
                "0x"
                + stranger.sign_transaction(
                    {
                        "nonce": 0,
                        "gas": 21000,
                        "gasPrice": 0,
                        "to": DEV[0].address,
                        "value": 0,
                        "chainId": 1337,
                    }
                ).raw_transaction.hex()
            ],
        )
    assert refused.value.code == -32000
    assert "not authorized to send transactions" in refused.value.message
    assert (
        node.rpc(
            "eth_call",
            [
                {
                    "from": stranger.address,
                    "to": "0x" + ACCOUNT_RULES.hex(),
                    "data": "0x" + admin_call("isAllowed", stranger.address).hex(),
                },
                "latest",
            ],
        )
        == "0x" + "00" * 32
    )

    def send(account: LocalAccount, to: bytes, data: bytes) -> TxReceipt:
        tx = account.sign_transaction(
            {
                "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                "gas": 500_000,
                "gasPrice": 0,
                "to": w3.to_checksum_address("0x" + to.hex()),
                "data": data,
                "chainId": 1337,
            }
        )
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(tx.raw_transaction), timeout=30
        )
        assert receipt["status"] == 1
        return receipt

    customer = DEV[8]
    send(customer, b"\x44" * 20, b"")
    send(DEV[0], ADMIN_GROUP, propose(ACCOUNT_RULES, admin_call("removeAccount", customer.address)))
    # One approval (the proposer's) of the 2 required: the change has not applied.
    still = customer.sign_transaction(
        {"nonce": 1, "gas": 21000, "gasPrice": 0, "to": DEV[0].address, "value": 0, "chainId": 1337}
    )
    assert (
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(still.raw_transaction), timeout=30
        )["status"]
        == 1
    )
    send(DEV[1], ADMIN_GROUP, approve(1))
    late = customer.sign_transaction(
        {"nonce": 2, "gas": 21000, "gasPrice": 0, "to": DEV[0].address, "value": 0, "chainId": 1337}
    )
    with pytest.raises(RpcFailure, match="not authorized"):
        node.rpc("eth_sendRawTransaction", ["0x" + late.raw_transaction.hex()])
