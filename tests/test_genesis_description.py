"""The network description and `tally genesis build|inspect`, and `tally run`'s refusals of a
real network's genesis that grants the dev keys or enforces nothing. Real commands as
subprocesses; no node needs to start for any of this, so nothing here waits on a chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.chain.genesis import Genesis, dev_accounts
from node.genesis.build import build_genesis, write_network
from node.genesis.description import DescriptionError, load_description, parse_description
from node.genesis.inspect import inspect_genesis
from tests.conftest import free_port
from tests.network_files import network_description
from tests.test_cli_errors import assert_refused, tally

NODE_A = "0x1111111111111111111111111111111111111111"
NODE_B = "0x2222222222222222222222222222222222222222"
ADMINS = [
    "0x3333333333333333333333333333333333333333",
    "0x4444444444444444444444444444444444444444",
    "0x5555555555555555555555555555555555555555",
]
ISSUER = "0x6666666666666666666666666666666666666666"
COMPLIANCE = "0x7777777777777777777777777777777777777777"
FEES = "0x8888888888888888888888888888888888888888"
AUDITOR = "0x9999999999999999999999999999999999999999"
FUNDED = "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa"

SAMPLE = network_description(
    4242,
    nodes=[
        ("Bank A", NODE_A, "10.0.0.1:30303", True),
        ("Bank B", NODE_B, "b.example:30303", False),
    ],
    admins=ADMINS,
    issuer=ISSUER,
    compliance=COMPLIANCE,
    fee_collector=FEES,
    auditors=(AUDITOR,),
    allocations=((FUNDED, 25 * 10**18),),
)


def _line(text: str, needle: str) -> int:
    """The 1-based line of `text` holding `needle`."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("change", "needle", "field", "phrase"),
    [
        (("validator = false", "validatr = false"), "validatr", "nodes[1].validatr", "Extra"),
        ((ISSUER, "0x66"), "0x66", "roles.issuer", "not an address"),
        ((FUNDED, "0xA" + FUNDED[3:]), "0xA" + FUNDED[3:], "allocations[0].address", "checksum"),
        (("threshold = 2", "threshold = 4"), "threshold", "admin_group.threshold", "4 approvals"),
        (("b.example:30303", "b.example:0"), "b.example", "nodes[1].endpoint", "host:port"),
        ((AUDITOR, ADMINS[1]), "auditors", "roles.auditors[0]", "already an admin"),
        (("id = 4242", 'id = "x"'), "id =", "chain.id", "valid integer"),
        ((f'issuer = "{ISSUER}"', ""), "[roles]", "roles.issuer", "required"),
        (("[chain]", "[chain]\nblock_period = 0"), "block_", "chain.block_period", "equal to 1"),
    ],
)
def test_a_bad_description_names_the_field_and_its_line(
    change: tuple[str, str], needle: str, field: str, phrase: str
) -> None:
    text = SAMPLE.replace(*change)
    assert text != SAMPLE
    with pytest.raises(DescriptionError) as refused:
        parse_description(text, "network.toml")
    message = str(refused.value)
    assert message.startswith(f"network.toml:{_line(text, needle)}: {field}: "), message
    assert phrase in message and "\n" not in message


def test_the_defaults_are_a_permissioned_network_with_no_allocation() -> None:
    text = SAMPLE.split("\n[[allocations]]")[0].replace("permissioned = true\n", "")
    description = parse_description(text)
    assert description.chain.permissioned and description.allocations == []
    assert description.token.decimals == 2 and description.chain.block_period == 1


def test_build_writes_genesis_and_node_list_and_inspect_shows_every_grant(tmp_path: Path) -> None:
    review = "[token]\nreview_thresholds = [0, 20_000]\nreview_window_seconds = 3_600\n"
    (tmp_path / "network.toml").write_text(SAMPLE + "\n" + review)
    out = tmp_path / "out"
    built = tally("genesis", "build", str(tmp_path / "network.toml"), "--out", str(out))
    assert built.returncode == 0, built.stderr
    genesis = Genesis.load(out / "genesis.json")
    assert genesis.chain_id == 4242 and genesis.permissions
    assert [f"0x{v.hex()}" for v in genesis.validators] == [NODE_A]
    assert json.loads((out / "network.json").read_text())["nodes"] == [
        {"name": "Bank A", "address": NODE_A, "host": "10.0.0.1", "p2pPort": 30303},
        {"name": "Bank B", "address": NODE_B, "host": "b.example", "p2pPort": 30303},
    ]

    sheet = tally("genesis", "inspect", str(out / "genesis.json"),
                  "--network", str(out / "network.json"))  # fmt: skip
    assert sheet.returncode == 0, sheet.stderr
    lines = sheet.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    text = sheet.stdout
    hash_line = next(line for line in lines if line.startswith("Genesis hash 0x"))
    assert hash_line.split()[-1] in built.stdout  # what build announced is what is inspected
    assert "Chain id 4242" in text and "Permissioning on" in text
    validators = text.split("Validators (1,")[1].split("\n\n")[0]
    assert f"{NODE_A}  Bank A" in validators and NODE_B not in validators
    assert f"{NODE_B}  Bank B" in text.split("Allowed nodes (NodeRules)")[1].split("\n\n")[0]
    assert "Admin group (AdminGroup): 2 of 3 approve" in text
    holders = [(ISSUER, "issuer"), (COMPLIANCE, "compliance"), (AUDITOR, "auditor")]
    for address, role in [*((a, "admin") for a in ADMINS), *holders, (FEES, "enterprise")]:
        assert any(line.split()[:2] == [address, role] for line in lines), (address, role)
    assert f"{FEES}  fee collector" in text
    assert any(line.split()[:2] == ["0x000000000000000000000000000000000000a003", "system"]
               and line.endswith("Escrow") for line in lines)  # fmt: skip
    assert f"Allocations (1)\n  {FUNDED}  25 ETH" in text

    as_json = tally("genesis", "inspect", str(out / "genesis.json"), "--json")
    report = json.loads(as_json.stdout)
    assert report["admins"] == ADMINS and report["threshold"] == 2
    assert report["token"]["fee_collector"] == FEES and report["token"]["decimals"] == 2
    assert report["allocations"][0]["balance"] == 25 * 10**18
    assert report["token"]["review_thresholds"] == [0, 20_000]
    assert report["token"]["review_window_seconds"] == 3_600
    assert report["genesis_hash"] == hash_line.split()[-1]

    again = tally("genesis", "build", str(tmp_path / "network.toml"), "--out", str(out))
    assert_refused(again, 7, "exists", "built once")


def test_build_refuses_a_bad_description_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "network.toml").write_text(SAMPLE.replace("threshold = 2", "threshold = 0"))
    out = tmp_path / "o"
    refused = tally("genesis", "build", str(tmp_path / "network.toml"), "--out", str(out))
    line = _line(SAMPLE, "threshold")
    assert_refused(refused, 7, f"network.toml:{line}: admin_group.threshold:")
    assert not out.exists()


def _build(description: Path, out: Path) -> None:
    """What `tally genesis build` writes, in-process (its own tests run the command)."""
    network = load_description(description)
    write_network(network, build_genesis(network), out)


def test_a_real_network_genesis_granting_a_dev_key_is_refused(tmp_path: Path) -> None:
    dev = dev_accounts()
    (tmp_path / "network.toml").write_text(SAMPLE.replace(ADMINS[0], dev[0].address))
    out = tmp_path / "out"
    refused = tally("genesis", "build", str(tmp_path / "network.toml"), "--out", str(out))
    assert_refused(refused, 7, dev[0].address, "dev account 0", "admin group member",
                   "--allow-dev-keys")  # fmt: skip
    _build(tmp_path / "network.toml", out)  # as `build --allow-dev-keys` would

    datadir = tmp_path / "node"
    refused = tally("run", "--genesis", str(out / "genesis.json"), "--datadir", str(datadir),
                    "--rpc-port", str(free_port()), "--ws-port", str(free_port()))  # fmt: skip
    assert_refused(refused, 7, f"{dev[0].address} (dev account 0): AccountRules role admin",
                   "--allow-dev-keys")  # fmt: skip
    assert not datadir.exists()


def test_a_real_network_genesis_without_permissioning_is_refused(tmp_path: Path) -> None:
    (tmp_path / "network.toml").write_text(
        SAMPLE.replace("permissioned = true", "permissioned = false")
    )
    out = tmp_path / "out"
    _build(tmp_path / "network.toml", out)
    assert not inspect_genesis(Genesis.load(out / "genesis.json")).permissioned
    datadir = tmp_path / "node"
    refused = tally("run", "--genesis", str(out / "genesis.json"), "--datadir", str(datadir),
                    "--rpc-port", str(free_port()), "--ws-port", str(free_port()))  # fmt: skip
    assert_refused(refused, 7, "chain 4242", "no permissioning", "--allow-unpermissioned")
    assert not datadir.exists()


def test_a_permissioned_localnet_takes_the_ceremony_path_with_generated_keys(
    tmp_path: Path,
) -> None:
    from eth_account import Account

    from node import localnet

    nodes = localnet.create(tmp_path, validators=2, members=1, permissioned=True)
    keys = tmp_path / "bank-keys"
    assert keys.stat().st_mode & 0o777 == 0o700
    holders = {}
    for path in sorted(keys.iterdir()):
        assert path.stat().st_mode & 0o777 == 0o600, path
        holders[path.stem] = Account.from_key(path.read_text().strip()).address
    report = inspect_genesis(Genesis.load(tmp_path / "genesis.json"))
    assert report.admins == [holders[f"admin-{n}"] for n in (1, 2, 3)] and report.threshold == 2
    roles = {(r.address, r.role) for r in report.roles}
    assert {(holders["issuer"], "issuer"), (holders["compliance"], "compliance"),
            (holders["auditor"], "auditor")} <= roles  # fmt: skip
    assert report.token is not None and report.token.fee_collector == holders["fee-collector"]
    assert report.allocations == [] and report.permissioned
    assert report.nodes == [node.address for node in nodes]
    dev = {account.address for account in dev_accounts()}
    assert not dev & {address for address, _ in report.grants()}
    assert parse_description((tmp_path / "network.toml").read_text()).chain.permissioned
