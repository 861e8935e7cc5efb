"""Four institutions stand up a permissioned network from one description, and a fifth joins.

End to end on loopback, with real processes: each institution's validator key (`tally keys
new`) and bank keys (admins, issuer, compliance, fee collector) are generated inside its own
SoftHSM token, the node signing through it and the bank keys used through the client SDK; the
fifth institution's node key is an encrypted keystore file; client ports serve TLS and every
client trusts only the network's CA; one network.toml names them with the four validators;
`tally genesis build` runs once; four `tally run` nodes start from its genesis.json and
network.json. Then: the issuer mints and the fee collector pays, both signing in their HSMs;
a public dev key is refused at the pool; a node started from a tampered genesis is refused by
the network and says why; a fifth institution's node is added to NodeRules by the admin group
(3 of 4 HSM-held admins), syncs, is voted in as a validator on every validator's admin
listener and proposes blocks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from client import Pkcs11KeyStore
from client.tls import ClientTls
from client.wallet import Wallet
from node.certs import write_local_pki
from node.chain.genesis import dev_accounts
from node.domain.contracts import ADMIN_GROUP, NODE_RULES, WALLET_TOKEN
from node.keys import load_or_create_node_key
from tests.conftest import REPO, RpcFailure, free_port, rpc_call
from tests.network_files import network_description
from tests.test_cli_errors import tally
from tests.test_client_softhsm import USER_PIN, softhsm_tokens

# Runs alone, after the parallel tests (scripts/test.sh): five institutions' nodes.
pytestmark = pytest.mark.serial

CHAIN_ID = 4242
INSTITUTIONS = ("a", "b", "c", "d")


@dataclass(frozen=True)
class NodeKey:
    """A node key as `tally keys new` made it: its address, the `tally run` options it
    printed, and the secret the node reads from its environment."""

    address: str
    run_options: tuple[str, ...]
    env: dict[str, str]


def token_node_key(token: str) -> NodeKey:
    """A validator key generated inside the institution's own token (`tally keys new`)."""
    env = {"TALLY_PKCS11_PIN": USER_PIN}
    made = tally("keys", "new", "node", "--pkcs11-token", token, env=os.environ | env)
    assert made.returncode == 0, made.stderr
    return _printed(made.stdout, env)


def file_node_key(directory: Path) -> NodeKey:
    """A node key in an encrypted keystore file, its password in the environment."""
    env = {"TALLY_NODE_KEY_PASSWORD": "fifth institution"}
    made = tally("keys", "new", "node", "--store", "file", "--dir", str(directory),
                 "--scrypt-n", "1024", env=os.environ | env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    return _printed(made.stdout, env)


def _printed(output: str, env: dict[str, str]) -> NodeKey:
    rows = dict(line.strip().split(maxsplit=1) for line in output.splitlines()[1:])
    options = tuple(rows["tally"].removeprefix("run").split())
    return NodeKey(rows["address"], options, env)


def plaintext_node_key(datadir: Path) -> NodeKey:
    """The insecure kind, run only because its operator insists (the rogue node)."""
    key = load_or_create_node_key(datadir)
    return NodeKey(key.public_key.to_checksum_address(), ("--insecure-plaintext-key",), {})


@dataclass
class RunNode:
    """A `tally run` process of the ceremony's network."""

    name: str
    datadir: Path
    genesis: Path
    network: Path
    key: NodeKey
    pki: Path
    """Where `node.certs.write_local_pki` put the CA and this node's certificate and key."""
    rpc_port: int = 0
    admin_port: int = 0
    p2p_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.rpc_port = self.rpc_port or free_port()
        self.admin_port = self.admin_port or free_port()
        self.p2p_port = self.p2p_port or free_port()
        self.address = self.key.address

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.rpc_port}"

    @property
    def log(self) -> Path:
        return self.datadir.parent / f"{self.name}.log"

    def start(self) -> RunNode:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tally_cli", "run", "--genesis", str(self.genesis),
             "--network", str(self.network), "--datadir", str(self.datadir),
             "--rpc-port", str(self.rpc_port), "--ws-port", str(free_port()),
             "--p2p-port", str(self.p2p_port), "--admin-port", str(self.admin_port),
             "--tls-cert", str(self.pki / f"{self.name}.crt"),
             "--tls-key", str(self.pki / f"{self.name}.key"), *self.key.run_options],
            cwd=REPO, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            env=os.environ | self.key.env,
        )  # fmt: skip
        return self

    def rpc(self, method: str, *params: Any) -> Any:
        """A client that trusts only the network's CA: a node without its certificate fails."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        trust = ssl.create_default_context(cafile=self.pki / "ca.pem")
        answer = httpx.post(self.url, json=body, verify=trust, timeout=30)
        reply = answer.json()
        if "error" in reply:
            raise RpcFailure(reply["error"])
        return reply["result"]

    def admin(self, method: str, *params: Any) -> Any:
        token = (self.datadir / "admin-rpc.token").read_text().strip()
        return rpc_call(f"http://127.0.0.1:{self.admin_port}", method, list(params), token)

    def height(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# `...`: a lambda binding a loop variable as a default has parameters, though none is passed.
def wait_for(check: Callable[..., Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.HTTPError, OSError):
            result = None
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _log_tails(nodes: list[RunNode], lines: int = 15) -> str:
    """What each node last logged, so a network that did not come up says why."""
    tails = []
    for node in nodes:
        logged = node.log.read_text(errors="replace").splitlines() if node.log.exists() else []
        exited = node.process.poll() if node.process is not None else None
        tails.append(f"--- {node.name} (exit {exited}):\n" + "\n".join(logged[-lines:]))
    return "\n".join(tails)


@dataclass
class Ceremony:
    directory: Path
    description: str
    nodes: list[RunNode]
    stores: dict[str, Pkcs11KeyStore]

    def wallet(self, institution: str, label: str, node: int = 0) -> Wallet:
        tls = ClientTls(self.nodes[node].pki / "ca.pem")
        return Wallet(self.stores[institution], label, self.nodes[node].url, tls=tls)


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ceremony]:
    directory = tmp_path_factory.mktemp("ceremony")
    softhsm_tokens()
    # Each institution: a token of its own, where its bank keys are generated.
    stores = {name: Pkcs11KeyStore(f"bank-{name}", USER_PIN) for name in INSTITUTIONS}
    admins = [stores[name].create("admin").address for name in INSTITUTIONS]
    issuer = stores["a"].create("issuer").address
    compliance = stores["b"].create("compliance").address
    fee_collector = stores["d"].create("fees").address
    # ...and its node, whose key it generates in the same token and whose address it tells
    # the others.
    shared = directory / "shared"
    shared.mkdir()
    genesis, network = shared / "genesis.json", shared / "network.json"
    # Client ports serve TLS with certificates of the network's own CA, which clients trust.
    hosts = [*(f"node-{name}" for name in INSTITUTIONS), "node-e", "rogue"]
    pki = write_local_pki(directory / "tls", hosts).parent
    nodes = [
        RunNode(
            f"node-{name}",
            directory / f"node-{name}",
            genesis,
            network,
            token_node_key(f"bank-{name}"),
            pki,
        )
        for name in INSTITUTIONS
    ]
    description = network_description(
        CHAIN_ID,
        nodes=[
            (f"Bank {n.name[-1].upper()}", n.address, f"127.0.0.1:{n.p2p_port}", True)
            for n in nodes
        ],
        admins=admins,
        threshold=3,
        issuer=issuer,
        compliance=compliance,
        fee_collector=fee_collector,
    )
    (directory / "network.toml").write_text(description)
    built = tally("genesis", "build", str(directory / "network.toml"), "--out", str(shared))
    assert built.returncode == 0, built.stderr
    try:
        for node in nodes:
            node.start()
        try:
            for node in nodes:
                wait_for(lambda n=node: n.rpc("net_peerCount") == "0x3", f"{node.name} linked")
            wait_for(lambda: nodes[0].height() >= 1, "the first block")
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{_log_tails(nodes)}") from None
        yield Ceremony(directory, description, nodes, stores)
    finally:
        for node in nodes:
            node.stop()
        for store in stores.values():
            store.close()


def test_every_institution_signs_off_the_same_genesis(ceremony: Ceremony) -> None:
    sheet = tally("genesis", "inspect", str(ceremony.nodes[0].genesis), "--json")
    report = json.loads(sheet.stdout)
    admins = [ceremony.stores[name].address("admin") for name in INSTITUTIONS]
    assert report["admins"] == admins and report["threshold"] == 3
    assert sorted(report["validators"]) == sorted(n.address for n in ceremony.nodes)
    assert report["allocations"] == [] and report["permissioned"]
    dev = {account.address for account in dev_accounts()}
    assert not dev & {address for address, _ in _grants(report)}
    block_0 = [n.rpc("eth_getBlockByNumber", "0x0", False)["hash"] for n in ceremony.nodes]
    assert block_0 == [report["genesis_hash"]] * 4


def _grants(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["address"], r["role"]) for r in report["roles"]] + [
        (v, "validator") for v in report["validators"]
    ]


def test_hsm_held_bank_keys_mint_and_pay(ceremony: Ceremony) -> None:
    issuer = ceremony.wallet("a", "issuer", node=0).wallet_token(to_checksum_address(WALLET_TOKEN))
    collector = ceremony.stores["d"].address("fees")
    minted = issuer.mint(collector, 50_000)
    assert minted.receipt is not None and minted.receipt.status == 1
    payer = ceremony.wallet("d", "fees", node=3).wallet_token(to_checksum_address(WALLET_TOKEN))
    admin_b = ceremony.stores["b"].address("admin")
    paid = payer.transfer(admin_b, 12_345)
    assert paid.receipt is not None and paid.receipt.status == 1
    assert payer.balance_of(admin_b) == 12_345
    assert payer.balance_of(collector) == 50_000 - 12_345


def test_a_public_dev_key_is_refused_at_the_pool(ceremony: Ceremony) -> None:
    dev = dev_accounts()[0]
    signed = dev.sign_transaction(
        {"nonce": 0, "gas": 21_000, "gasPrice": 0, "chainId": CHAIN_ID,
         "to": dev_accounts()[1].address, "value": 0}
    )  # fmt: skip
    with pytest.raises(Exception, match="not authorized to send transactions"):
        ceremony.nodes[1].rpc("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())


def test_a_node_on_a_tampered_genesis_is_refused_and_says_why(ceremony: Ceremony) -> None:
    tampered = ceremony.directory / "tampered"
    toml = ceremony.directory / "tampered.toml"
    toml.write_text(ceremony.description + '\n[token]\nsymbol = "MINE"\n')
    built = tally("genesis", "build", str(toml), "--out", str(tampered))
    assert built.returncode == 0, built.stderr
    node = RunNode(
        "rogue",
        tampered / "node",
        tampered / "genesis.json",
        ceremony.nodes[0].network,
        plaintext_node_key(tampered / "node"),
        ceremony.nodes[0].pki,
    ).start()
    try:
        wait_for(lambda: "refuses this node" in node.log.read_text(), "the refusal in its log")
        assert "genesis hash" in node.log.read_text() and "differs" in node.log.read_text()
        assert node.rpc("net_peerCount") == "0x0"
        assert all(n.rpc("net_peerCount") == "0x3" for n in ceremony.nodes)
    finally:
        node.stop()


def _propose(admin: Wallet, target: bytes, call: bytes) -> int:
    data = function_signature_to_4byte_selector("propose(address,bytes)") + encode(
        ["address", "bytes"], [to_checksum_address(target), call]
    )
    sent = admin.send(to_checksum_address(ADMIN_GROUP), 0, data)
    assert sent.receipt is not None and sent.receipt.status == 1
    created = next(
        log
        for log in sent.receipt.raw["logs"]
        if log["address"].lower() == "0x" + ADMIN_GROUP.hex()
    )
    return int(created["topics"][1], 16)


def _approve(admin: Wallet, proposal: int) -> None:
    data = function_signature_to_4byte_selector("approve(uint256)") + encode(
        ["uint256"], [proposal]
    )
    sent = admin.send(to_checksum_address(ADMIN_GROUP), 0, data)
    assert sent.receipt is not None and sent.receipt.status == 1


def test_a_fifth_institution_joins_syncs_and_validates(ceremony: Ceremony) -> None:
    first = ceremony.nodes[0]
    # Its network.json: everyone's endpoints and its own; the others learn of it on chain.
    joined = ceremony.directory / "joined"
    joined.mkdir()
    shutil.copy(first.genesis, joined / "genesis.json")
    newcomer = RunNode("node-e", ceremony.directory / "node-e",
                       joined / "genesis.json", joined / "network.json",
                       file_node_key(ceremony.directory / "node-e-keys"),
                       first.pki)  # fmt: skip
    listing = json.loads(first.network.read_text())
    listing["nodes"].append(
        {"name": "Bank E", "address": newcomer.address, "host": "127.0.0.1",
         "p2pPort": newcomer.p2p_port}
    )  # fmt: skip
    newcomer.network.write_text(json.dumps(listing))

    # 1. NodeRules first: 3 of the 4 HSM-held admins let the node in.
    add_node = function_signature_to_4byte_selector("addNode(address)") + encode(
        ["address"], [newcomer.address]
    )
    proposal = _propose(ceremony.wallet("a", "admin"), NODE_RULES, add_node)
    _approve(ceremony.wallet("b", "admin", node=1), proposal)
    assert newcomer.address not in _allowed(first)
    _approve(ceremony.wallet("c", "admin", node=2), proposal)
    assert newcomer.address in _allowed(first)

    newcomer.start()
    try:
        # 2. It connects and syncs as a member.
        wait_for(lambda: newcomer.rpc("net_peerCount") == "0x4", "the newcomer linked to all")
        wait_for(lambda: newcomer.height() >= first.height() - 1, "the newcomer synced")
        # 3. Every validator votes it in on its admin listener; a majority adds it.
        for node in ceremony.nodes:
            assert node.admin("qbft_proposeValidatorVote", newcomer.address, True) is True
        wait_for(
            lambda: newcomer.address in first.rpc("qbft_getValidatorsByBlockNumber", "latest"),
            "the vote to pass",
        )
        for node in ceremony.nodes:
            node.admin("qbft_discardValidatorVote", newcomer.address)
        # 4. It validates: it proposes a block the others accept.
        start = first.height()
        wait_for(
            lambda: any(
                first.rpc("eth_getBlockByNumber", hex(n), False)["miner"].lower()
                == newcomer.address.lower()
                for n in range(start, first.height() + 1)
            ),
            "a block proposed by the newcomer",
        )
        paid = (
            ceremony.wallet("a", "issuer", node=0)
            .wallet_token(to_checksum_address(WALLET_TOKEN))
            .mint(ceremony.stores["d"].address("fees"), 1, ref=b"\x05" * 32)
        )
        assert paid.receipt is not None and paid.receipt.status == 1
    finally:
        newcomer.stop()


def _allowed(node: RunNode) -> list[str]:
    result = node.rpc(
        "eth_call",
        {"to": to_checksum_address(NODE_RULES),
         "data": "0x" + function_signature_to_4byte_selector("nodes()").hex()},
        "latest",
    )  # fmt: skip
    from eth_abi import decode

    return [to_checksum_address(a) for a in decode(["address[]"], bytes.fromhex(result[2:]))[0]]
