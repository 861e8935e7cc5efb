"""Real node processes on loopback: a validator and a member linked by authenticated p2p.

The member forwards transactions to the validator by gossip, imports every block after
checking its commit seals, serves reads, and a member started on an empty datadir catches up
from genesis. A node whose key is not in network.json is refused.

# Runs alone, after the parallel tests (scripts/test.sh): p2p links with silence timeouts.
pytestmark = pytest.mark.serial
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from node import localnet
from node.ports import free_ports
from tests.conftest import admin_token, rpc_call, web3_for


@pytest.fixture
def network(tmp_path: Path) -> Iterator[list[localnet.LocalNode]]:
    nodes = localnet.up(tmp_path / "net", validators=1, members=1)
    try:
        yield nodes
    finally:
        localnet.down(tmp_path / "net")


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def admin_peers(directory: Path, node: localnet.LocalNode) -> list[str]:
    """The addresses `admin_peers` lists, asked on the node's admin listener."""
    peers = rpc_call(node.admin_url, "admin_peers", [], admin_token(directory / node.name))
    assert isinstance(peers, list)
    return [peer["address"] for peer in peers]


def test_member_forwards_transactions_and_follows_the_chain(
    network: list[localnet.LocalNode], dev_accounts: list[LocalAccount], tmp_path: Path
) -> None:
    validator, member = (web3_for(node.url) for node in network)
    wait_for(lambda: member.net.peer_count == 1 and validator.net.peer_count == 1, what="the link")
    sender = dev_accounts[3]
    recipient = Account.create().address
    hashes = []
    for nonce in range(10):
        signed = sender.sign_transaction(
            {
                "nonce": nonce,
                "gas": 21000,
                "gasPrice": 0,
                "to": recipient,
                "value": 5,
                "chainId": 1337,
            }
        )
        hashes.append(member.eth.send_raw_transaction(signed.raw_transaction))
    receipt = member.eth.wait_for_transaction_receipt(hashes[-1], timeout=30)
    assert receipt["status"] == 1
    wait_for(lambda: validator.eth.block_number >= receipt["blockNumber"], what="validator head")
    assert member.eth.get_balance(recipient) == validator.eth.get_balance(recipient) == 50
    number = receipt["blockNumber"]
    assert member.eth.get_block(number)["hash"] == validator.eth.get_block(number)["hash"]
    assert admin_peers(tmp_path / "net", network[1]) == [network[0].address]


def test_a_member_with_an_empty_datadir_catches_up(
    network: list[localnet.LocalNode], dev_accounts: list[LocalAccount], tmp_path: Path
) -> None:
    validator = web3_for(network[0].url)
    sender = dev_accounts[4]
    for nonce in range(3):
        signed = sender.sign_transaction(
            {
                "nonce": nonce,
                "gas": 21000,
                "gasPrice": 0,
                "to": sender.address,
                "value": 0,
                "chainId": 1337,
            }
        )
        tx_hash = validator.eth.send_raw_transaction(signed.raw_transaction)
        validator.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    head = validator.eth.block_number
    assert head >= 3
    directory = tmp_path / "net"
    member = network[1]
    localnet.down(directory)
    for item in (directory / member.name / "chaindata").iterdir():
        item.unlink()
    (directory / member.name / "chaindata").rmdir()
    nodes = localnet.up(directory, validators=1, members=1)
    fresh = web3_for(nodes[1].url)
    wait_for(lambda: fresh.eth.block_number >= head, what="catch-up")
    for number in range(head + 1):
        assert fresh.eth.get_block(number)["hash"] == validator.eth.get_block(number)["hash"]


def test_a_node_with_an_unknown_key_is_refused(
    network: list[localnet.LocalNode], tmp_path: Path
) -> None:
    directory = tmp_path / "net"
    rpc_port, ws_port, p2p_port = free_ports(3)  # named: mypy cannot count a starred list
    intruder = localnet.LocalNode("intruder", "0x" + "00" * 20, False, rpc_port, ws_port, p2p_port)
    (directory / "intruder").mkdir()
    localnet.start_node(directory, intruder)
    try:
        wait_for(lambda: localnet.rpc(intruder, "eth_chainId") is not None, what="intruder up")
        validator_log = directory / network[0].name / "node.log"
        wait_for(lambda: "refused inbound" in validator_log.read_text(), what="a refusal")
        assert localnet.rpc(intruder, "net_peerCount") == "0x0"
        assert web3_for(network[0].url).net.peer_count == 1
    finally:
        localnet.stop_node(intruder)


def test_a_node_removed_from_node_rules_is_disconnected(tmp_path: Path) -> None:
    from eth_abi import encode
    from eth_account import Account
    from eth_utils import function_signature_to_4byte_selector

    from node.domain.contracts import ADMIN_GROUP, NODE_RULES

    directory = tmp_path / "permissioned"
    nodes = localnet.up(directory, validators=1, members=2, permissioned=True)
    try:
        validator = web3_for(nodes[0].url)
        wait_for(lambda: validator.net.peer_count == 2, what="both members linked")
        removed = nodes[2].address
        remove_node = function_signature_to_4byte_selector("removeNode(address)") + encode(
            ["address"], [removed]
        )
        calls = [
            function_signature_to_4byte_selector("propose(address,bytes)")
            + encode(["address", "bytes"], ["0x" + NODE_RULES.hex(), remove_node]),
            function_signature_to_4byte_selector("approve(uint256)") + encode(["uint256"], [1]),
        ]
        # The admin group's keys are generated for the network, never the dev accounts'.
        admins = [
            Account.from_key((directory / "bank-keys" / f"admin-{n}.key").read_text().strip())
            for n in (1, 2)
        ]
        for admin, data in zip(admins, calls, strict=True):
            signed = admin.sign_transaction(
                {
                    "nonce": validator.eth.get_transaction_count(admin.address, "pending"),
                    "gas": 300_000,
                    "gasPrice": 0,
                    "chainId": 1337,
                    "data": data,
                    "to": validator.to_checksum_address("0x" + ADMIN_GROUP.hex()),
                }
            )
            receipt = validator.eth.wait_for_transaction_receipt(
                validator.eth.send_raw_transaction(signed.raw_transaction), timeout=30
            )
            assert receipt["status"] == 1
        wait_for(lambda: validator.net.peer_count == 1, what="the removed node's link to drop")
        assert admin_peers(directory, nodes[0]) == [nodes[1].address]
        time.sleep(3)
        assert validator.net.peer_count == 1, "the removed node got back in"
    finally:
        localnet.down(directory)
