"""Every `tally` command fails the way its help says: one line on stderr, the documented exit
code, no traceback, nothing changed. The real command runs as a subprocess
(`python -m tally_cli`), against real nodes where a node is involved, a port nobody listens on
for a refused connection, and a socket that accepts but never answers for a timeout."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.keys import load_or_create_node_key
from tests.conftest import REPO, NodeProcess, free_port
from tests.network_files import network_description

ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def tally(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`tally ARGS` as a user runs it, with no TALLY_* setting inherited from this shell."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    return subprocess.run(
        [sys.executable, "-m", "tally_cli", *args],
        cwd=REPO,
        env=base | {"COLUMNS": "200"} | (env or {}),
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_refused(result: subprocess.CompletedProcess[str], code: int, *phrases: str) -> str:
    """The one-line refusal: exit `code`, one `error:` line on stderr naming `phrases`."""
    where = f"stdout={result.stdout!r} stderr={result.stderr!r}"
    assert result.returncode == code, where
    assert "Traceback" not in result.stderr, where
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), where
    for phrase in phrases:
        assert phrase in lines[0], where
    return lines[0]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung node."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture
def wallet_env(tmp_path: Path) -> dict[str, str]:
    """A file key store of its own with a fast scrypt cost; no node unless a test adds one."""
    return {
        "TALLY_KEYSTORE_DIR": str(tmp_path / "keys"),
        "TALLY_KEYSTORE_PASSWORD": "secret",
        "TALLY_SCRYPT_N": "4096",
    }


# --- tally itself -------------------------------------------------------------------------------


def test_an_unknown_command_or_option_is_one_line_and_exit_2() -> None:
    assert_refused(tally("frobnicate"), 2, "No such command 'frobnicate'", "tally --help")
    assert_refused(tally("dev", "--frob"), 2, "--frob", "tally dev --help")
    assert_refused(tally("wallet", "send"), 2, "Missing argument", "tally wallet send --help")
    assert_refused(tally("audit", "verify", "--from", "abc"), 2, "--from")


# --- tally wallet -------------------------------------------------------------------------------


def test_wallet_with_no_node_listening_exits_5(wallet_env: dict[str, str]) -> None:
    assert tally("wallet", "new", "alice", env=wallet_env).returncode == 0
    url = f"http://127.0.0.1:{free_port()}"
    before = tally("wallet", "--rpc", url, "balance", "--key", "alice", env=wallet_env)
    assert_refused(before, 5, url, "refused")
    after = tally("wallet", "balance", "--key", "alice", "--rpc", url, env=wallet_env)
    assert_refused(after, 5, url, "refused")
    faucet = tally("wallet", "fund", "1", "--to", ADDRESS, env=wallet_env | {"TALLY_RPC_URL": url})
    assert_refused(faucet, 5, url)


def test_wallet_against_a_node_that_never_answers_times_out_with_exit_5(
    wallet_env: dict[str, str], silent_port: int
) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    hung = tally("wallet", "fund", "1", "--to", ADDRESS, "--rpc", url, "--rpc-timeout", "0.3")
    assert_refused(hung, 5, url, "timed out")


def test_wallet_against_something_that_is_not_json_rpc_exits_5(
    wallet_env: dict[str, str], shared_node: NodeProcess
) -> None:
    docs = f"{shared_node.url}/docs"  # the node's Swagger page: HTTP, but not JSON-RPC
    assert_refused(tally("wallet", "fund", "1", "--to", ADDRESS, "--rpc", docs), 5, docs, "HTTP")


def test_wallet_bad_values_exit_7_before_the_store_or_the_node(
    wallet_env: dict[str, str],
) -> None:
    dead = {"TALLY_RPC_URL": f"http://127.0.0.1:{free_port()}"}  # exit 5 if it were asked
    env = wallet_env | dead
    assert_refused(tally("wallet", "--rpc", "localhost:8545", "balance", env=env), 7, "http://")
    assert_refused(tally("wallet", "send", "0x1234", "1", env=env), 7, "'0x1234' is not an address")
    typo = ADDRESS[:-1] + ("c" if ADDRESS[-1] != "c" else "d")
    assert_refused(tally("wallet", "send", typo, "1", env=env), 7, "checksum")
    assert_refused(tally("wallet", "send", ADDRESS, "lots", env=env), 7, "'lots'")
    assert_refused(tally("wallet", "fund", "1e-19", "--to", ADDRESS, env=env), 7, "whole number")
    assert_refused(tally("wallet", "request", "1", "--to", "alice", env=env), 7, "--to 'alice'")
    assert_refused(tally("wallet", "balance", "--token", "0xabc", env=env), 7, "--token")
    assert_refused(tally("wallet", "address", "--key", "a/b", env=env), 7, "invalid key label")
    placeholder = tally("wallet", "pay", "ethereum:0x…@1337?value=5e15", "--yes", env=env)
    assert_refused(placeholder, 7, "'0x…'")
    assert placeholder.stdout == ""
    assert not Path(wallet_env["TALLY_KEYSTORE_DIR"]).exists()


def test_wallet_key_store_failures_exit_4(wallet_env: dict[str, str]) -> None:
    assert_refused(tally("wallet", "address", "--key", "nobody", env=wallet_env), 4, "'nobody'")
    key = "0x" + "11" * 32
    token = tally("wallet", "import", "--keystore", "pkcs11", env=wallet_env, stdin=key)
    assert_refused(token, 4, "PKCS#11", "--keystore file")
    assert tally("wallet", "import", "k", env=wallet_env, stdin=key).returncode == 0
    again = tally("wallet", "import", "k", env=wallet_env, stdin=key)
    assert_refused(again, 4, "already exists")


def test_wallet_import_refuses_what_is_not_a_key_and_writes_nothing(
    wallet_env: dict[str, str],
) -> None:
    secret = "0x" + "ab" * 31  # 62 hex digits
    short = tally("wallet", "import", "k", env=wallet_env, stdin=secret)
    assert secret[4:] not in assert_refused(short, 7, "64 hex digits")  # never echoed
    zero = tally("wallet", "import", "k", "--key-env", "KEY", env=wallet_env | {"KEY": "00" * 32})
    assert_refused(zero, 7, "secp256k1")
    unset = tally("wallet", "import", "k", "--key-env", "NOT_SET", env=wallet_env)
    assert_refused(unset, 7, "NOT_SET")
    missing = tally("wallet", "import", "k", "--key-file", "/nonexistent/key", env=wallet_env)
    assert_refused(missing, 2, "--key-file")
    assert not Path(wallet_env["TALLY_KEYSTORE_DIR"]).exists()


# --- tally audit --------------------------------------------------------------------------------


def test_audit_with_no_node_listening_exits_5() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert_refused(tally("audit", "verify", "--rpc", url), 5, "cannot read the chain", url)
    assert_refused(tally("audit", "--rpc", url, "verify"), 5, "cannot read the chain", url)


def test_audit_against_a_node_that_never_answers_times_out_with_exit_5(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    hung = tally("audit", "verify", "--rpc", url, "--rpc-timeout", "0.3")
    assert_refused(hung, 5, "cannot read the chain", "timed out")


def test_audit_bad_ranges_and_arguments_exit_7(shared_node: NodeProcess, tmp_path: Path) -> None:
    head = int(str(shared_node.rpc("eth_blockNumber")), 16)
    past = tally("audit", "verify", "--rpc", shared_node.url, "--from", "500", "--to", "1500")
    assert_refused(past, 7, "500..1500", "past the head")
    assert past.stdout == ""  # not one FAIL line per missing block
    beyond = tally("audit", "verify", "--rpc", shared_node.url, "--to", str(head + 1000))
    assert_refused(beyond, 7, "past the head")
    start = tally("audit", "--rpc", shared_node.url, "verify", "--from", str(head + 1000))
    assert_refused(start, 7, f"--from {head + 1000} is past the head")
    dead = f"http://127.0.0.1:{free_port()}"  # refused before the node is asked
    assert_refused(tally("audit", "verify", "--rpc", dead, "--from", "5", "--to", "3"), 7, "after")
    assert_refused(tally("audit", "verify", "--rpc", "ftp://x"), 7, "http")
    garbage = tmp_path / "genesis.json"
    garbage.write_text("{not json")
    assert_refused(
        tally("audit", "verify", "--genesis", str(garbage), "--rpc", dead), 7, "cannot read"
    )
    assert_refused(
        tally("audit", "verify", "--genesis", str(tmp_path / "none.json")), 2, "--genesis"
    )


# --- tally dev, run, init, localnet ---------------------------------------------------------------


def test_dev_on_a_taken_port_exits_10_and_creates_nothing(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        datadir = tmp_path / "chain"
        refused = tally("dev", "--datadir", str(datadir), "--rpc-port", str(port))
        assert_refused(refused, 10, f"127.0.0.1:{port}", "--rpc-port", "in use")
        ws = tally("dev", "--datadir", str(datadir), "--ws-port", str(port), "--rpc-port", "0")
        assert_refused(ws, 10, "--ws-port")
    assert refused.stdout == "" and not datadir.exists()


def test_dev_on_a_datadir_another_node_uses_exits_10(node_factory) -> None:  # type: ignore[no-untyped-def]
    running = node_factory()
    second = tally(
        "dev",
        "--datadir",
        str(running.datadir),
        "--rpc-port",
        str(free_port()),
        "--ws-port",
        str(free_port()),
        "--admin-port",
        "0",
    )
    assert_refused(second, 10, str(running.datadir), "another process")
    assert running.rpc("eth_chainId") == "0x539"


def test_node_commands_refuse_bad_arguments(tmp_path: Path) -> None:
    assert_refused(tally("dev", "--block-period", "0"), 2, "--block-period")
    assert_refused(tally("dev", "--log-level", "loud", "--datadir", str(tmp_path / "d")), 2, "loud")
    assert not (tmp_path / "d").exists()
    genesis = tmp_path / "genesis.json"
    genesis.write_text("{not json")
    run = tally("run", "--genesis", str(genesis), "--datadir", str(tmp_path / "n"),
                "--rpc-port", str(free_port()), "--ws-port", str(free_port()))  # fmt: skip
    assert_refused(run, 7, "not JSON")
    assert not (tmp_path / "n").exists()
    assert_refused(tally("run", "--datadir", str(tmp_path / "n")), 2, "--genesis")
    out = tmp_path / "out.json"
    key_dir = tmp_path / "key"
    bad_gas = tally("init", "--out", str(out), "--datadir", str(key_dir), "--gas-limit", "1")
    assert_refused(bad_gas, 7, "gasLimit")
    nowhere = tally("init", "--out", str(tmp_path / "no" / "g.json"), "--datadir", str(key_dir))
    assert_refused(nowhere, 7, "not a directory")
    assert not out.exists() and not key_dir.exists()


def test_run_with_an_unusable_network_file_exits_7(tmp_path: Path) -> None:
    genesis = tmp_path / "genesis.json"
    made = tally("init", "--out", str(genesis), "--datadir", str(tmp_path / "n"))
    assert made.returncode == 0, made.stderr
    network = tmp_path / "network.json"
    network.write_text(json.dumps({"nodes": []}))
    run = tally("run", "--genesis", str(genesis), "--datadir", str(tmp_path / "n"),
                "--network", str(network), "--rpc-port", str(free_port()),
                "--ws-port", str(free_port()), "--p2p-port", str(free_port()))  # fmt: skip
    assert_refused(run, 7, "no nodes")
    assert not (tmp_path / "n" / "chaindata").exists()


def test_localnet_on_a_directory_without_a_network_exits_7(tmp_path: Path) -> None:
    for command in ("status", "down"):
        refused = tally("localnet", command, "--dir", str(tmp_path / "empty"))
        assert_refused(refused, 7, "no local network", "tally localnet up")
    assert not (tmp_path / "empty").exists()


# --- the faucet on a chain that is not a dev chain ------------------------------------------------


@dataclass
class ForeignNode:
    """A `tally run` node on a genesis of chain id 4242, started through `tally` (its key a
    plaintext file, which a chain that is not a dev chain takes only when told so)."""

    url: str
    banner: list[str]


@pytest.fixture(scope="module")
def foreign_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForeignNode]:
    workdir = tmp_path_factory.mktemp("foreign")
    genesis = workdir / "genesis.json"
    description = network_description(4242, validator=load_or_create_node_key(workdir / "n"))
    (workdir / "network.toml").write_text(description)
    made = tally("genesis", "build", str(workdir / "network.toml"), "--out", str(workdir))
    assert made.returncode == 0, made.stderr
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tally_cli", "run", "--genesis", str(genesis),
         "--datadir", str(workdir / "n"), "--rpc-port", str(port),
         "--ws-port", str(free_port()), "--admin-port", "0", "--insecure-plaintext-key"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline().rstrip("\n")]
        while banner[-1].strip() and not banner[-1].lstrip().startswith("Datadir"):
            banner.append(process.stdout.readline().rstrip("\n"))
        yield ForeignNode(f"http://127.0.0.1:{port}", banner)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_run_prints_its_endpoints_once_it_listens(foreign_node: ForeignNode) -> None:
    assert foreign_node.banner[0].startswith("Tally node is up: validator 0x")
    text = "\n".join(foreign_node.banner)
    assert f"JSON-RPC       {foreign_node.url}" in text and "Chain id       4242" in text
    with socket.create_connection(("127.0.0.1", int(foreign_node.url.rsplit(":", 1)[1]))):
        pass  # the banner is printed only once the port is bound


def test_the_faucet_refuses_a_chain_that_is_not_the_dev_chain(
    foreign_node: ForeignNode, wallet_env: dict[str, str]
) -> None:
    refused = tally("wallet", "fund", "1", "--to", ADDRESS, "--rpc", foreign_node.url,
                    env=wallet_env)  # fmt: skip
    assert_refused(refused, 7, "dev chain (chain id 1337)", "is chain 4242")
    assert refused.stdout == ""
