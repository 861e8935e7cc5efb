"""The gateway with its issuer key held in an HSM (a real SoftHSM2 token): the key is generated
inside the token, the dev admin group grants it the issuer role on a `tally dev` node, and the
gateway (on PostgreSQL, with the card simulator) runs with `--keystore pkcs11`. Its mints and
its withdrawal burns are signed by the token's key; a wrong PIN stops it before it serves."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_typing import ChecksumAddress, HexAddress, HexStr
from web3 import Web3

from client import FileKeyStore, Pkcs11KeyStore
from client.tokens import WalletToken, WithdrawalStatus
from client.wallet import Wallet
from contracts import load_artifact
from node.domain.contracts import ChainRole
from tests.bank_support import (
    CUSTOMER,
    PASSWORD,
    TOKEN,
    PostgresCluster,
    Service,
    Stack,
    gateway,
    make_key,
    minted_events,
    node_api_key,
    simulator,
    write_keys,
)
from tests.conftest import REPO, NodeProcess, free_port, web3_for
from tests.test_client_softhsm import USER_PIN, softhsm_tokens

HSM_TOKEN = "bank-issuer"
ADMIN_GROUP = "0x0000000000000000000000000000000000007777"
# web3.py takes a ChecksumAddress, a str NewType
ACCOUNT_RULES = ChecksumAddress(HexAddress(HexStr("0x0000000000000000000000000000000000008888")))
ISSUER_TIER = 3  # as the dev issuer's
WITHDRAWAL_REQUESTED = Web3.keccak(text="WithdrawalRequested(uint256,address,uint256,bytes32)")


def pkcs11_gateway(service: Service, pin: str) -> Service:
    """The file-store gateway of `bank_support`, switched to the HSM's issuer key."""
    service.args += ["--keystore", "pkcs11", "--pkcs11-token", HSM_TOKEN, "--key", "issuer"]
    service.env = {
        key: value for key, value in service.env.items() if not key.startswith("TALLY_KEYSTORE")
    }
    service.env["TALLY_PKCS11_PIN"] = pin
    return service


def grant_issuer(node_url: str, keys: Path, address: str) -> None:
    """Dev admins 0 and 2 (2 of 3) propose and approve `setAccount(address, Issuer, 3)`."""
    group = Web3().eth.contract(abi=load_artifact("AdminGroup")["abi"])
    chain = web3_for(node_url)
    rules = chain.eth.contract(address=ACCOUNT_RULES, abi=load_artifact("AccountRules")["abi"])
    assert rules.functions.roleAndTier(address).call()[0] == ChainRole.NONE
    call = rules.encode_abi("setAccount", [address, ChainRole.ISSUER, ISSUER_TIER, b"\0" * 32])
    store = FileKeyStore(keys, PASSWORD)
    proposer = Wallet(store, "admin", node_url)
    proposed = proposer.send(
        ADMIN_GROUP, data=bytes.fromhex(group.encode_abi("propose", [ACCOUNT_RULES, call])[2:])
    )
    assert proposed.receipt is not None and proposed.receipt.status == 1
    count = Web3.to_int(
        hexstr=proposer.rpc(
            "eth_call", {"to": ADMIN_GROUP, "data": group.encode_abi("proposalCount")}, "latest"
        )
    )
    approve = bytes.fromhex(group.encode_abi("approve", [count])[2:])
    approved = Wallet(store, "admin2", node_url).send(ADMIN_GROUP, data=approve)
    assert approved.receipt is not None and approved.receipt.status == 1
    assert rules.functions.roleAndTier(address).call() == [ChainRole.ISSUER, ISSUER_TIER]


@pytest.fixture(scope="module")
def hsm_issuer() -> str:
    softhsm_tokens()
    with Pkcs11KeyStore(HSM_TOKEN, USER_PIN) as store:
        return store.create("issuer").address


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    shared_node: NodeProcess,
    dev_accounts: list,
    hsm_issuer: str,
) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("bank-hsm")
    keys = write_keys(tmp / "keys", dev_accounts, {0: "admin", 2: "admin2", CUSTOMER: "customer"})
    grant_issuer(shared_node.url, keys, hsm_issuer)
    postgres = PostgresCluster()
    gateway_port = free_port()
    sim = simulator(tmp, gateway_port)
    gw = gateway(
        tmp, gateway_port, shared_node.url, sim.url, keys, None,
        node_api_key(shared_node.url, shared_node.datadir),
    )  # fmt: skip
    gw = pkcs11_gateway(gw, USER_PIN)
    try:
        postgres.start()
        sim.start()
        db = gw.env["TALLY_BANK_DB"] = postgres.create_database()
        gw.start()
        customer = dev_accounts[CUSTOMER].address
        yield Stack(
            shared_node.url, sim, gw, keys, db, customer,
            make_key(db, "customer", customer), make_key(db, "operations"),
        )  # fmt: skip
    finally:
        gw.stop()
        sim.stop()
        postgres.stop()


def test_the_hsm_key_mints_a_topup_and_burns_a_paid_withdrawal(
    stack: Stack, shared_node: NodeProcess, hsm_issuer: str
) -> None:
    chain = web3_for(shared_node.url)
    assert f"(issuer {hsm_issuer})" in stack.gateway.log_text()
    response = stack.topup(f"hsm-{time.time_ns()}", 40_00)
    assert response.status_code == 201, response.text
    done = stack.wait_topup(response.json()["id"])
    (minted,) = minted_events(chain, done["reference"])
    assert (minted["to"], minted["amount"]) == (stack.customer, 40_00)
    assert chain.eth.get_transaction(done["mint_tx"])["from"] == hsm_issuer
    assert chain.eth.get_transaction_receipt(done["mint_tx"])["status"] == 1

    customer = Wallet(FileKeyStore(stack.keys, PASSWORD), "customer", stack.node_url)
    sent = WalletToken(customer, TOKEN).request_withdrawal(15_00)
    assert sent.receipt is not None
    (log,) = [
        log
        for log in sent.receipt.raw["logs"]
        if log["topics"][0] == WITHDRAWAL_REQUESTED.to_0x_hex()
    ]
    withdrawal_id = int(log["topics"][1], 16)
    view = stack.wait_withdrawal(withdrawal_id, "burned")
    assert stack.ledger()[f"wd-{withdrawal_id}"]["status"] == "paid"
    assert chain.eth.get_transaction(view["chain_tx"])["from"] == hsm_issuer
    assert chain.eth.get_transaction_receipt(view["chain_tx"])["status"] == 1
    assert WalletToken(customer, TOKEN).withdrawal(withdrawal_id)[2] is WithdrawalStatus.BURNED


def test_a_wrong_pin_stops_the_gateway_with_exit_4_before_it_touches_anything(
    stack: Stack, tmp_path: Path
) -> None:
    """One line on stderr, no PIN echoed, and no database created (its own SQLite default)."""
    env = {key: value for key, value in stack.gateway.env.items() if key != "TALLY_BANK_DB"}
    env |= {"TALLY_PKCS11_PIN": "0000", "TALLY_BANK_DATA_DIR": str(tmp_path / "bank")}
    result = subprocess.run(
        [
            sys.executable, "-m", "tally_cli", "bank", *stack.gateway.args,
            "--port", str(free_port()),
        ],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 4, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: issuer key: ") and "PIN" in line and "0000" not in line, line
    assert not (tmp_path / "bank").exists()
