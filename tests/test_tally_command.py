"""The `tally` command itself: help that is fast because it imports nothing heavy, fits 80
columns, packages that keep their layers, and a `tally dev` that announces only what is
already true. Timing is left to `benchmarks/cli_startup.py`; what help imports is
deterministic, so that is what is tested."""

from __future__ import annotations

import ast
import inspect
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, free_port
from tests.test_cli_errors import tally

HEAVY = ("eth", "web3", "eth_account", "eth_keys", "uvicorn", "fastapi", "plyvel", "requests")


def imported_by(*args: str, code: int = 0) -> set[str]:
    """Every module `tally ARGS` imports, from `python -X importtime`."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tally_cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == code, result.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    } - {"package"}


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("wallet", "--help"),
        ("audit", "--help"),
        ("bank", "--help"),
        ("dev", "--help"),
        ("keys", "--help"),
    ],
)
def test_help_imports_no_chain_library(args: tuple[str, ...]) -> None:
    modules = imported_by(*args)
    assert "typer" in modules  # the probe sees imports at all
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == [], heavy[:20]


def test_a_wallet_command_does_import_what_it_needs() -> None:
    """The other side of the test above: the probe would notice web3 if it were loaded."""
    url = f"http://127.0.0.1:{free_port()}"
    modules = imported_by("wallet", "--rpc", url, "fund", "1", "--to", "0x" + "11" * 20, code=5)
    assert {"web3", "eth_account"} <= modules


HELP_PAGES = [
    (),
    ("dev",),
    ("run",),
    ("init",),
    ("localnet",),
    ("localnet", "up"),
    ("localnet", "init"),
    ("genesis",),
    ("genesis", "build"),
    ("genesis", "inspect"),
    ("keys",),
    ("keys", "new"),
    ("keys", "list"),
    ("keys", "show"),
    ("wallet",),
    ("wallet", "send"),
    ("wallet", "import"),
    ("wallet", "fund"),
    ("wallet", "request"),
    ("audit",),
    ("audit", "verify"),
    ("bank",),
    ("bank", "gateway"),
    ("bank", "card-simulator"),
    ("bank", "api-key"),
    ("bank", "reconcile"),
    ("bank", "credit"),
    ("bank", "credit", "evaluate"),
    ("bank", "risk"),
    ("bank", "risk", "serve"),
    ("bank", "risk", "watch-hash"),
    ("bank", "risk", "check-config"),
]


@pytest.mark.parametrize("page", HELP_PAGES, ids=lambda page: " ".join(page) or "tally")
def test_help_reads_in_80_columns(page: tuple[str, ...]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tally_cli", *page, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Usage: tally"), lines[0]
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    assert "…" not in result.stdout  # no option name or default cut short
    if page:
        assert "Exit codes:" in result.stdout


def test_long_option_names_and_defaults_are_whole_at_80_columns() -> None:
    dev = subprocess.run(
        [sys.executable, "-m", "tally_cli", "dev", "--help"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "80"},
    ).stdout  # fmt: skip
    for whole in ("--api-challenge-ttl", "--permissioned / --no-permissioned", "1000/minute"):
        assert whole in dev


def test_tally_lists_the_client_groups_by_their_own_summary() -> None:
    from bank.cli import bank_app
    from client.audit_cli import audit_app
    from client.cli import wallet_app
    from tally_cli import CLIENT_GROUPS

    assert CLIENT_GROUPS["wallet"][2] == wallet_app.info.help
    assert CLIENT_GROUPS["audit"][2] == audit_app.info.help
    assert CLIENT_GROUPS["bank"][2] == bank_app.info.help
    listing = tally("--help").stdout
    assert "wallet    Keys, balances" in listing and "audit     Check a chain" in listing


def test_the_cli_copies_of_library_constants_are_equal() -> None:
    from typer.main import get_group

    from client import cli
    from client.rpc import DEFAULT_RPC_URL
    from node import cli as node_cli
    from node import keys
    from node.chain.genesis import DEV_CHAIN_ID, dev_accounts
    from tally_cli.keys import keys_app
    from tally_common.keystore import SOFTHSM2_MODULE

    assert cli.DEFAULT_RPC_URL == DEFAULT_RPC_URL
    assert cli.SOFTHSM2_MODULE == SOFTHSM2_MODULE
    assert keys.SOFTHSM2_MODULE == SOFTHSM2_MODULE
    assert keys.DEFAULT_LABEL == "node"
    for command in ("dev", "run", "init"):  # the node key options' defaults, written out
        params = get_group(node_cli.app).commands[command].params
        defaults = {param.name: param.default for param in params}
        assert defaults["pkcs11_module"] == SOFTHSM2_MODULE
        assert defaults["node_key_label"] == keys.DEFAULT_LABEL
    for keys_command in get_group(keys_app).commands.values():  # a Command, not a name
        defaults = {param.name: param.default for param in keys_command.params}
        assert defaults["pkcs11_module"] == SOFTHSM2_MODULE
    assert cli.DEV_CHAIN_ID == DEV_CHAIN_ID
    assert cli.DevFaucet().address("") == dev_accounts()[0].address
    assert bytes.fromhex(cli.DEV_FAUCET_KEY[2:]) == bytes(dev_accounts()[0].key)
    from bank import chain as bank_chain
    from bank import cli as bank_cli
    from node.domain.contracts import WALLET_TOKEN

    assert bank_cli.DEV_WALLET_TOKEN == bank_chain.DEV_WALLET_TOKEN == "0x" + WALLET_TOKEN.hex()
    assert bank_cli.SOFTHSM2_MODULE == SOFTHSM2_MODULE


def imports_of(package: str) -> dict[str, set[str]]:
    """Top-level packages each module of `package` imports (at any depth in the file)."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO))] = names
    return found


def test_layers_point_one_way() -> None:
    """The layers `tally_common/__init__.py` writes down."""
    breaches = [
        (module, sorted(names & forbidden))
        for package, forbidden in (
            ("tally_common", {"node", "client", "bank", "tally_cli"}),
            ("client", {"node", "bank", "tally_cli"}),
            ("node", {"client", "bank", "tally_cli"}),
            ("bank", {"node", "tally_cli"}),
        )
        for module, names in imports_of(package).items()
        if names & forbidden
    ]
    assert breaches == []
    assert {"node", "typer"} <= imports_of("tally_cli")["tally_cli/__init__.py"]
    assert "client" in imports_of("bank")["bank/chain.py"]  # the probe sees bank's imports


def test_dev_announces_its_endpoints_and_accounts_once_it_listens(
    tmp_path: Path, dev_accounts: list
) -> None:
    from node.domain.contracts import DEV_ROLES

    rpc_port, ws_port, admin_port = free_port(), free_port(), free_port()
    datadir = tmp_path / "dev"
    process = subprocess.Popen(
        [sys.executable, "-m", "tally_cli", "dev", "--datadir", str(datadir),
         "--rpc-port", str(rpc_port), "--ws-port", str(ws_port),
         "--admin-port", str(admin_port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        with socket.create_connection(("127.0.0.1", rpc_port)):  # bound before the banner
            pass
        for port in (ws_port, admin_port):
            with socket.create_connection(("127.0.0.1", port)):
                pass
        lines = [first.rstrip("\n")]
        while not lines[-1].startswith("Ctrl-C"):
            line = process.stdout.readline()
            assert line, lines
            lines.append(line.rstrip("\n"))
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    assert code == 0
    banner = "\n".join(lines)
    http = f"http://127.0.0.1:{rpc_port}"
    for row in (
        f"JSON-RPC       {http}",
        f"WebSocket      ws://127.0.0.1:{ws_port}",
        f"REST API       {http}/api/v1",
        f"OpenAPI docs   {http}/docs",
        f"Explorer       {http}/explorer/",
        f"Admin API key  {datadir / 'api-admin.key'}",
        f"Admin JSON-RPC http://127.0.0.1:{admin_port} (token: {datadir / 'admin-rpc.token'})",
        "Chain id       1337",
        f"Datadir        {datadir}",
    ):
        assert row in banner, banner
    assert (datadir / "api-admin.key").exists()
    for index, (account, (role, tier)) in enumerate(zip(dev_accounts, DEV_ROLES, strict=True)):
        assert f"({index}) {account.address}  {role.name.lower()}, KYC tier {tier}" in banner
        assert f"({index}) 0x{bytes(account.key).hex()}" in banner
    assert "(0) 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266  admin" in banner
    assert "(6) 0x976EA74026E726554dB657fA54763abd0C3a0aa9  customer" in banner
    assert all(len(line) <= 80 for line in lines if str(datadir) not in line), banner


@pytest.mark.parametrize("command", ["dev", "run"])
def test_the_node_options_default_to_what_the_node_defaults_to(command: str) -> None:
    """The CLI writes `NodeConfig`'s defaults out (their modules are too heavy for help)."""
    from typer.main import get_group

    from node import cli
    from node.service import NodeConfig

    params = get_group(cli.app).commands[command].params
    defaults: dict[str | None, Any] = {param.name: param.default for param in params}
    shared = inspect.signature(cli.listener_settings).parameters
    settings = cli.listener_settings(**{name: defaults[name] for name in shared})
    node_defaults = NodeConfig(datadir=Path("unused"))
    assert settings.pop("admin_port") == 8551  # `tally` runs geth's port; NodeConfig runs none
    assert settings == {field: getattr(node_defaults, field) for field in settings}
