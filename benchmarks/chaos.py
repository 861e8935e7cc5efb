"""Chaos on a 4-validator localnet under a steady load: kills, a wiped datadir, partitions.

Every node runs in a network namespace of its own (`ip netns`), joined to a bridge in the root
namespace by a veth pair, with its own address (10.77.0.N) on which it serves p2p and JSON-RPC.
A partition is made at layer 2: the cut-off nodes' veths are moved to a second bridge, so the
two sides cannot exchange a packet (the client in the root namespace keeps reaching the side
on the first bridge); healing moves them back. Needs root (CAP_NET_ADMIN). With `--loopback`
the nodes share loopback instead and the partition scenarios are skipped (a partition made by
blocking at the p2p layer would not test the network).

A client (benchmarks/load.py) sends `--rate` signed transfers a second from the dev accounts
throughout, to any node that answers, and a watcher notes every block. Scenarios, in order:

- kill9-one: `--rounds` times, kill -9 one validator (each round the next), 8 s, restart it
- kill9-two: kill -9 two validators (the chain halts), 15 s, restart both
- kill9-all: kill -9 all four, 5 s, restart all
- wipe-one: kill -9 one validator, delete its chain data and pool journal (its node key
  stays), restart it; the load avoids it meanwhile, since what a wiped node alone held is gone
- isolate-one: cut one validator off for 20 s, heal
- split-2-2: split the validators two and two for 30 s, heal

Per scenario: transactions given hashes, receipted, missing (given but in no block once the
network has caught up, 60 s at most), the longest stall (no new block), and the time from the
restart or heal to the first block after it (`recovery`; for a single node down the chain does
not stop, so this is the first block after it returned).

    sudo python benchmarks/chaos.py                      # every scenario, ~6 min
    python benchmarks/chaos.py --scenarios kill9-one,split-2-2 --rate 50
    python benchmarks/chaos.py --loopback                # no namespaces: kills and wipe only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.load import Sender, Watcher, rpc
from node import localnet

SUBNET = "10.77.0"
BRIDGE, SIDE_BRIDGE = "tlyb0", "tlyb1"
SCENARIOS = ("kill9-one", "kill9-two", "kill9-all", "wipe-one", "isolate-one", "split-2-2")
PARTITIONS = ("isolate-one", "split-2-2")


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


class Fabric:
    """The namespaces, bridges and veth pairs; `address(i)` is node i's IP in its namespace."""

    def __init__(self, count: int, tag: str) -> None:
        self.count = count
        self.tag = tag

    def namespace(self, index: int) -> str:
        return f"tly{self.tag}{index}"

    def veth(self, index: int) -> str:
        return f"tly{self.tag}h{index}"

    @staticmethod
    def address(index: int) -> str:
        return f"{SUBNET}.{index + 1}"

    def create(self) -> None:
        for bridge in (BRIDGE, SIDE_BRIDGE):
            sh("ip", "link", "add", bridge, "type", "bridge")
            sh("ip", "link", "set", bridge, "up")
        sh("ip", "addr", "add", f"{SUBNET}.254/24", "dev", BRIDGE)
        for index in range(self.count):
            namespace, veth = self.namespace(index), self.veth(index)
            sh("ip", "netns", "add", namespace)
            sh(
                "ip",
                "link",
                "add",
                veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                namespace,
            )
            sh("ip", "link", "set", veth, "master", BRIDGE, "up")
            inside = ("ip", "netns", "exec", namespace)
            sh(*inside, "ip", "addr", "add", f"{self.address(index)}/24", "dev", "eth0")
            sh(*inside, "ip", "link", "set", "eth0", "up")
            sh(*inside, "ip", "link", "set", "lo", "up")

    def destroy(self) -> None:
        for index in range(self.count):
            subprocess.run(["ip", "link", "del", self.veth(index)], capture_output=True)
            subprocess.run(["ip", "netns", "del", self.namespace(index)], capture_output=True)
        for bridge in (BRIDGE, SIDE_BRIDGE):
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)

    def cut(self, indexes: Sequence[int]) -> None:
        for index in indexes:
            sh("ip", "link", "set", self.veth(index), "master", SIDE_BRIDGE)

    def heal(self, indexes: Sequence[int]) -> None:
        for index in indexes:
            sh("ip", "link", "set", self.veth(index), "master", BRIDGE)


class Net:
    """A 4-validator localnet whose nodes run in the fabric's namespaces (or on loopback)."""

    def __init__(self, directory: Path, fabric: Fabric | None) -> None:
        self.directory = directory
        self.fabric = fabric
        self.nodes = localnet.create(directory, validators=4, members=0)
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.avoid: set[int] = set()
        self.cut: set[int] = set()
        if fabric is not None:
            network = json.loads((directory / localnet.NETWORK_FILE).read_text())
            for index, entry in enumerate(network["nodes"]):
                entry["host"] = fabric.address(index)
            (directory / localnet.NETWORK_FILE).write_text(json.dumps(network, indent=2))

    def host(self, index: int) -> str:
        return "127.0.0.1" if self.fabric is None else self.fabric.address(index)

    def url(self, index: int) -> str:
        return f"http://{self.host(index)}:{self.nodes[index].rpc_port}"

    def start(self, index: int) -> None:
        node = self.nodes[index]
        prefix = (
            [] if self.fabric is None else ["ip", "netns", "exec", self.fabric.namespace(index)]
        )
        log = open(self.directory / node.name / "node.log", "ab")  # noqa: SIM115 - the child's
        self.processes[index] = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "node.cli",
                "run",
                "--genesis",
                str(self.directory / localnet.GENESIS_FILE),
                "--datadir",
                str(self.directory / node.name),
                "--network",
                str(self.directory / localnet.NETWORK_FILE),
                "--host",
                self.host(index),
                "--rpc-port",
                str(node.rpc_port),
                "--ws-port",
                str(node.ws_port),
                "--p2p-port",
                str(node.p2p_port),
                "--admin-port",
                "0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )

    def kill9(self, index: int) -> None:
        process = self.processes.pop(index)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def targets(self) -> list[str]:
        """The URLs the client may use now: running, reachable, not avoided."""
        return [
            self.url(index)
            for index in self.processes
            if index not in self.avoid and index not in self.cut
        ]

    def heights(self) -> list[int]:
        import httpx

        with httpx.Client(timeout=2) as client:
            answers = [rpc(client, self.url(index), "eth_blockNumber") for index in range(4)]
        return [int(answer, 16) if answer else -1 for answer in answers]

    def wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.2)
        return False


@dataclass
class Row:
    scenario: str
    given: int
    receipted: int
    missing: int
    max_stall: float
    recovery: list[float]


def run_scenario(name: str, net: Net, sender: Sender, watcher: Watcher, rounds: int) -> Row:
    before = set(sender.hashes())
    start = time.monotonic()
    events: list[float] = []  # restart / heal moments
    if name == "kill9-one":
        for turn in range(rounds):
            victim = turn % 4
            net.kill9(victim)
            time.sleep(8)
            net.start(victim)
            events.append(time.monotonic())
            net.wait(lambda: min(net.heights()) >= max(net.heights()) - 1, 60)
            time.sleep(3)
    elif name == "kill9-two":
        for victim in (2, 3):
            net.kill9(victim)
        time.sleep(15)
        for victim in (2, 3):
            net.start(victim)
        events.append(time.monotonic())
    elif name == "kill9-all":
        for victim in range(4):
            net.kill9(victim)
        time.sleep(5)
        for victim in range(4):
            net.start(victim)
        events.append(time.monotonic())
    elif name == "wipe-one":
        victim = 1
        net.avoid.add(victim)
        time.sleep(1)
        net.kill9(victim)
        datadir = net.directory / net.nodes[victim].name
        shutil.rmtree(datadir / "chaindata")
        (datadir / "txpool.journal").unlink(missing_ok=True)
        time.sleep(3)
        net.start(victim)
        events.append(time.monotonic())
        net.wait(lambda: min(net.heights()) >= max(net.heights()) - 1, 90)
        net.avoid.discard(victim)
    elif name == "isolate-one":
        assert net.fabric is not None
        net.cut = {3}
        net.fabric.cut([3])
        time.sleep(20)
        net.fabric.heal([3])
        net.cut = set()
        events.append(time.monotonic())
    elif name == "split-2-2":
        assert net.fabric is not None
        net.cut = {2, 3}
        net.fabric.cut([2, 3])
        time.sleep(30)
        net.fabric.heal([2, 3])
        net.cut = set()
        events.append(time.monotonic())
    net.wait(lambda: watcher.first_block_after(events[-1]) is not None, 90)
    time.sleep(5)  # settle: the load keeps running
    end = time.monotonic()
    given = [tx for tx in sender.hashes() if tx not in before]
    net.wait(lambda: all(tx in watcher.included for tx in given), 60)
    receipted = sum(tx in watcher.included for tx in given)
    recovery = [watcher.first_block_after(moment) or float("nan") for moment in events]
    return Row(
        name, len(given), receipted, len(given) - receipted, watcher.max_stall(start, end), recovery
    )


@contextmanager
def network(loopback: bool) -> Iterator[Net]:
    fabric = None if loopback else Fabric(4, str(os.getpid() % 1000))
    with tempfile.TemporaryDirectory(prefix="tally-chaos-") as tmp:
        try:
            if fabric is not None:
                fabric.destroy()  # leftovers of an interrupted run with the same names
                fabric.create()
            net = Net(Path(tmp), fabric)
            for index in range(4):
                net.start(index)
            yield net
        finally:
            if "net" in locals():
                net.stop_all()
            if fabric is not None:
                fabric.destroy()


def print_table(rows: list[Row], rate: float, skipped: dict[str, str]) -> None:
    print(f"\nchaos on a 4-validator localnet, {rate:g} transfers/s offered throughout")
    print(
        f"{'scenario':12} {'given':>7} {'receipted':>9} {'missing':>7} {'max stall':>9}  recovery"
    )
    for row in rows:
        recovery = ", ".join(f"{value:.1f} s" for value in row.recovery)
        print(
            f"{row.scenario:12} {row.given:>7} {row.receipted:>9} {row.missing:>7} "
            f"{row.max_stall:>7.1f} s  {recovery}"
        )
    for name, reason in skipped.items():
        print(f"{name:12} skipped: {reason}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--rate", type=float, default=50.0, help="transfers per second offered")
    parser.add_argument("--rounds", type=int, default=3, help="kill9-one rounds")
    parser.add_argument("--loopback", action="store_true", help="no namespaces (no partitions)")
    args = parser.parse_args(argv)
    chosen = [name for name in args.scenarios.split(",") if name]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    skipped: dict[str, str] = {}
    if not args.loopback and os.geteuid() != 0:
        print(
            "network namespaces need root (CAP_NET_ADMIN): use sudo or --loopback", file=sys.stderr
        )
        return 2
    if args.loopback:
        for name in PARTITIONS:
            if name in chosen:
                chosen.remove(name)
                skipped[name] = "--loopback: partitions need network namespaces"
    rows: list[Row] = []
    with network(args.loopback) as net:
        if not net.wait(lambda: min(net.heights()) >= 2, 90):
            print("the network did not start", file=sys.stderr)
            return 1
        sender = Sender(net.targets, args.rate)
        import httpx

        with httpx.Client(timeout=5) as client:
            sender.start_nonces(client, net.url(0))
        watcher = Watcher(net.targets)
        watcher.start()
        sender.start()
        time.sleep(5)
        for name in chosen:
            print(f"{name}...", flush=True)
            rows.append(run_scenario(name, net, sender, watcher, args.rounds))
            row = rows[-1]
            print(f"  given {row.given}, receipted {row.receipted}, missing {row.missing}")
        sender.stop_event.set()
        sender.join(timeout=10)
        watcher.stop_event.set()
        if sender.refused:
            print(f"{len(sender.refused)} refused, e.g. {sender.refused[0]}")
    print_table(rows, args.rate, skipped)
    return 0 if all(row.missing == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
