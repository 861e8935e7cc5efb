"""The `tally` command: run a node, write a genesis, and (later) wallet and audit tools."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from node.chain.genesis import Genesis, dev_genesis
from node.keys import load_or_create_node_key

ApiSwitch = Annotated[
    bool, typer.Option(help="Serve the REST API (/api/v1, /docs) beside JSON-RPC.")
]
ApiRateLimit = Annotated[
    str, typer.Option(help="REST requests allowed per credential (per client).")
]
ApiSessionTtl = Annotated[
    int, typer.Option(min=0, help="Seconds a sign-in-with-Ethereum session token lives.")
]
ApiChallengeTtl = Annotated[
    int, typer.Option(min=0, help="Seconds a sign-in challenge waits for its signature.")
]

app = typer.Typer(
    help="Tally: a permissioned EVM chain for a bank's digital wallet.", no_args_is_help=True
)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _run(config: object) -> None:
    from node.service import Node

    node = Node(config)  # type: ignore[arg-type]
    try:
        import uvloop

        uvloop.run(node.run())
    except ImportError:
        asyncio.run(node.run())


@app.command()
def dev(
    datadir: Path = typer.Option(Path(".tally/dev"), help="Where the chain's LevelDB lives."),
    rpc_port: int = typer.Option(8545, help="JSON-RPC over HTTP."),
    ws_port: int = typer.Option(8546, help="JSON-RPC over WebSocket."),
    block_period: int = typer.Option(1, min=1, help="Seconds between blocks (when txs wait)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    max_log_range: int = typer.Option(10_000, min=1, help="Most blocks one eth_getLogs spans."),
    permissioned: bool = typer.Option(
        False, help="Enforce AccountRules/NodeRules (only the dev accounts may transact)."
    ),
    api: ApiSwitch = True,
    api_rate_limit: ApiRateLimit = "50/second;1000/minute",
    api_session_ttl: ApiSessionTtl = 900,
    api_challenge_ttl: ApiChallengeTtl = 300,
    log_level: str = typer.Option("info"),
) -> None:
    """A single-validator dev chain with the ten well-known dev accounts prefunded."""
    from node.service import NodeConfig

    _logging(log_level)
    _run(
        NodeConfig(
            datadir=datadir,
            dev=True,
            dev_block_period=block_period,
            dev_permissioned=permissioned,
            host=host,
            rpc_port=rpc_port,
            ws_port=ws_port,
            max_log_range=max_log_range,
            api=api,
            api_rate_limit=api_rate_limit,
            api_session_ttl=api_session_ttl,
            api_challenge_ttl=api_challenge_ttl,
        )
    )


@app.command()
def run(
    genesis: Path = typer.Option(..., exists=True, help="The network's genesis JSON."),
    datadir: Path = typer.Option(..., help="Where this node's key and LevelDB live."),
    network: Path | None = typer.Option(
        None, exists=True, help="network.json: the nodes (static peers and permissioned list)."
    ),
    rpc_port: int = typer.Option(8545),
    ws_port: int = typer.Option(8546),
    p2p_port: int = typer.Option(30303, help="Port for authenticated node-to-node links."),
    host: str = typer.Option("127.0.0.1"),
    max_log_range: int = typer.Option(10_000, min=1, help="Most blocks one eth_getLogs spans."),
    api: ApiSwitch = True,
    api_rate_limit: ApiRateLimit = "50/second;1000/minute",
    api_session_ttl: ApiSessionTtl = 900,
    api_challenge_ttl: ApiChallengeTtl = 300,
    log_level: str = typer.Option("info"),
) -> None:
    """Run a node of the network described by GENESIS."""
    from node.service import NodeConfig

    _logging(log_level)
    _run(
        NodeConfig(
            datadir=datadir,
            genesis=genesis,
            network=network,
            host=host,
            rpc_port=rpc_port,
            ws_port=ws_port,
            p2p_port=p2p_port,
            max_log_range=max_log_range,
            api=api,
            api_rate_limit=api_rate_limit,
            api_session_ttl=api_session_ttl,
            api_challenge_ttl=api_challenge_ttl,
        )
    )


@app.command()
def init(
    out: Path = typer.Option(Path("genesis.json"), help="Where to write the genesis JSON."),
    datadir: Path = typer.Option(Path(".tally/node"), help="Node key location (validator)."),
    chain_id: int = typer.Option(1337),
    block_period: int = typer.Option(1, min=1),
    gas_limit: int = typer.Option(60_000_000),
) -> None:
    """Write a genesis whose single validator is this datadir's node key (created if needed)."""
    key = load_or_create_node_key(datadir)
    base = dev_genesis(
        key.public_key.to_canonical_address(), chain_id=chain_id, block_period=block_period
    )
    genesis = Genesis(
        chain_id=base.chain_id,
        validators=base.validators,
        alloc=base.alloc,
        gas_limit=gas_limit,
        block_period_seconds=block_period,
    )
    genesis.check()
    out.write_text(genesis.dumps())
    typer.echo(f"wrote {out} (validator 0x{key.public_key.to_canonical_address().hex()})")


localnet_app = typer.Typer(help="A local network of node processes on loopback ports.")
app.add_typer(localnet_app, name="localnet")


@localnet_app.command("up")
def localnet_up(
    directory: Path = typer.Option(Path(".tally/localnet"), "--dir", help="Keys, logs, datadirs."),
    validators: int = typer.Option(4, min=1),
    members: int = typer.Option(0, min=0),
    block_period: int = typer.Option(1, min=1),
    permissioned: bool = typer.Option(False, help="Enforce AccountRules/NodeRules."),
) -> None:
    """Create (first time) and start the network; print each node's JSON-RPC URL."""
    from node import localnet

    for node in localnet.up(directory, validators, members, block_period, permissioned):
        role = "validator" if node.validator else "member"
        typer.echo(f"{node.name}  {role:9}  {node.address}  {node.url}")


@localnet_app.command("init")
def localnet_init(
    directory: Path = typer.Option(Path(".tally/localnet"), "--dir"),
    validators: int = typer.Option(4, min=1),
    members: int = typer.Option(0, min=0),
    block_period: int = typer.Option(1, min=1),
    containers: bool = typer.Option(False, help="Nodes reached by name on standard ports."),
    permissioned: bool = typer.Option(False, help="Enforce AccountRules/NodeRules."),
) -> None:
    """Write keys, genesis and network.json only (what docker-compose's init step runs)."""
    from node import localnet

    if (directory / localnet.GENESIS_FILE).exists():
        typer.echo(f"{directory} already holds a network; keeping it")
        return
    for node in localnet.create(
        directory,
        validators,
        members,
        block_period,
        containers=containers,
        permissioned=permissioned,
    ):
        typer.echo(f"{node.name}  {'validator' if node.validator else 'member'}  {node.address}")


@localnet_app.command("status")
def localnet_status(
    directory: Path = typer.Option(Path(".tally/localnet"), "--dir"),
) -> None:
    """Height, peers and liveness of every node."""
    from node import localnet

    for row in localnet.status(directory):
        typer.echo(
            f"{row['name']}  {row['role']:9}  {'up' if row['running'] else 'down':4}  "
            f"height={row['height']}  peers={row['peers']}  {row['url']}"
        )


@localnet_app.command("down")
def localnet_down(
    directory: Path = typer.Option(Path(".tally/localnet"), "--dir"),
) -> None:
    """Stop every node of the network (data is kept)."""
    from node import localnet

    localnet.down(directory)
    typer.echo("stopped")


from client.audit_cli import audit_app  # noqa: E402 - the chain verifier, `tally audit`
from client.cli import wallet_app  # noqa: E402 - the SDK's CLI, mounted as `tally wallet`

app.add_typer(wallet_app, name="wallet")
app.add_typer(audit_app, name="audit")

if __name__ == "__main__":
    app()
