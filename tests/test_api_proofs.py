"""Proofs, relayed transactions, validators, the merchant registry and payment requests over
the REST API, checked against JSON-RPC and against the proofs themselves."""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Iterator

import pytest
import rlp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from trie import HexaryTrie
from trie.exceptions import BadTrieProof

from tally_common.eip681 import parse_payment_request
from tests.conftest import NodeProcess
from tests.test_api_support import TOKEN, Api, Sender, admin_key, mint, start_node

HAS_SDK_VERIFIER = importlib.util.find_spec("client.proofs") is not None


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = start_node(tmp_path_factory.mktemp("proofs"))
    yield node
    node.stop()


@pytest.fixture(scope="module")
def api(shared_node: NodeProcess) -> Api:
    return Api(shared_node, admin_key(shared_node))


@pytest.fixture(scope="module")
def funded(shared_node: NodeProcess, dev_accounts: list) -> str:
    """Customer 6 with a wallet-token balance (so its token storage slot is non-zero)."""
    sender = Sender(shared_node)
    sender.run([mint(sender, dev_accounts[1], dev_accounts[6].address, 12_345, 900)])
    return dev_accounts[6].address


@pytest.fixture(scope="module")
def balance_slot(shared_node: NodeProcess, funded: str) -> str:
    """A non-zero storage slot of the token, found by reading the first slots rather than
    assuming the contract's layout (which is being reworked)."""
    for index in range(64):
        slot = hex(index)
        if int(str(shared_node.rpc("eth_getStorageAt", [TOKEN, slot, "latest"])), 16):
            return "0x" + index.to_bytes(32, "big").hex()
    raise AssertionError("no non-zero slot in the token's first 64")


def test_proof_is_eth_get_proof_with_its_header(
    api: Api, shared_node: NodeProcess, funded: str, balance_slot: str
) -> None:
    slot = balance_slot
    head = int(str(shared_node.rpc("eth_blockNumber")), 16)
    answer = api.ok(f"/proofs/{TOKEN}", storage_keys=f"{slot},0x0", block=str(head))
    rpc = shared_node.rpc("eth_getProof", [TOKEN, [slot, "0x0"], hex(head)])
    assert answer["proof"] == rpc
    block = shared_node.rpc("eth_getBlockByNumber", [hex(head), False])
    assert answer["block"]["number"] == head
    assert answer["block"]["hash"] == block["hash"]
    assert answer["block"]["state_root"] == block["stateRoot"]
    # The proof walks from the header's state root, independently of any SDK.
    state_root = bytes.fromhex(answer["block"]["state_root"][2:])
    nodes = [rlp.decode(bytes.fromhex(n[2:])) for n in answer["proof"]["accountProof"]]
    account = rlp.decode(
        HexaryTrie.get_from_proof(state_root, keccak(bytes.fromhex(TOKEN[2:])), nodes)
    )
    assert "0x" + account[2].hex() == answer["proof"]["storageHash"]
    latest = api.ok(f"/proofs/{funded}")
    assert latest["proof"]["balance"] == shared_node.rpc("eth_getBalance", [funded, "latest"])


def test_a_tampered_proof_does_not_verify(api: Api, balance_slot: str) -> None:
    answer = api.ok(f"/proofs/{TOKEN}", storage_keys=balance_slot)
    storage_root = bytes.fromhex(answer["proof"]["storageHash"][2:])
    item = answer["proof"]["storageProof"][0]
    nodes = [rlp.decode(bytes.fromhex(n[2:])) for n in item["proof"]]
    key = keccak(bytes.fromhex(item["key"][2:]))
    proven = rlp.decode(HexaryTrie.get_from_proof(storage_root, key, nodes))
    assert int.from_bytes(proven, "big") == int(item["value"], 16) != 0
    leaf = bytearray(bytes.fromhex(item["proof"][-1][2:]))
    leaf[-1] ^= 0x01
    forged = [*nodes[:-1], rlp.decode(bytes(leaf))]
    with pytest.raises(BadTrieProof):
        HexaryTrie.get_from_proof(storage_root, key, forged)


@pytest.mark.skipif(not HAS_SDK_VERIFIER, reason="client.proofs not available")
def test_sdk_verifies_the_api_proof_and_refuses_a_tampered_one(api: Api, balance_slot: str) -> None:
    from client.errors import ProofError
    from client.proofs import verify_proof

    answer = api.ok(f"/proofs/{TOKEN}", storage_keys=balance_slot)
    header = bytes.fromhex(answer["block"]["header_rlp"][2:])
    proven = verify_proof(answer["proof"], header, answer["block"]["hash"], TOKEN)
    assert list(proven.storage.values()) == [int(answer["proof"]["storageProof"][0]["value"], 16)]
    tampered = copy.deepcopy(answer["proof"])
    tampered["storageProof"][0]["value"] = hex(10**9)
    with pytest.raises(ProofError):
        verify_proof(tampered, header, answer["block"]["hash"], TOKEN)
    with pytest.raises(ProofError):
        verify_proof(answer["proof"], header, "0x" + "00" * 32, TOKEN)


def test_proof_refusals(api: Api) -> None:
    assert api.get(f"/proofs/{TOKEN}", storage_keys="0xzz").status_code == 400
    assert api.get(f"/proofs/{TOKEN}", block="10000000").status_code == 404
    assert api.get("/proofs/0x12").status_code == 400


def test_relay_accepts_a_signed_transaction(
    api: Api, shared_node: NodeProcess, dev_accounts: list[LocalAccount]
) -> None:
    sender = Sender(shared_node)
    customer = api.as_(api.new_key("customer", [dev_accounts[7].address]))
    raw = sender.sign(dev_accounts[7], dev_accounts[9].address, 123)
    response = customer.post("/transactions", {"raw": "0x" + raw.hex()})
    assert response.status_code == 202, response.text
    tx_hash = response.json()["hash"]
    assert tx_hash == "0x" + keccak(raw).hex()
    pending_or_mined = customer.ok(f"/transactions/{tx_hash}")
    assert pending_or_mined["from"] == dev_accounts[7].address
    sender.wait([tx_hash])
    mined = customer.ok(f"/transactions/{tx_hash}")
    assert mined["status"] == "success" and mined["value"] == "123"
    assert mined["block"]["number"] == int(
        shared_node.rpc("eth_getTransactionReceipt", [tx_hash])["blockNumber"],
        16,
    )
    # The same transaction again: the node's own reason, as eth_sendRawTransaction gives it.
    again = customer.post("/transactions", {"raw": "0x" + raw.hex()})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "tx_rejected"


def test_bad_relays_are_refused_with_the_nodes_reason_and_change_nothing(
    api: Api, shared_node: NodeProcess, dev_accounts: list[LocalAccount]
) -> None:
    customer = api.as_(api.new_key("customer", [dev_accounts[8].address]))
    address = dev_accounts[8].address
    nonce_before = shared_node.rpc("eth_getTransactionCount", [address, "pending"])
    pool_before = shared_node.rpc("eth_getTransactionCount", [address, "latest"])
    broke = Account.create()
    wrong_chain = dev_accounts[8].sign_transaction(
        {"chainId": 1, "nonce": 0, "gasPrice": 0, "gas": 21_000, "to": broke.address, "value": 1}
    )
    rejected = customer.post(
        "/transactions", {"raw": "0x" + bytes(wrong_chain.raw_transaction).hex()}
    )
    assert rejected.status_code == 400
    assert rejected.json()["error"]["code"] == "tx_rejected"
    assert "chain" in rejected.json()["error"]["message"]
    low_nonce = dev_accounts[8].sign_transaction(
        {
            "chainId": 1337,
            "nonce": 0,
            "gasPrice": 0,
            "gas": 21_000,
            "to": broke.address,
            "value": 10**30,
        }
    )
    funds = customer.post("/transactions", {"raw": "0x" + bytes(low_nonce.raw_transaction).hex()})
    assert funds.status_code == 400 and funds.json()["error"]["code"] == "tx_rejected"
    assert "insufficient funds" in funds.json()["error"]["message"]
    garbage = customer.post("/transactions", {"raw": "0xdeadbeef"})
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "tx_rejected"
    not_hex = customer.post("/transactions", {"raw": "hello"})
    assert not_hex.status_code == 400 and not_hex.json()["error"]["code"] == "invalid_request"
    someone_else = Sender(shared_node).sign(dev_accounts[9], broke.address, 1)
    forbidden = customer.post("/transactions", {"raw": "0x" + someone_else.hex()})
    assert forbidden.status_code == 403
    assert shared_node.rpc("eth_getTransactionCount", [address, "pending"]) == nonce_before
    assert shared_node.rpc("eth_getTransactionCount", [address, "latest"]) == pool_before
    assert shared_node.rpc("eth_getTransactionByHash", ["0x" + keccak(someone_else).hex()]) is None


def test_validators_and_status(api: Api, shared_node: NodeProcess) -> None:
    status = api.ok("/status")
    assert status["chain_id"] == 1337 and status["syncing"] is False and status["peers"] == 0
    validators = api.ok("/validators")
    rpc = shared_node.rpc("qbft_getValidatorsByBlockNumber", ["latest"])
    assert validators["validators"] == rpc
    assert api.ok("/validators", block="0")["block"]["number"] == 0
    assert api.get("/validators", block="nope").status_code == 400


def test_merchant_registry(api: Api, dev_accounts: list[LocalAccount]) -> None:
    shop = dev_accounts[5].address
    assert api.put(f"/merchants/{shop}", {"name": "Café", "category": "dining"}).json() == {
        "address": shop,
        "name": "Café",
        "category": "dining",
    }
    assert {"address": shop, "name": "Café", "category": "dining"} in api.ok("/merchants")["items"]
    bad = api.put(f"/merchants/{shop}", {"name": "", "category": "Dining!"})
    assert bad.status_code == 422
    assert api.delete(f"/merchants/{shop}").status_code == 204
    assert api.delete(f"/merchants/{shop}").status_code == 404
    assert all(m["address"] != shop for m in api.ok("/merchants")["items"])


def test_payment_requests_are_eip681_with_a_qr_code(
    api: Api, dev_accounts: list[LocalAccount]
) -> None:
    to = dev_accounts[6].address
    coin = api.ok("/payment-requests", to=to.lower(), amount=5 * 10**15, memo="lunch")
    parsed = parse_payment_request(coin["uri"])
    assert (parsed.recipient, parsed.amount, parsed.chain_id, parsed.token) == (
        to,
        5 * 10**15,
        1337,
        None,
    )
    assert coin["qr_svg"].startswith("<svg") and coin["memo"] == "lunch"
    token = api.ok("/payment-requests", to=to, amount=250, token=TOKEN)
    parsed = parse_payment_request(token["uri"])
    assert parsed.token is not None and parsed.token.lower() == TOKEN and parsed.amount == 250
    assert api.get("/payment-requests", to="0x12", amount=1).status_code == 400
    assert api.get("/payment-requests", to=to, amount=-1).status_code == 422
