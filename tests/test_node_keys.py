"""Node keys that never sit in plaintext: `tally keys` against real SoftHSM2 tokens and real
keystore files, and `tally run` nodes that sign everything through them.

The tokens are made in this module's own SoftHSM2 configuration (`SOFTHSM2_CONF`, given to the
subprocesses only). The chains here have chain id 4321, not the dev chain's, and fund a fresh
account rather than a well-known dev key: what a real network looks like. Every seal is checked
with the client SDK's verifier (`client.qbft`), not the node's own code.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey, PublicKey
from eth_utils import to_canonical_address
from web3 import Web3
from web3.types import RPCEndpoint

from client.qbft import commit_seal_hash, decode_extra_data, header_from_json, seal_signer
from node.chain.genesis import AllocEntry, Genesis
from tests.conftest import REPO, free_port, web3_for
from tests.test_cli_errors import assert_refused, tally

SO_PIN, PIN = "87654321", "4321"
CHAIN_ID = 4321
FUNDS = 10**24


@dataclass(frozen=True)
class Hsm:
    """This module's SoftHSM2 configuration; `env` is what a subprocess needs to use it."""

    conf: Path

    @property
    def env(self) -> dict[str, str]:
        # Test-strength scrypt for file keys (TALLY_SCRYPT_N), as the wallet tests do.
        return {"SOFTHSM2_CONF": str(self.conf), "TALLY_PKCS11_PIN": PIN, "TALLY_SCRYPT_N": "1024"}


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Hsm:
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    for label in ("inst-a", "inst-b", "inst-c"):
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label,
             "--so-pin", SO_PIN, "--pin", PIN],
            check=True, capture_output=True, env=os.environ | {"SOFTHSM2_CONF": str(conf)},
        )  # fmt: skip
    return Hsm(conf)


@dataclass(frozen=True)
class Identity:
    """What `tally keys new` and `show` print about a key."""

    address: str
    public_key: str
    run_options: list[str]


def identity(output: str) -> Identity:
    rows = dict(line.strip().split(maxsplit=1) for line in output.splitlines()[1:])
    found: dict[str, Any] = {
        "address": rows["address"],
        "public_key": rows["public"].removeprefix("key").strip(),
        "run_options": rows["tally"].removeprefix("run").split(),
    }
    return Identity(**found)


def new_key(hsm: Hsm, *args: str) -> Identity:
    made = tally("keys", "new", *args, env=hsm.env)
    assert made.returncode == 0, made.stderr
    return identity(made.stdout)


# --- tally keys ----------------------------------------------------------------------------------


def test_keys_in_a_token(hsm: Hsm, tmp_path: Path) -> None:
    made = tally("keys", "new", "validator", "--pkcs11-token", "inst-a", env=hsm.env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("created node key 'validator' in PKCS#11 token 'inst-a'")
    key = identity(made.stdout)
    # the public key is the one behind the address: what a peer's handshake will prove
    public = PublicKey(bytes.fromhex(key.public_key[2:]))
    assert public.to_checksum_address() == key.address
    assert key.run_options == ["--node-key-store", "pkcs11", "--pkcs11-token", "inst-a",
                               "--node-key-label", "validator"]  # fmt: skip
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    no_env_pin = {k: v for k, v in hsm.env.items() if k != "TALLY_PKCS11_PIN"}
    listed = tally("keys", "list", "--pkcs11-token", "inst-a", "--pkcs11-pin-file", str(pin_file),
                   env=no_env_pin)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [f"validator  {key.address}"]
    shown = tally("keys", "show", "validator", "--pkcs11-token", "inst-a", env=hsm.env)
    assert shown.returncode == 0, shown.stderr
    assert identity(shown.stdout) == key

    def refused(*args: str, env: dict[str, str] = hsm.env) -> subprocess.CompletedProcess[str]:
        return tally("keys", *args, env=env)

    assert_refused(refused("new", "validator", "--pkcs11-token", "inst-a"), 4, "already exists")
    wrong_pin = hsm.env | {"TALLY_PKCS11_PIN": "0000"}
    shown = refused("show", "validator", "--pkcs11-token", "inst-a", env=wrong_pin)
    assert_refused(shown, 4, "refused the PIN")
    assert_refused(refused("list", "--pkcs11-token", "nowhere"), 4, "no token labelled 'nowhere'")
    assert_refused(refused("show", "other", "--pkcs11-token", "inst-a"), 4, "no key labelled")
    assert_refused(refused("list", "--pkcs11-token", "inst-a", env=no_env_pin), 2, "no token PIN")
    assert_refused(refused("list"), 2, "--pkcs11-token")
    assert_refused(refused("new", "bad label", "--pkcs11-token", "inst-a"), 7, "invalid key label")
    assert_refused(refused("new", "x", "--pin", PIN), 2, "--pin")  # no flag takes a secret
    listed = tally("keys", "list", "--pkcs11-token", "inst-a", env=hsm.env)
    assert listed.stdout.splitlines() == [f"validator  {key.address}"]  # refusals made nothing


def test_keys_in_encrypted_files(hsm: Hsm, tmp_path: Path) -> None:
    keys, password = tmp_path / "keys", tmp_path / "password"
    password.write_text("correct horse\n")
    key = new_key(hsm, "validator", "--store", "file", "--dir", str(keys),
                  "--password-file", str(password))  # fmt: skip
    path = keys / "validator.json"
    assert key.run_options == ["--node-key-store", "file", "--node-key-file", str(path)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # standard Web3 Secret Storage: eth-account opens it with the password, and only with it
    document = json.loads(path.read_text())
    assert Account.from_key(Account.decrypt(document, "correct horse")).address == key.address
    listed = tally("keys", "list", "--store", "file", "--dir", str(keys), env=hsm.env)
    assert listed.stdout.splitlines() == [f"validator  {key.address}"]  # no password needed
    env_password = hsm.env | {"TALLY_NODE_KEY_PASSWORD": "correct horse"}
    shown = tally("keys", "show", "validator", "--store", "file", "--dir", str(keys),
                  env=env_password)  # fmt: skip
    assert identity(shown.stdout) == key
    wrong = hsm.env | {"TALLY_NODE_KEY_PASSWORD": "wrong"}
    show = ("keys", "show", "validator", "--store", "file", "--dir", str(keys))
    assert_refused(tally(*show, env=wrong), 4, "wrong password")
    assert_refused(tally(*show, env=hsm.env), 2, "--password-file")
    again = ("keys", "new", "validator", "--store", "file", "--dir", str(keys))
    assert_refused(tally(*again, env=env_password), 4, "already exists")
    assert Account.decrypt(json.loads(path.read_text()), "correct horse")  # still the same file


# --- nodes ---------------------------------------------------------------------------------------


@dataclass
class RunNode:
    """A `tally run` process with its own ports, stopped by the test that starts it."""

    datadir: Path
    args: list[str]
    env: dict[str, str]
    rpc_port: int = field(default_factory=free_port)
    p2p_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tally_cli", "run", "--datadir", str(self.datadir),
                "--rpc-port", str(self.rpc_port), "--ws-port", str(free_port()),
                "--p2p-port", str(self.p2p_port), "--admin-port", "0",
                "--allow-unpermissioned", *self.args]  # fmt: skip

    def _env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")} | self.env

    def start(self) -> RunNode:
        log = open(self.datadir.parent / f"{self.datadir.name}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command(), cwd=REPO, env=self._env(), stdout=log, stderr=subprocess.STDOUT
        )
        return self

    def run_to_exit(self) -> subprocess.CompletedProcess[str]:
        """Run a node that is expected to refuse to start."""
        return subprocess.run(
            self.command(), cwd=REPO, env=self._env(), capture_output=True, text=True, timeout=60
        )

    def wait_ready(self, timeout: float = 60) -> Web3:
        deadline = time.monotonic() + timeout
        w3 = web3_for(self.url)
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log()
            try:
                w3.eth.chain_id  # noqa: B018 - answers once the node listens
                return w3
            except Exception:
                time.sleep(0.2)
        raise AssertionError(f"node did not answer:\n{self.log()}")

    def log(self) -> str:
        path = self.datadir.parent / f"{self.datadir.name}.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                assert self.process.wait(timeout=30) == 0, self.log()
            finally:
                if self.process.poll() is None:
                    self.process.kill()


@pytest.fixture
def nodes() -> Iterator[list[RunNode]]:
    """Nodes a test starts; all stopped afterwards, whatever happened."""
    started: list[RunNode] = []
    yield started
    for node in started:
        node.stop()


def write_genesis(path: Path, validators: list[str], funded: str) -> Path:
    """A chain 4321 genesis: these validators, one fresh account funded, no dev key anywhere;
    unpermissioned (the nodes are told `--allow-unpermissioned`): these tests are about keys."""
    genesis = Genesis(
        chain_id=CHAIN_ID,
        validators=tuple(sorted(to_canonical_address(v) for v in validators)),
        alloc={to_canonical_address(funded): AllocEntry(balance=FUNDS)},
    )
    path.write_text(genesis.dated_now().dumps())
    return path


def pay(w3: Web3, payer: LocalAccount, nonce: int) -> int:
    """One signed transfer, waited for; the number of the block that holds it."""
    signed = payer.sign_transaction(
        {"nonce": nonce, "to": Account.create().address, "value": 1, "gas": 21_000,
         "gasPrice": 0, "chainId": CHAIN_ID}
    )  # fmt: skip
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    assert receipt["status"] == 1
    return int(receipt["blockNumber"])


def seal_signers(w3: Web3, number: int) -> set[str]:
    """Who sealed block `number`, recovered by the SDK's verifier from the JSON-RPC header."""
    block = w3.provider.make_request(RPCEndpoint("eth_getBlockByNumber"), [hex(number), False])[
        "result"
    ]
    header = header_from_json(block)
    extra = decode_extra_data(header.extra_data)
    digest = commit_seal_hash(header, extra.round)
    signers = {seal_signer(digest, seal) for seal in extra.seals}
    assert None not in signers
    return {Web3.to_checksum_address(signer) for signer in signers if signer is not None}


def test_a_plaintext_node_key_is_refused_on_a_real_chain(tmp_path: Path, nodes: list) -> None:
    datadir = tmp_path / "node"
    datadir.mkdir()
    key = PrivateKey(os.urandom(32))
    (datadir / "nodekey").write_text(key.to_hex())
    payer = Account.create()
    genesis = write_genesis(
        tmp_path / "genesis.json", [key.public_key.to_checksum_address()], payer.address
    )
    refused = tally("run", "--genesis", str(genesis), "--datadir", str(datadir),
                    "--rpc-port", str(free_port()), "--ws-port", str(free_port()),
                    "--allow-unpermissioned")  # fmt: skip
    assert_refused(refused, 7, "chain 4321 is not a dev chain", "--insecure-plaintext-key")
    assert sorted(path.name for path in datadir.iterdir()) == ["nodekey"]  # nothing written
    allowed = RunNode(datadir, ["--genesis", str(genesis), "--insecure-plaintext-key"], {})
    nodes.append(allowed.start())
    w3 = allowed.wait_ready()
    assert seal_signers(w3, pay(w3, payer, 0)) == {key.public_key.to_checksum_address()}


def test_a_node_seals_with_its_token_key(hsm: Hsm, tmp_path: Path, nodes: list) -> None:
    key = new_key(hsm, "validator", "--pkcs11-token", "inst-b")
    payer = Account.create()
    genesis = write_genesis(tmp_path / "genesis.json", [key.address], payer.address)
    datadir = tmp_path / "node"
    run = ["--genesis", str(genesis), *key.run_options]
    wrong_pin = RunNode(datadir, run, hsm.env | {"TALLY_PKCS11_PIN": "0000"})
    assert_refused(wrong_pin.run_to_exit(), 4, "node key:", "refused the PIN")
    no_token = ["--genesis", str(genesis), "--node-key-store", "pkcs11",
                "--pkcs11-token", "inst-z", "--node-key-label", "validator"]  # fmt: skip
    assert_refused(RunNode(datadir, no_token, hsm.env).run_to_exit(), 4, "no token labelled")
    assert not datadir.exists()

    node = RunNode(datadir, run, hsm.env)
    nodes.append(node.start())
    w3 = node.wait_ready()
    assert w3.eth.chain_id == CHAIN_ID
    numbers = [pay(w3, payer, nonce) for nonce in range(3)]
    for number in sorted(set(numbers)):
        assert seal_signers(w3, number) == {key.address}
    assert not (datadir / "nodekey").exists()  # the key never touched the datadir


def test_validators_in_a_token_and_a_file_finalise_blocks_together(
    hsm: Hsm, tmp_path: Path, nodes: list
) -> None:
    """Two validators (a quorum of two: every block needs both seals) on p2p links whose
    handshakes both keys sign: one key in SoftHSM2, one in an encrypted file."""
    token_key = new_key(hsm, "validator", "--pkcs11-token", "inst-c")
    password = tmp_path / "password"
    password.write_text("s3cret")
    file_key = new_key(hsm, "validator", "--store", "file", "--dir", str(tmp_path / "keys"),
                       "--password-file", str(password))  # fmt: skip
    payer = Account.create()
    validators = [token_key.address, file_key.address]
    genesis = write_genesis(tmp_path / "genesis.json", validators, payer.address)
    pair = [
        RunNode(tmp_path / "a", token_key.run_options, hsm.env),
        RunNode(tmp_path / "b", [*file_key.run_options, "--password-file", str(password)], {}),
    ]
    network = tmp_path / "network.json"
    network.write_text(json.dumps({"nodes": [
        {"name": node.datadir.name, "address": key.address, "p2pPort": node.p2p_port}
        for node, key in zip(pair, (token_key, file_key), strict=True)
    ]}))  # fmt: skip
    for node in pair:
        node.args += ["--genesis", str(genesis), "--network", str(network)]
        nodes.append(node.start())
    clients = [node.wait_ready() for node in pair]
    deadline = time.monotonic() + 60
    while min(w3.eth.block_number for w3 in clients) < 2:
        assert time.monotonic() < deadline, [node.log()[-2000:] for node in pair]
        time.sleep(0.3)
    number = pay(clients[1], payer, 0)
    head = min(w3.eth.block_number for w3 in clients)
    assert head >= number
    for height in range(1, head + 1):
        assert seal_signers(clients[0], height) == set(validators)
        assert clients[0].eth.get_block(height)["hash"] == clients[1].eth.get_block(height)["hash"]
