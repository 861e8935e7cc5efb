"""A real 4-validator + 1-member QBFT localnet of processes on loopback (issue checklist).

Finality with one validator down, a safe halt with two down, recovery on their return with
every node agreeing on every block hash (and proposers executing their blocks ahead of their
block timers meanwhile), a validator restarted with an empty datadir, and a validator voted
out and back in while transactions flow.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3.types import RPCEndpoint

from node import localnet
from tests.conftest import admin_token, rpc_call, web3_for

# Runs alone, after the parallel tests (scripts/test.sh): four validator processes on two cores.
pytestmark = pytest.mark.serial


def heights(nodes: list[localnet.LocalNode]) -> list[int | None]:
    result = []
    for node in nodes:
        value = localnet.rpc(node, "eth_blockNumber")
        result.append(None if value is None else int(cast(str, value), 16))  # a hex quantity
    return result


def answered_heights(nodes: list[localnet.LocalNode]) -> list[int]:
    """`heights(nodes)` where the test relies on every node answering (a None would fail it)."""
    return cast(list[int], heights(nodes))


# `...`: a lambda binding a loop variable as a default has parameters, though none is passed.
def wait_for(
    condition: Callable[..., bool], timeout: float = 60.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def hashes_agree(nodes: list[localnet.LocalNode], upto: int) -> None:
    clients = [web3_for(node.url) for node in nodes]
    for number in range(upto + 1):
        seen = {client.eth.get_block(number)["hash"] for client in clients}
        assert len(seen) == 1, f"nodes disagree at height {number}: {seen}"


def healthy(nodes: list[localnet.LocalNode], within: float = 15.0) -> bool:
    """Whether every node runs and all of them pass the highest block any of them has now."""
    if not all(localnet.is_running(node) for node in nodes):
        return False
    target = max(h or 0 for h in heights(nodes)) + 1
    try:
        wait_for(lambda: min(h or 0 for h in heights(nodes)) >= target, timeout=within)
    except AssertionError:
        return False
    return True


class Networks:
    """The module's localnet, started again only when a test left it unhealthy.

    Each test ends with every node running and in agreement, so the next one can start from
    there: starting four validators and a member costs some 12 s a test on two cores."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started = 0
        self.current: tuple[Path, list[localnet.LocalNode]] | None = None

    def healthy_one(self) -> tuple[Path, list[localnet.LocalNode]]:
        if self.current is not None and healthy(self.current[1]):
            return self.current
        self.stop()
        self.started += 1
        directory = self.root / f"qbft-{self.started}"
        nodes = localnet.up(directory, validators=4, members=1)
        self.current = directory, nodes
        wait_for(lambda: min(h or 0 for h in heights(nodes)) >= 2, what="first blocks")
        return self.current

    def stop(self) -> None:
        if self.current is not None:
            localnet.down(self.current[0])
            self.current = None


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Networks]:
    started = Networks(tmp_path_factory.mktemp("qbft"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def net(networks: Networks) -> tuple[Path, list[localnet.LocalNode]]:
    return networks.healthy_one()


class Payer(threading.Thread):
    """Sends a transfer through the member every ~0.2 s and records the receipts it sees."""

    def __init__(self, url: str, account: LocalAccount) -> None:
        super().__init__(daemon=True)
        self.w3 = web3_for(url)
        self.account = account
        self.recipient = Account.create().address
        self.stop = threading.Event()
        self.sent: list[HexBytes] = []
        self.errors: list[str] = []

    def run(self) -> None:
        nonce: int = self.w3.eth.get_transaction_count(self.account.address, "pending")
        while not self.stop.is_set():
            signed = self.account.sign_transaction(
                {
                    "nonce": nonce,
                    "gas": 21000,
                    "gasPrice": 0,
                    "to": self.recipient,
                    "value": 1,
                    "chainId": 1337,
                }
            )
            try:
                self.sent.append(self.w3.eth.send_raw_transaction(signed.raw_transaction))
                nonce += 1
            except Exception as exc:  # the node may refuse while catching up; retry
                self.errors.append(repr(exc))
            time.sleep(0.2)

    def finish(self, timeout: float = 60.0) -> int:
        self.stop.set()
        self.join(timeout=10)
        for tx_hash in self.sent:
            assert self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)["status"] == 1
        return len(self.sent)


def test_faults_halt_safely_and_recover(
    net: tuple[Path, list[localnet.LocalNode]], dev_accounts: list[LocalAccount]
) -> None:
    directory, nodes = net
    payer = Payer(nodes[4].url, dev_accounts[5])
    payer.start()
    assert nodes[3].pid is not None
    os.kill(nodes[3].pid, signal.SIGKILL)
    start = max(h or 0 for h in heights(nodes[:3]))
    wait_for(lambda: min(answered_heights(nodes[:3])) >= start + 3, what="progress with f=1 down")
    assert nodes[2].pid is not None
    os.kill(nodes[2].pid, signal.SIGKILL)
    time.sleep(3)
    stalled = answered_heights(nodes[:2])
    time.sleep(6)
    assert heights(nodes[:2]) == stalled, "the chain advanced without a quorum"
    hashes_agree([nodes[0], nodes[1], nodes[4]], max(stalled))
    for node in (nodes[2], nodes[3]):
        localnet.start_node(directory, node)
    localnet.save(directory, nodes)
    wait_for(
        lambda: min(h or 0 for h in heights(nodes)) >= max(stalled) + 3,
        timeout=90,
        what="recovery after the validators returned",
    )
    sent = payer.finish()
    assert sent > 10
    top = min(answered_heights(nodes))
    hashes_agree(nodes, top)
    logs = "".join(
        (directory / node.name / "node.log").read_text("utf-8", "replace") for node in nodes
    )
    ahead = [int(n) for n in re.findall(r"(\d+) of them executed ahead of the timer", logs)]
    assert any(ahead), "no proposer executed any transaction ahead of its block timer"


def test_a_validator_restarted_with_an_empty_datadir_rejoins(
    net: tuple[Path, list[localnet.LocalNode]],
) -> None:
    directory, nodes = net
    victim = nodes[1]
    localnet.stop_node(victim)
    chaindata = directory / victim.name / "chaindata"
    for item in chaindata.iterdir():
        item.unlink()
    chaindata.rmdir()
    time.sleep(2)
    localnet.start_node(directory, victim)
    localnet.save(directory, nodes)
    target = max(h or 0 for h in heights(nodes)) + 3
    wait_for(
        lambda: all((h or 0) >= target for h in heights(nodes)),
        timeout=90,
        what="the emptied validator to catch up",
    )
    hashes_agree(nodes, target)


def test_a_validator_is_voted_out_and_back_in(
    net: tuple[Path, list[localnet.LocalNode]], dev_accounts: list[LocalAccount]
) -> None:
    directory, nodes = net
    validators = [web3_for(node.url) for node in nodes[:4]]
    subject = nodes[3].address

    def vote(method: str, *params: object) -> None:
        """`method` on the first three validators' admin listeners."""
        for node in nodes[:3]:
            token = admin_token(directory / node.name)
            assert rpc_call(node.admin_url, method, [subject, *params], token) is True

    payer = Payer(nodes[4].url, dev_accounts[6])
    payer.start()

    def current() -> list[str]:
        return validators[0].provider.make_request(
            RPCEndpoint("qbft_getValidatorsByBlockNumber"), ["latest"]
        )["result"]

    vote("qbft_proposeValidatorVote", False)
    wait_for(lambda: subject not in current(), timeout=60, what="the vote out")
    vote("qbft_discardValidatorVote")
    assert len(current()) == 3
    base = min(answered_heights(nodes))
    wait_for(
        lambda: min(answered_heights(nodes)) >= base + 3, what="progress with three validators"
    )
    vote("qbft_proposeValidatorVote", True)
    wait_for(lambda: subject in current(), timeout=60, what="the vote back in")
    vote("qbft_discardValidatorVote")
    base = min(answered_heights(nodes))
    wait_for(lambda: min(answered_heights(nodes)) >= base + 3, what="progress with four validators")
    assert payer.finish() > 5
    hashes_agree(nodes, min(answered_heights(nodes)))


def test_a_kill9_loop_of_one_validator_loses_no_transaction(
    net: tuple[Path, list[localnet.LocalNode]], dev_accounts: list[LocalAccount]
) -> None:
    """benchmarks/chaos.py's kill9-one, short: two rounds of kill -9 of one validator (another
    each round) while transfers flow through the member; each restart carries on from its own
    datadir and pool journal, every transaction given a hash is final, every node agrees."""
    directory, nodes = net
    payer = Payer(nodes[4].url, dev_accounts[6])
    payer.start()
    for victim in (nodes[1], nodes[2]):
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        start = max(h or 0 for h in heights(nodes))
        wait_for(lambda s=start: max(h or 0 for h in heights(nodes)) >= s + 2, what="3 of 4 go on")
        localnet.start_node(directory, victim)
        localnet.save(directory, nodes)
        top = max(h or 0 for h in heights(nodes))
        wait_for(lambda t=top: min(h or 0 for h in heights(nodes)) >= t + 1, what="the victim back")
    assert payer.finish() > 5
    hashes_agree(nodes, min(answered_heights(nodes)))
