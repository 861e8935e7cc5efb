"""`tally genesis`: build a real network's genesis from its description, and inspect one.

`build` reads the network description (TOML, `node.genesis.description`), builds genesis.json
and network.json once, and refuses to overwrite either: a second genesis is another chain.
`inspect` prints what a genesis grants (roles, validators, allocations), read from the
genesis state, for each institution to sign off before starting its node. Only typer is
imported until a command runs, as for every `tally` command.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from node.cli import CONTEXT, EXIT_REQUEST, fail

GENESIS_EXIT_CODES = """\b
Exit codes: 0 done; 2 bad usage; 7 an invalid network description (the
error names the field and its line) or genesis, a grant to a well-known dev
key, or an --out that cannot be written or already holds a genesis (nothing
is written then)."""

genesis_app = typer.Typer(
    help="Build a network's genesis from its description; inspect a genesis.",
    epilog=GENESIS_EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)


@genesis_app.command("build", epilog=GENESIS_EXIT_CODES)
def build(
    description: Path = typer.Argument(..., help="The network description (network.toml)."),
    out: Path = typer.Option(..., file_okay=False, help="Directory for the two files."),
    allow_dev_keys: bool = typer.Option(
        False, help="Accept grants to the public dev keys on a chain other than 1337."
    ),
) -> None:
    """Write genesis.json and network.json for the network DESCRIPTION describes."""
    from node.chain.genesis import GenesisError
    from node.genesis.build import GENESIS_FILE, NETWORK_FILE, build_genesis, write_network
    from node.genesis.description import DescriptionError, load_description
    from node.genesis.devkeys import dev_key_refusal
    from node.genesis.inspect import inspect_genesis

    try:
        network = load_description(description)
        genesis = build_genesis(network)
        report = inspect_genesis(genesis)
    except (DescriptionError, GenesisError) as exc:
        fail(EXIT_REQUEST, str(exc))
    refusal = None if allow_dev_keys else dev_key_refusal(report)
    if refusal is not None:
        fail(EXIT_REQUEST, refusal)
    for name in (GENESIS_FILE, NETWORK_FILE):
        if (out / name).exists():
            fail(EXIT_REQUEST, f"{out / name} exists: a genesis is built once (remove it first)")
    try:
        genesis_path, network_path = write_network(network, genesis, out)
    except OSError as exc:
        fail(EXIT_REQUEST, f"cannot write into {out}: {exc}")
    typer.echo(
        f"wrote {genesis_path}: chain {report.chain_id}, {len(report.validators)} validators"
    )
    typer.echo(f"  genesis hash {report.genesis_hash}")
    typer.echo(f"wrote {network_path} ({len(network.nodes)} nodes)")
    typer.echo(f"every institution checks it with: tally genesis inspect {genesis_path}")


@genesis_app.command("inspect", epilog=GENESIS_EXIT_CODES)
def inspect(
    genesis: Path = typer.Argument(..., exists=True, dir_okay=False, help="The genesis JSON."),
    network: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="network.json: name nodes by institution."
    ),
    as_json: bool = typer.Option(False, "--json", help="The same facts as JSON."),
) -> None:
    """Print who holds which role, the validators and every allocation of GENESIS."""
    from node.chain.genesis import Genesis, GenesisError
    from node.genesis.inspect import contract_names, inspect_genesis
    from node.p2p.network import NetworkConfig, NetworkConfigError

    try:
        report = inspect_genesis(Genesis.load(genesis))
        nodes = NetworkConfig.load(network).nodes if network is not None else ()
    except (OSError, GenesisError, NetworkConfigError) as exc:
        fail(EXIT_REQUEST, str(exc))
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    from eth_utils import to_checksum_address

    names = contract_names() | {to_checksum_address(node.address): node.name for node in nodes}
    for line in report.lines(names):
        typer.echo(line)
