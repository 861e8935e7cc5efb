"""`tally wallet` end to end on a real node: keys in both stores, balances, a payment request
paid from the token key, history, the README's tour (import a key, fund a new one from the dev
faucet), options after the command name, and the documented exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from client import cli
from tally_cli import app
from tests.conftest import REPO, free_port
from tests.test_client_softhsm import USER_PIN, softhsm_tokens


@pytest.fixture
def run(shared_node, tmp_path: Path):  # type: ignore[no-untyped-def]
    softhsm_tokens()
    env = {
        "TALLY_RPC_URL": shared_node.url,
        "TALLY_KEYSTORE_DIR": str(tmp_path / "keys"),
        "TALLY_KEYSTORE_PASSWORD": "secret",
        "TALLY_SCRYPT_N": "4096",
        "TALLY_PKCS11_TOKEN": "sdk-cli",
        "TALLY_PKCS11_PIN": USER_PIN,
    }
    runner = CliRunner()

    def invoke(*args: str, code: int = 0, stdin: str | None = None, **extra: str):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, ["wallet", *args], env=env | extra, input=stdin)
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


def test_wallet_cli_end_to_end(run, w3, dev_accounts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    created = run("new", "shop", "--keystore", "file").output
    shop = created.split()[-1]
    assert "created file key shop" in created
    hsm_output = run("new", "payer", "--keystore", "pkcs11").output
    payer = hsm_output.split()[-1]
    assert "created pkcs11 key payer" in hsm_output
    assert payer in run("list", TALLY_KEYSTORE="pkcs11").output
    assert run("address", TALLY_WALLET_KEY="shop").output.strip() == shop

    funder = dev_accounts[8]
    tx = funder.sign_transaction(
        {
            "to": payer,
            "value": 5 * 10**18,
            "gas": 21000,
            "gasPrice": 0,
            "chainId": 1337,
            "nonce": w3.eth.get_transaction_count(funder.address, "pending"),
        }
    )
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction))
    pkcs11_env = {"TALLY_KEYSTORE": "pkcs11", "TALLY_WALLET_KEY": "payer"}
    assert run("balance", **pkcs11_env).output.strip() == "5 ETH"

    png = tmp_path / "request.png"
    requested = run("request", "1.25", "--png", str(png), TALLY_WALLET_KEY="shop")
    request = requested.stdout
    uri = request.splitlines()[0]
    assert uri == f"ethereum:{shop}@1337?value=1250000000000000000"
    assert requested.stderr.strip() == f"asks for 1.25 ETH to {shop} on chain 1337"
    assert png.read_bytes()[:4] == b"\x89PNG" and ("▀" in request or "█" in request)
    bare = run("request", "1.25", "--no-qr", TALLY_WALLET_KEY="shop").stdout
    assert bare == uri + "\n"

    paid = run("pay", uri, "--yes", **pkcs11_env).output
    assert "pay 1.25 ETH to" in paid and "final in block" in paid
    assert run("balance", "--raw", TALLY_WALLET_KEY="shop").output.strip() == str(125 * 10**16)
    run("send", shop, "0.5", **pkcs11_env)
    history = run("history", TALLY_WALLET_KEY="shop").output
    assert history.count(" in ") >= 2 and "1.25 ETH" in history and "0.5 ETH" in history


def test_wallet_cli_exit_codes(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("new", "only", "--keystore", "file")
    denied = run(
        "send",
        "0x" + "11" * 20,
        "1",
        code=cli.EXIT_KEYSTORE,
        TALLY_WALLET_KEY="only",
        TALLY_KEYSTORE_PASSWORD="nope",
    )
    assert "wrong password" in denied.output
    run("address", code=cli.EXIT_KEYSTORE, TALLY_WALLET_KEY="missing")
    bad_pin = run(
        "list",
        code=cli.EXIT_KEYSTORE,
        TALLY_KEYSTORE="pkcs11",
        TALLY_PKCS11_PIN="0000",
        TALLY_PKCS11_TOKEN="sdk-pins",
    )
    assert "PIN" in bad_pin.output
    malformed = run(
        "pay", "ethereum:0x1234?value=1", "--yes", code=cli.EXIT_REQUEST, TALLY_WALLET_KEY="only"
    )
    assert "not a 20-byte 0x address" in malformed.output
    other_chain = run(
        "pay",
        f"ethereum:{'0x' + '22' * 20}@1?value=1",
        "--yes",
        code=cli.EXIT_REQUEST,
        TALLY_WALLET_KEY="only",
    )
    assert "chain 1" in other_chain.output
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"assets": {"ETH": {"per_payment": "1000"}}}))
    refused = run(
        "send",
        "0x" + "33" * 20,
        "1",
        code=cli.EXIT_POLICY,
        TALLY_WALLET_KEY="only",
        TALLY_POLICY=str(policy),
    )
    assert "per-payment limit" in refused.output
    broke = run("send", "0x" + "33" * 20, "1", code=cli.EXIT_NODE, TALLY_WALLET_KEY="only")
    assert "insufficient funds" in broke.output


def test_tally_wallet_is_mounted_in_the_tally_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tally_cli", "wallet", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    commands = ("new", "import", "list", "address", "balance", "send", "request", "pay", "fund")
    for command in (*commands, "history"):
        assert f"\n  {command} " in result.stdout


def test_the_readme_tour_import_a_dev_key_and_fund_a_new_one(run, dev_accounts) -> None:  # type: ignore[no-untyped-def]
    dev7 = dev_accounts[7]
    imported = run("import", "dev7", stdin="0x" + bytes(dev7.key).hex() + "\n").output
    assert imported.split()[-1] == dev7.address and "imported file key dev7" in imported
    assert run("address", "--key", "dev7").output.strip() == dev7.address
    fresh = run("new", "fresh").output.split()[-1]
    funded = run("fund", "2.5", "--key", "fresh").output
    assert f"funded {fresh} with 2.5 ETH from dev account 0" in funded
    assert "final in block" in funded
    assert run("balance", "--key", "fresh").output.strip() == "2.5 ETH"
    run("fund", "1", "--raw", "--to", fresh)
    assert run("balance", "--raw", "--key", "fresh").output.strip() == str(25 * 10**17 + 1)
    request = run("request", "0.005", "--key", "fresh", "--no-qr").output.splitlines()
    assert request[0] == f"ethereum:{fresh}@1337?value={5 * 10**15}"
    paid = run("pay", request[0], "--yes", "--key", "dev7").output
    assert "pay 0.005 ETH to" in paid and "final in block" in paid
    assert run("balance", "--key", "fresh").output.strip() == "2.505000000000000001 ETH"


def test_wallet_options_work_after_the_command_name_and_win(run, shared_node) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port()}"
    run("new", "late")
    after = run("balance", "--key", "late", "--rpc", shared_node.url, TALLY_RPC_URL=dead)
    assert after.output.strip() == "0 ETH"
    before = run("--rpc", shared_node.url, "balance", "--key", "late", TALLY_RPC_URL=dead)
    assert before.output.strip() == "0 ETH"
    overridden = run(
        "--rpc", shared_node.url, "balance", "--key", "late", "--rpc", dead, code=cli.EXIT_NODE
    )
    assert dead in overridden.output
