"""A local QBFT network of `tally run` processes on loopback ports, for development and tests.

`up` writes, under one directory: a node key per node (`nodeN/nodekey`), one genesis whose
validators are the first `validators` nodes, and `network.json` (every node's address and
ports: the static peer list and the permissioned node list), then starts each node as a
detached process logging to `nodeN/node.log`. `status` asks each node over JSON-RPC; `down`
stops them (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from node.chain.genesis import dev_genesis
from node.keys import load_or_create_node_key

STATE_FILE = "localnet.json"
NETWORK_FILE = "network.json"
GENESIS_FILE = "genesis.json"


@dataclass
class LocalNode:
    name: str
    address: str
    validator: bool
    rpc_port: int
    ws_port: int
    p2p_port: int
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


def create(
    directory: Path,
    validators: int,
    members: int,
    block_period: int = 1,
    *,
    containers: bool = False,
    permissioned: bool = False,
) -> list[LocalNode]:
    """Keys, genesis and network file for a new network (nothing is started).

    With `containers`, every node gets the standard ports and is reached by its name as a
    host (one container per node, as docker-compose.yml runs them); otherwise nodes share
    loopback and each gets free ports.
    """
    directory.mkdir(parents=True, exist_ok=True)
    nodes: list[LocalNode] = []
    count = validators + members
    ports = [8545, 8546, 30303] * count if containers else _free_ports(3 * count)
    for index in range(count):
        name = f"node{index}"
        key = load_or_create_node_key(directory / name)
        rpc, ws, p2p = ports[3 * index : 3 * index + 3]
        nodes.append(
            LocalNode(name, key.public_key.to_checksum_address(), index < validators, rpc, ws, p2p)
        )
    validator_addresses = tuple(
        sorted(bytes.fromhex(node.address[2:]) for node in nodes if node.validator)
    )
    genesis = dev_genesis(
        validator_addresses[0],
        block_period=block_period,
        validators=validator_addresses,
        nodes=[bytes.fromhex(node.address[2:]) for node in nodes],
        permissioned=permissioned,
    )
    (directory / GENESIS_FILE).write_text(genesis.dumps())
    write_network(directory, nodes, containers=containers)
    save(directory, nodes)
    return nodes


def write_network(directory: Path, nodes: list[LocalNode], *, containers: bool = False) -> None:
    network = {
        "nodes": [
            {
                "name": n.name,
                "address": n.address,
                "host": n.name if containers else "127.0.0.1",
                "p2pPort": n.p2p_port,
            }
            for n in nodes
        ]
    }
    (directory / NETWORK_FILE).write_text(json.dumps(network, indent=2) + "\n")


def start_node(directory: Path, node: LocalNode) -> None:
    log = open(directory / node.name / "node.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "node.cli",
            "run",
            "--genesis",
            str(directory / GENESIS_FILE),
            "--datadir",
            str(directory / node.name),
            "--network",
            str(directory / NETWORK_FILE),
            "--rpc-port",
            str(node.rpc_port),
            "--ws-port",
            str(node.ws_port),
            "--p2p-port",
            str(node.p2p_port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    node.pid = process.pid


def up(
    directory: Path,
    validators: int,
    members: int,
    block_period: int = 1,
    permissioned: bool = False,
    wait: float = 60.0,
) -> list[LocalNode]:
    nodes = (
        load(directory)
        if (directory / STATE_FILE).exists()
        else create(directory, validators, members, block_period, permissioned=permissioned)
    )
    for node in nodes:
        if not is_running(node):
            start_node(directory, node)
    save(directory, nodes)
    deadline = time.monotonic() + wait
    for node in nodes:
        while time.monotonic() < deadline:
            if rpc(node, "eth_chainId") is not None:
                break
            time.sleep(0.2)
    return nodes


def down(directory: Path, grace: float = 15.0) -> None:
    nodes = load(directory)
    for node in nodes:
        if is_running(node):
            os.kill(node.pid, signal.SIGTERM)  # type: ignore[arg-type]
    for node in nodes:
        stop_node(node, grace)
    save(directory, nodes)


def stop_node(node: LocalNode, grace: float = 15.0) -> None:
    """SIGTERM (if still running), wait up to `grace` seconds, then SIGKILL."""
    if is_running(node):
        os.kill(node.pid, signal.SIGTERM)  # type: ignore[arg-type]
    deadline = time.monotonic() + grace
    while is_running(node) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_running(node):
        os.kill(node.pid, signal.SIGKILL)  # type: ignore[arg-type]
        while is_running(node):
            time.sleep(0.05)
    node.pid = None


def status(directory: Path) -> list[dict[str, object]]:
    rows = []
    for node in load(directory):
        head = rpc(node, "eth_blockNumber")
        peers = rpc(node, "net_peerCount")
        rows.append(
            {
                "name": node.name,
                "role": "validator" if node.validator else "member",
                "address": node.address,
                "url": node.url,
                "running": is_running(node),
                "height": None if head is None else int(head, 16),
                "peers": None if peers is None else int(peers, 16),
            }
        )
    return rows


def rpc(node: LocalNode, method: str, params: list | None = None) -> object | None:
    try:
        response = httpx.post(
            node.url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
            timeout=5,
        )
        return response.json().get("result")
    except (httpx.HTTPError, ValueError):
        return None


def is_running(node: LocalNode) -> bool:
    if node.pid is None:
        return False
    try:
        finished, _ = os.waitpid(node.pid, os.WNOHANG)
    except ChildProcessError:
        finished = 0
        try:
            os.kill(node.pid, 0)
        except ProcessLookupError:
            return False
    return finished == 0


def save(directory: Path, nodes: list[LocalNode]) -> None:
    (directory / STATE_FILE).write_text(json.dumps([asdict(n) for n in nodes], indent=2) + "\n")


def load(directory: Path) -> list[LocalNode]:
    return [LocalNode(**row) for row in json.loads((directory / STATE_FILE).read_text())]
