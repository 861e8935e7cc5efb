"""A local QBFT network of `tally run` processes on loopback ports, for development and tests.

`up` writes, under one directory: a node key per node (`nodeN/nodekey`), one genesis whose
validators are the first `validators` nodes, and `network.json` (every node's address and
ports: the static peer list and the permissioned node list), then starts each node as a
detached process logging to `nodeN/node.log`. A permissioned network's genesis comes from a
generated network description and generated bank keys (`node.genesis.generated`), as a real
network's does from `tally genesis build`; the dev chain's grants the dev accounts' roles.
`status` asks each running node over JSON-RPC; `down` stops them (SIGTERM, then SIGKILL after a
grace period).

`launch` (what `tally localnet up` runs) and `status` return reports whose `lines()` are what
the command prints, so the CLI stays a loop of echoes: `up` on a network where some nodes
still run starts only the others, and says which it started and which were running already;
a stopped node's status says `stopped` rather than guessing a height.

With `tls`, a new network gets a throwaway CA and a certificate per node under `tls/`
(`node.certs`), and every node serves its client ports over TLS; clients take `tls/ca.pem`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from node.certs import write_local_pki
from node.chain.genesis import dev_genesis
from node.genesis.build import build_genesis
from node.genesis.build import write_network as write_description_network
from node.genesis.generated import LocalNodeEntry, describe
from node.keys import load_or_create_node_key
from node.ports import free_ports

STATE_FILE = "localnet.json"
NETWORK_FILE = "network.json"
GENESIS_FILE = "genesis.json"
TLS_DIR = "tls"


@dataclass
class LocalNode:
    name: str
    address: str
    validator: bool
    rpc_port: int
    ws_port: int
    p2p_port: int
    pid: int | None = None
    admin_port: int | None = None
    """The admin listener's port (token in `<dir>/<name>/admin-rpc.token`); None: none."""
    tls_ca: str | None = None
    """The CA file (absolute) that signed the node's TLS certificate; None: plain HTTP."""

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.rpc_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"


def create(
    directory: Path,
    validators: int,
    members: int,
    block_period: int = 1,
    *,
    containers: bool = False,
    permissioned: bool = False,
    tls: bool = False,
) -> list[LocalNode]:
    """Keys, genesis and network file for a new network (nothing is started).

    With `containers`, every node gets the standard ports and is reached by its name as a
    host (one container per node, as docker-compose.yml runs them); otherwise nodes share
    loopback and each gets free ports.
    """
    directory.mkdir(parents=True, exist_ok=True)
    nodes: list[LocalNode] = []
    count = validators + members
    ports = [8545, 8546, 30303, 8551] * count if containers else free_ports(4 * count)
    for index in range(count):
        name = f"node{index}"
        key = load_or_create_node_key(directory / name)
        rpc, ws, p2p, admin = ports[4 * index : 4 * index + 4]
        address = key.public_key.to_checksum_address()
        nodes.append(LocalNode(name, address, index < validators, rpc, ws, p2p, admin_port=admin))
    if permissioned:
        _build_permissioned(directory, nodes, block_period, containers=containers)
    else:
        _build_dev(directory, nodes, block_period, containers=containers)
    if tls:
        ca = write_local_pki(directory / TLS_DIR, [node.name for node in nodes]).resolve()
        for node in nodes:
            node.tls_ca = str(ca)
    save(directory, nodes)
    return nodes


def _build_dev(
    directory: Path, nodes: list[LocalNode], block_period: int, *, containers: bool
) -> None:
    """The dev chain's genesis (the dev accounts hold the bank's roles) and network.json."""
    validator_addresses = tuple(
        sorted(bytes.fromhex(node.address[2:]) for node in nodes if node.validator)
    )
    genesis = dev_genesis(
        validator_addresses[0],
        block_period=block_period,
        validators=validator_addresses,
        nodes=[bytes.fromhex(node.address[2:]) for node in nodes],
    ).dated_now()
    (directory / GENESIS_FILE).write_text(genesis.dumps())
    write_network(directory, nodes, containers=containers)


def _build_permissioned(
    directory: Path, nodes: list[LocalNode], block_period: int, *, containers: bool
) -> None:
    """The ceremony's path: generated bank keys and network.toml, then `genesis build`'s
    genesis.json and network.json (`node.genesis.generated`)."""
    entries = [
        LocalNodeEntry(
            node.name,
            node.address,
            f"{node.name if containers else '127.0.0.1'}:{node.p2p_port}",
            node.validator,
        )
        for node in nodes
    ]
    description = describe(directory, entries, block_period)
    write_description_network(description, build_genesis(description), directory)


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


def start_node(directory: Path, node: LocalNode, extra_args: Sequence[str] = ()) -> None:
    """Start `node`'s `tally run` in the background; `extra_args` are more `run` options (a
    benchmark's cache size, say)."""
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
            "--admin-port",
            str(node.admin_port or 0),
            *_tls_args(directory, node),
            *extra_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    node.pid = process.pid


def _tls_args(directory: Path, node: LocalNode) -> list[str]:
    if node.tls_ca is None:
        return []
    files = directory / TLS_DIR
    return [
        "--tls-cert",
        str(files / f"{node.name}.crt"),
        "--tls-key",
        str(files / f"{node.name}.key"),
    ]


@dataclass(frozen=True)
class Launch:
    """What `launch` did: the network's nodes, whether it created the network, and which
    nodes it started (the others were running already)."""

    directory: Path
    nodes: list[LocalNode]
    created: bool
    started: frozenset[str]

    def lines(self) -> list[str]:
        """The report `tally localnet up` prints: one line per node, saying what became of it."""
        validators = sum(node.validator for node in self.nodes)
        members = len(self.nodes) - validators
        what = "created" if self.created else "using"
        lines = [f"{what} network {self.directory}: {validators} validators, {members} members"]
        if self.nodes and self.nodes[0].tls_ca:
            lines.append(f"TLS on client ports; clients trust {self.nodes[0].tls_ca}")
        for node in self.nodes:
            role = "validator" if node.validator else "member"
            lines.append(f"{node.name}  {role:9}  {node.address}  {node.url}  {self._fate(node)}")
        return lines

    def _fate(self, node: LocalNode) -> str:
        if node.name not in self.started:
            return f"already running (pid {node.pid})"
        log = self.directory / node.name / "node.log"
        if not is_running(node):
            return f"started, but exited: see {log}"
        if rpc(node, "eth_chainId") is None:
            return f"started (pid {node.pid}), not answering yet: see {log}"
        return f"started (pid {node.pid})"


def launch(
    directory: Path,
    validators: int,
    members: int,
    block_period: int = 1,
    permissioned: bool = False,
    wait: float = 60.0,
    tls: bool = False,
) -> Launch:
    """Create the network the first time, start every node not running, and wait up to
    `wait` seconds for the started ones to answer JSON-RPC.

    An existing network is kept as it is: `validators`, `members`, `block_period` and
    `permissioned` and `tls` only shape a new one."""
    created = not (directory / STATE_FILE).exists()
    nodes = (
        create(directory, validators, members, block_period, permissioned=permissioned, tls=tls)
        if created
        else load(directory)
    )
    started = [node for node in nodes if not is_running(node)]
    for node in started:
        start_node(directory, node)
    save(directory, nodes)
    deadline = time.monotonic() + wait
    for node in started:
        while time.monotonic() < deadline and is_running(node):
            if rpc(node, "eth_chainId") is not None:
                break
            time.sleep(0.2)
    return Launch(directory, nodes, created, frozenset(node.name for node in started))


def up(
    directory: Path,
    validators: int,
    members: int,
    block_period: int = 1,
    permissioned: bool = False,
    wait: float = 60.0,
) -> list[LocalNode]:
    """`launch`, for callers that need only the running nodes."""
    return launch(directory, validators, members, block_period, permissioned, wait).nodes


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


@dataclass(frozen=True)
class NodeStatus:
    """One node as `status` found it; `height` and `peers` are None when it did not answer."""

    node: LocalNode
    running: bool
    height: int | None = None
    peers: int | None = None

    def line(self) -> str:
        """The node's line in `tally localnet status`."""
        role = "validator" if self.node.validator else "member"
        if not self.running:
            state = "stopped"
        elif self.height is None or self.peers is None:
            state = f"running (pid {self.node.pid}), not answering JSON-RPC"
        else:
            state = f"up  height={self.height}  peers={self.peers}"
        return f"{self.node.name}  {role:9}  {state}  {self.node.url}"


def status(directory: Path) -> list[NodeStatus]:
    """Every node's liveness, and the height and peer count of those running."""
    rows = []
    for node in load(directory):
        if not is_running(node):
            rows.append(NodeStatus(node, running=False))
            continue
        head = rpc(node, "eth_blockNumber")
        peers = rpc(node, "net_peerCount")
        rows.append(
            NodeStatus(
                node,
                running=True,
                height=None if head is None else int(str(head), 16),
                peers=None if peers is None else int(str(peers), 16),
            )
        )
    return rows


def rpc(node: LocalNode, method: str, params: list | None = None) -> object | None:
    verify = ssl.create_default_context(cafile=node.tls_ca) if node.tls_ca else True
    try:
        response = httpx.post(
            node.url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
            timeout=5,
            verify=verify,
        )
        return response.json().get("result")
    except (httpx.HTTPError, ValueError):
        return None


def is_running(node: LocalNode) -> bool:
    """Whether the node's process is alive. A node this process started is reaped here when it
    has exited; one started by an earlier `tally localnet up` belongs to init once that command
    ends, and where init does not reap (a container without one) it stays a zombie, which is
    not running: without that check `down` would wait on it for ever."""
    if node.pid is None:
        return False
    with contextlib.suppress(ChildProcessError):  # not our child: psutil decides below
        finished, _ = os.waitpid(node.pid, os.WNOHANG)
        if finished:
            return False
    try:
        return psutil.Process(node.pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def save(directory: Path, nodes: list[LocalNode]) -> None:
    (directory / STATE_FILE).write_text(json.dumps([asdict(n) for n in nodes], indent=2) + "\n")


def load(directory: Path) -> list[LocalNode]:
    return [LocalNode(**row) for row in json.loads((directory / STATE_FILE).read_text())]
