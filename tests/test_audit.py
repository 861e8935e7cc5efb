"""`tally audit verify`: the client-side chain verifier against a real 4-validator localnet.

The chain carries legacy, access-list and EIP-1559 transactions, a contract creation, contract
calls with logs (the genesis WalletToken and Points, a deployed Probe) and a reverted call.
Verification passes on it, with and without re-execution, and all four validators give the
Etherscan API the same internal transactions and failure reasons; then a stopped validator's
datadir is copied, blocks in the copy's LevelDB are altered (a transaction's raw bytes, a
receipt's status, a commit seal, a header field), a node is started on the copy with no peers,
and the verifier must name each altered block and the check it fails. The pure QBFT rules
(votes, proposer, seal quorum) are checked without a node at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import eth_abi
import httpx
import plyvel
import pytest
import rlp
from eth.abc import BlockHeaderAPI
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth_account.signers.local import LocalAccount
from eth_keys import keys
from eth_typing import Address, BlockNumber, Hash32, HexStr
from eth_utils import keccak, to_canonical_address, to_checksum_address
from web3 import Web3

from client.audit import ChainAudit, RpcSource, check_consensus, verify_chain
from client.qbft import (
    MIX_HASH,
    ExtraData,
    VoteTally,
    commit_seal_hash,
    decode_extra_data,
    proposer,
)
from client.replay import GenesisSpec
from node import localnet
from node.storage import schema
from node.storage.records import decode_receipt_record, decode_transaction_record
from tests.conftest import REPO, free_port, web3_for

# Runs alone, after the parallel tests (scripts/test.sh): a four-validator localnet.
pytestmark = pytest.mark.serial

CHAIN_ID = 1337
WALLET_TOKEN = to_checksum_address("0x000000000000000000000000000000000000a002")
ISSUER, CUSTOMER, OTHER_CUSTOMER, SENDER = 1, 6, 7, 5


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def height(url: str) -> int:
    try:
        answer = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
        ).json()
        return int(answer["result"], 16)
    except (httpx.HTTPError, KeyError, ValueError):
        return -1


@dataclass
class Net:
    directory: Path
    nodes: list[localnet.LocalNode]
    receipts: dict[str, dict]

    def block_of(self, name: str) -> int:
        return int(self.receipts[name]["blockNumber"])


def selector_call(signature: str, types: list[str], values: list) -> bytes:
    return keccak(text=signature)[:4] + eth_abi.encode(types, values)


def send_traffic(w3: Web3, dev: list) -> dict[str, dict]:
    """Every transaction type Tally takes, contract creation and calls; returns receipts."""
    from contracts import load_artifact

    sender, issuer, customer = dev[SENDER], dev[ISSUER], dev[CUSTOMER]
    nonce = w3.eth.get_transaction_count(sender.address)
    creator = to_canonical_address(sender.address)
    probe = to_checksum_address(keccak(rlp.encode([creator, nonce + 2]))[12:])
    fees = {"maxFeePerGas": 0, "maxPriorityFeePerGas": 0, "type": 2, "chainId": CHAIN_ID}
    plan = {
        "legacy": {"to": dev[8].address, "value": 10**18, "gas": 21000, "gasPrice": 0},
        "access_list": {
            "to": dev[8].address,
            "value": 7,
            "gas": 30000,
            "gasPrice": 0,
            "type": 1,
            "accessList": [{"address": dev[8].address, "storageKeys": ["0x" + "00" * 32]}],
        },
        "create": {"data": load_artifact("Probe")["bytecode"], "gas": 2_000_000, **fees},
        "poke": {
            "to": probe,
            "data": selector_call("poke(uint256)", ["uint256"], [42]),
            "gas": 100_000,
            **fees,
        },
        "revert": {
            "to": probe,
            "data": selector_call("failRequire()", [], []),
            "gas": 100_000,
            **fees,
        },
    }
    hashes = {}
    for offset, (name, fields) in enumerate(plan.items()):
        tx = {"nonce": nonce + offset, "chainId": CHAIN_ID, **fields}
        hashes[name] = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    mint = selector_call(
        "mint(address,uint256,bytes32)",
        ["address", "uint256", "bytes32"],
        [customer.address, 100_00, keccak(text=f"audit top-up {time.time()}")],
    )
    hashes["mint"] = w3.eth.send_raw_transaction(
        issuer.sign_transaction(
            {
                "to": WALLET_TOKEN,
                "data": mint,
                "gas": 500_000,
                "nonce": w3.eth.get_transaction_count(issuer.address),
                **fees,
            }
        ).raw_transaction
    )
    receipts = {
        name: dict(w3.eth.wait_for_transaction_receipt(h, timeout=60)) for name, h in hashes.items()
    }
    pay = selector_call(
        "transfer(address,uint256)", ["address", "uint256"], [dev[OTHER_CUSTOMER].address, 10_00]
    )
    paid = w3.eth.send_raw_transaction(
        customer.sign_transaction(
            {
                "to": WALLET_TOKEN,
                "data": pay,
                "gas": 500_000,
                "nonce": w3.eth.get_transaction_count(customer.address),
                **fees,
            }
        ).raw_transaction
    )
    receipts["payment"] = dict(w3.eth.wait_for_transaction_receipt(paid, timeout=60))
    return receipts


@pytest.fixture(scope="module")
def net(
    tmp_path_factory: pytest.TempPathFactory, dev_accounts: list[LocalAccount]
) -> Iterator[Net]:
    directory = tmp_path_factory.mktemp("audit") / "net"
    nodes = localnet.up(directory, validators=4, members=0)
    try:
        wait_for(lambda: min(height(n.url) for n in nodes) >= 2, what="first blocks")
        receipts = send_traffic(web3_for(nodes[0].url), dev_accounts)
        last = max(int(r["blockNumber"]) for r in receipts.values())
        wait_for(lambda: min(height(n.url) for n in nodes) >= last + 4, what="later blocks")
        yield Net(directory, nodes, receipts)
    finally:
        localnet.down(directory)


def test_the_traffic_is_what_the_audit_should_cover(net: Net) -> None:
    statuses = {name: receipt["status"] for name, receipt in net.receipts.items()}
    assert statuses == {
        "legacy": 1,
        "access_list": 1,
        "create": 1,
        "poke": 1,
        "revert": 0,
        "mint": 1,
        "payment": 1,
    }
    assert net.receipts["poke"]["logs"] and net.receipts["payment"]["logs"]


def test_verify_passes_on_the_localnet(net: Net) -> None:
    url = net.nodes[1].url
    head = height(url)
    source = RpcSource(url)
    try:
        report = verify_chain(source, last=head)
        assert report.failures == []
        assert (report.first, report.last, report.checked, report.reexecuted) == (
            0,
            head,
            head + 1,
            0,
        )
        replayed = verify_chain(source, last=head, reexecute=True)
        assert replayed.failures == []
        assert replayed.reexecuted == head
        ranged = verify_chain(source, first=head - 2, last=head, reexecute=True)
        assert ranged.ok and ranged.checked == 3 and ranged.reexecuted == head
    finally:
        source.close()


def test_a_genesis_document_that_does_not_build_block_0_is_reported(net: Net) -> None:
    source = RpcSource(net.nodes[0].url)
    try:
        document = source.genesis_document()
        document["alloc"] = dict(document["alloc"])
        document["alloc"]["0x" + "11" * 20] = {"balance": "0x1"}
        report = verify_chain(source, last=2, genesis=document, reexecute=True)
    finally:
        source.close()
    assert [(f.block, f.check) for f in report.failures] == [(0, "genesis")]
    assert report.reexecuted == 0


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tally_cli", "audit", "verify", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_the_cli_exit_codes(net: Net, tmp_path: Path) -> None:
    url = net.nodes[2].url
    head = height(url)
    genesis = net.directory / localnet.GENESIS_FILE
    passed = run_cli("--rpc", url, "--to", str(head), "--reexecute", "--genesis", str(genesis))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert f"blocks 0..{head}: {head + 1} checked, {head} re-executed" in passed.stdout
    assert "all checks passed" in passed.stdout
    backwards = run_cli("--rpc", url, "--from", "5", "--to", "3")
    assert backwards.returncode == 7 and "--from 5 is after --to 3" in backwards.stderr
    past = run_cli("--rpc", url, "--from", str(head + 500), "--to", str(head + 1500))
    assert past.returncode == 7 and "past the head of the chain" in past.stderr
    assert past.stdout == "" and len(past.stderr.splitlines()) == 1
    unreachable = run_cli("--rpc", f"http://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 5 and "cannot read the chain" in unreachable.stderr


def test_every_validator_indexes_the_same_internal_transactions(
    net: Net, dev_accounts: list[LocalAccount]
) -> None:
    """Each round-0 block is accepted by f validators from its proposer's state diff, without
    running it; the backfill (`node.chain.backfill`) replays it there, so every validator gives
    auditors the same internal transactions and the same reason for a failed transaction."""
    from tests.test_api_etherscan import FORWARDER

    w3 = web3_for(net.nodes[0].url)
    sender = dev_accounts[4]
    nonce = w3.eth.get_transaction_count(sender.address)
    forwarder = keccak(rlp.encode([to_canonical_address(sender.address), nonce]))[12:]
    recipient = b"\x42" * 20
    fees = {"maxFeePerGas": 0, "maxPriorityFeePerGas": 0, "type": 2, "chainId": CHAIN_ID}
    spin = selector_call("spin(uint256)", ["uint256"], [10**6])
    plan = [
        {"data": FORWARDER, "gas": 200_000},
        {
            "to": to_checksum_address(forwarder),
            "value": 5,
            "data": recipient.rjust(32, b"\0"),  # the forwarder calls word 0 with the value
            "gas": 200_000,
        },
        {"to": net.receipts["create"]["contractAddress"], "data": spin, "gas": 60_000},
    ]
    hashes = [
        w3.eth.send_raw_transaction(
            sender.sign_transaction({"nonce": nonce + n, **fees, **fields}).raw_transaction
        ).to_0x_hex()
        for n, fields in enumerate(plan)
    ]
    for tx_hash in hashes:
        w3.eth.wait_for_transaction_receipt(HexStr(tx_hash), timeout=60)

    def answers(node: localnet.LocalNode) -> tuple:
        key = (net.directory / node.name / "api-admin.key").read_text().strip()

        def get(**params: str) -> Any:
            body = httpx.get(node.url + "/api", params={**params, "apikey": key}, timeout=30)
            return body.json()["result"]

        internal = get(module="account", action="txlistinternal", txhash=hashes[1])
        status = get(module="transaction", action="getstatus", txhash=hashes[2])
        return [(row["from"], row["to"], row["value"]) for row in internal], status

    expected = (
        [("0x" + forwarder.hex(), "0x" + recipient.hex(), "5")],
        {"isError": "1", "errDescription": "Out of gas"},
    )
    wait_for(
        lambda: all(answers(node) == expected for node in net.nodes),
        what="every validator's internal transactions",
    )


# --- a corrupted copy --------------------------------------------------------------------------


def corrupt(chaindata: Path, net: Net, seal_block: int, field_block: int) -> None:
    """Alter, in a stopped node's LevelDB: a transfer's raw bytes, the mint's receipt status,
    one commit seal of `seal_block`, and the gas limit of `field_block`'s header."""
    db = plyvel.DB(str(chaindata))
    try:
        tx_hash = bytes(net.receipts["legacy"]["transactionHash"])
        record = decode_transaction_record(db.get(schema.transaction_key(tx_hash)))
        fields = rlp.decode(record.raw)
        fields[4] = rlp.sedes.big_endian_int.serialize(2 * 10**18)  # the value sent
        db.put(schema.transaction_key(tx_hash), rlp.encode(record.copy(raw=rlp.encode(fields))))

        mint_hash = bytes(net.receipts["mint"]["transactionHash"])
        receipt = decode_receipt_record(db.get(schema.receipt_key(mint_hash)))
        db.put(schema.receipt_key(mint_hash), rlp.encode(receipt.copy(status=0)))

        def rewrite(number: int, change: Callable[[BlockHeaderAPI], BlockHeaderAPI]) -> None:
            block_hash = db.get(schema.canonical_hash_key(number))
            header = rlp.decode(db.get(schema.header_key(block_hash)), sedes=PragueBlockHeader)
            db.put(schema.header_key(block_hash), rlp.encode(change(header)))

        def forge_seal(header: BlockHeaderAPI) -> BlockHeaderAPI:
            extra = decode_extra_data(header.extra_data)
            stranger = keys.PrivateKey(keccak(b"not a validator"))
            forged = stranger.sign_msg_hash(commit_seal_hash(header, extra.round)).to_bytes()
            changed = ExtraData(
                extra.vanity, extra.validators, extra.vote, extra.round, (forged, *extra.seals[1:])
            )
            return header.copy(extra_data=changed.encode())

        rewrite(seal_block, forge_seal)
        rewrite(field_block, lambda header: header.copy(gas_limit=header.gas_limit + 1))
    finally:
        db.close()


def empty_blocks_after(url: str, start: int, count: int) -> list[int]:
    w3 = web3_for(url)
    found: list[int] = []
    number = start + 1
    while len(found) < count:
        if not w3.eth.get_block(number)["transactions"]:
            found.append(number)
            number += 1
        number += 1
    return found


def test_verify_names_each_corrupted_block_and_check(net: Net, tmp_path: Path) -> None:
    victim = net.nodes[3]
    last_tx_block = max(net.block_of(name) for name in net.receipts)
    seal_block, field_block = empty_blocks_after(victim.url, last_tx_block, 2)
    wait_for(lambda: height(victim.url) >= field_block + 1, what="the victim's head")
    localnet.stop_node(victim)
    copy = tmp_path / "copy"
    shutil.copytree(net.directory / victim.name, copy, ignore=shutil.ignore_patterns("node.log"))
    corrupt(copy / "chaindata", net, seal_block, field_block)

    rpc_port = free_port()
    url = f"http://127.0.0.1:{rpc_port}"
    log = open(tmp_path / "copy.log", "wb")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "node.cli",
            "run",
            "--genesis",
            str(net.directory / localnet.GENESIS_FILE),
            "--datadir",
            str(copy),
            "--rpc-port",
            str(rpc_port),
            "--ws-port",
            str(free_port()),
            "--p2p-port",
            str(free_port()),
            "--host",
            "127.0.0.1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    try:
        wait_for(lambda: height(url) >= 0, timeout=30, what="the corrupted copy to serve")
        head = height(url)
        source = RpcSource(url)
        report = verify_chain(source, last=head, reexecute=True)
        source.close()
        cli = run_cli("--rpc", url, "--to", str(head))
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()

    found = {(f.block, f.check) for f in report.failures}
    transfer, mint = net.block_of("legacy"), net.block_of("mint")
    expected = {
        (transfer, "transactions"),  # re-encodes to another hash, recovers to another sender
        (transfer, "reexecution"),
        (mint, "receipts"),  # the receipts root no longer follows
        (seal_block, "seals"),  # a seal from a key that is no validator's
        (field_block, "seals"),  # the seals signed the original gas limit
        (field_block + 1, "parent"),  # links to the original header's hash
    }
    assert expected <= found, report.failures
    assert {block for block, _ in found} == {
        transfer,
        mint,
        seal_block,
        field_block,
        field_block + 1,
    }
    if mint < transfer:  # replay is still on the true state there, so it sees the receipt too
        assert (mint, "reexecution") in found
    assert cli.returncode == 1, cli.stdout + cli.stderr
    for block, check in expected - {(transfer, "reexecution"), (mint, "reexecution")}:
        assert f"block {block} {check}:" in cli.stdout


# --- QBFT rules without a node ----------------------------------------------------------------

KEYS = [keys.PrivateKey(keccak(text=f"validator {i}")) for i in range(4)]
VALIDATORS = sorted(k.public_key.to_canonical_address() for k in KEYS)
BY_ADDRESS = {k.public_key.to_canonical_address(): k for k in KEYS}


def sealed_header(
    signers: list[bytes], coinbase: bytes, round_number: int = 0
) -> tuple[BlockHeaderAPI, ExtraData]:
    extra = ExtraData(b"\0" * 32, tuple(VALIDATORS), None, round_number, ())
    header = PragueBlockHeader(
        difficulty=0,
        block_number=BlockNumber(5),
        gas_limit=30_000_000,
        timestamp=100,
        coinbase=Address(coinbase),
        extra_data=extra.encode(),
        mix_hash=Hash32(MIX_HASH),
    )
    digest = commit_seal_hash(header, round_number)
    seals = tuple(BY_ADDRESS[s].sign_msg_hash(digest).to_bytes() for s in signers)
    sealed = ExtraData(extra.vanity, extra.validators, None, round_number, seals)
    return header.copy(extra_data=sealed.encode()), sealed


def parent_by(coinbase: bytes) -> BlockHeaderAPI:
    return PragueBlockHeader(
        difficulty=0,
        block_number=BlockNumber(4),
        gas_limit=1,
        timestamp=99,
        coinbase=Address(coinbase),
    )


def test_seal_quorum_and_proposer_rules() -> None:
    tally = VoteTally.starting(VALIDATORS)
    parent = parent_by(VALIDATORS[0])
    first = proposer(VALIDATORS, VALIDATORS[0], 0)
    assert first == VALIDATORS[1]

    header, extra = sealed_header(VALIDATORS[:3], first)
    assert check_consensus(header, extra, tally, parent) == []

    header, extra = sealed_header(VALIDATORS[:2], first)
    assert [c for c, _ in check_consensus(header, extra, tally, parent)] == ["seals"]

    header, extra = sealed_header([VALIDATORS[0], VALIDATORS[0], VALIDATORS[1]], first)
    problems = dict(check_consensus(header, extra, tally, parent))
    assert "repeats" in problems["seals"] and "2 valid seals, 3 needed" in problems["seals"]

    header, extra = sealed_header(VALIDATORS[:3], VALIDATORS[2])  # round 0: not its turn
    assert [c for c, _ in check_consensus(header, extra, tally, parent)] == ["proposer"]
    header, extra = sealed_header(VALIDATORS[:3], VALIDATORS[2], round_number=1)
    assert check_consensus(header, extra, tally, parent) == []  # re-proposed in round 1

    smaller = VoteTally.starting(VALIDATORS[:3])
    header, extra = sealed_header(VALIDATORS[:3], first)
    assert [c for c, _ in check_consensus(header, extra, smaller, parent)] == ["validators"]


def vote_header(
    number: int, voter: bytes, subject: bytes, add: bool, listed: list[bytes] = VALIDATORS
) -> BlockHeaderAPI:
    extra = ExtraData(b"\0" * 32, tuple(listed), (subject, add), 0, ())
    return PragueBlockHeader(
        difficulty=0,
        block_number=BlockNumber(number),
        gas_limit=1,
        timestamp=number,
        coinbase=Address(voter),
        extra_data=extra.encode(),
    )


def test_votes_change_the_validator_set_as_besu_tallies_them() -> None:
    newcomer = to_canonical_address("0x" + "ee" * 20)
    tally = VoteTally.starting(VALIDATORS)
    for number, voter in enumerate(VALIDATORS[:2], start=1):
        tally = tally.after(vote_header(number, voter, newcomer, True), epoch_length=100)
    assert newcomer not in tally.validators  # 2 of 4: below floor(4/2) + 1
    tally = tally.after(vote_header(3, VALIDATORS[1], newcomer, True), epoch_length=100)
    assert newcomer not in tally.validators  # the same voter again does not count twice
    tally = tally.after(vote_header(4, VALIDATORS[2], newcomer, True), epoch_length=100)
    assert newcomer in tally.validators and not tally.adds.get(newcomer)

    outsider = to_canonical_address("0x" + "01" * 20)
    ignored = tally.after(vote_header(5, outsider, VALIDATORS[0], False), epoch_length=100)
    assert ignored == tally  # only validators' votes count

    victim = VALIDATORS[3]
    tally = tally.after(vote_header(5, victim, newcomer, False), epoch_length=100)
    for number, voter in enumerate(VALIDATORS[:3], start=6):
        tally = tally.after(vote_header(number, voter, victim, False), epoch_length=100)
    assert victim not in tally.validators
    assert all(victim not in voters for voters in tally.drops.values())  # its votes went too

    epoch = tally.after(vote_header(100, VALIDATORS[0], newcomer, False, VALIDATORS), 100)
    assert epoch.sorted == tuple(VALIDATORS) and not epoch.adds and not epoch.drops


def test_genesis_document_rebuilds_the_dev_chains_block_0(net: Net) -> None:
    source = RpcSource(net.nodes[0].url)
    try:
        spec = GenesisSpec.from_json(source.genesis_document())
        (block0,) = source.blocks([0], False)
    finally:
        source.close()
    assert "0x" + ChainAudit(spec, reexecute=False).genesis_hash.hex() == block0["hash"]
