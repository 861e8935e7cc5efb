"""`tally bank gateway` with no database set up: SQLite under the data directory, made and
migrated at start; API keys from `tally bank api-key`; a top-up minted once. And the CLI's
refusals: one line on stderr, the documented exit code."""

from __future__ import annotations

from pathlib import Path

import pytest
from web3 import Web3

from tests.bank_support import (
    CUSTOMER,
    ISSUER,
    PASSWORD,
    Stack,
    api_key,
    gateway,
    minted_events,
    node_api_key,
    simulator,
    write_keys,
)
from tests.conftest import NodeProcess, free_port
from tests.test_cli_errors import tally


def test_the_gateway_runs_on_sqlite_with_no_setup(
    tmp_path: Path, shared_node: NodeProcess, dev_accounts: list
) -> None:
    port = free_port()
    sim = simulator(tmp_path, port).start()
    keys = write_keys(tmp_path / "keys", dev_accounts, {ISSUER: "issuer"})
    node_key = node_api_key(shared_node.url, shared_node.datadir)
    gw = gateway(tmp_path, port, shared_node.url, sim.url, keys, None, node_key)
    try:
        gw.start()
        assert (tmp_path / "bank-data" / "bank.sqlite3").exists()
        customer = dev_accounts[CUSTOMER].address
        stack = Stack(shared_node.url, sim, gw, keys, "", customer,
                      api_key(gw, "customer", customer), api_key(gw, "operations"))  # fmt: skip
        response = stack.topup("sqlite-topup-1", 2_50)
        assert response.status_code == 201, response.text
        view = stack.wait_topup(response.json()["id"])
        chain = Web3(Web3.HTTPProvider(shared_node.url))
        assert [e["amount"] for e in minted_events(chain, view["reference"])] == [2_50]
    finally:
        gw.stop()
        sim.stop()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("api-key", "--role", "customer", "--name", "x"), 2, "a customer key needs --account"),
        (("api-key", "--role", "operations", "--name", "x", "--account", "0x12"), 2, "--account"),
        (("migrate", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"), 3, "database"),
        (("card-simulator", "--faults", "{nope"), 2, "--faults"),
        (("gateway",), 2, "TALLY_BANK_NODE_API_KEY"),
    ],
)
def test_cli_refusals_are_one_line(
    tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    result = tally("bank", *args, env={"TALLY_BANK_DATA_DIR": str(tmp_path)})
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_the_gateway_refuses_a_node_key_that_cannot_stream(
    tmp_path: Path, shared_node: NodeProcess, dev_accounts: list
) -> None:
    """A node key unknown to the node, or one whose role may not subscribe chain-wide (a
    customer's), stops the gateway at start with exit 5 and the node's reason."""
    keys = write_keys(tmp_path / "keys", dev_accounts, {ISSUER: "issuer"})
    customer = node_api_key(
        shared_node.url, shared_node.datadir, "customer", (dev_accounts[CUSTOMER].address,)
    )
    env = {
        "TALLY_BANK_DATA_DIR": str(tmp_path / "bank"),
        "TALLY_RPC_URL": shared_node.url,
        "TALLY_KEYSTORE_DIR": str(keys),
        "TALLY_KEYSTORE_PASSWORD": PASSWORD,
    }
    for key, reason in (("tk_unknown", "HTTP 401"), (customer, "HTTP 403")):
        result = tally("bank", "gateway", env={**env, "TALLY_BANK_NODE_API_KEY": key})
        assert result.returncode == 5, result.stderr
        assert "withdrawal stream" in result.stderr and reason in result.stderr, result.stderr


def test_the_gateway_refuses_a_wrong_keystore_password_in_one_line(
    tmp_path: Path, shared_node: NodeProcess, dev_accounts: list
) -> None:
    """A wrong password for the issuer's keystore is exit 4 with one line, not a traceback,
    before the database is created."""
    keys = write_keys(tmp_path / "keys", dev_accounts, {ISSUER: "issuer"})
    env = {
        "TALLY_BANK_DATA_DIR": str(tmp_path / "bank"),
        "TALLY_RPC_URL": shared_node.url,
        "TALLY_KEYSTORE_DIR": str(keys),
        "TALLY_KEYSTORE_PASSWORD": PASSWORD + " but wrong",
        "TALLY_BANK_NODE_API_KEY": node_api_key(shared_node.url, shared_node.datadir),
    }
    result = tally("bank", "gateway", env=env)
    assert result.returncode == 4, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: issuer key"), result.stderr
    assert not (tmp_path / "bank").exists()
