"""An independent check of a Tally chain from the client side, over JSON-RPC only.

Nothing the node says is taken on trust except as the claim being checked. Block by block:

| check          | what must hold                                                              |
|----------------|-----------------------------------------------------------------------------|
| `genesis`      | block 0 is what the genesis document builds (state, extraData, header)      |
| `fetch`        | the node serves the block and its receipts                                  |
| `number`       | heights are consecutive                                                     |
| `hash`         | the header fields hash (QBFT on-chain hash) to the hash the node reports    |
| `parent`       | `parentHash` is the previous block's hash                                   |
| `header`       | QBFT extraData decodes; mixHash, difficulty 0, nonce 0, no uncles, no       |
|                | withdrawals or blob gas, the block period after the parent, the base fee    |
| `validators`   | extraData lists exactly the validators in force (derived here from the      |
|                | genesis and every vote since, never asked of the node)                      |
| `seals`        | at least ceil(2n/3) distinct commit seals, all from those validators        |
| `proposer`     | the coinbase is the proposer of some round up to the committed one (a       |
|                | re-proposed block keeps its first proposer; QBFT has no proposer signature) |
| `transactions` | each transaction re-encodes to its hash and recovers to its sender; the     |
|                | transactions root is rebuilt with py-evm's `HexaryTrie`                     |
| `receipts`     | each receipt belongs to its transaction, its bloom is its logs'; the        |
|                | receipts root, gasUsed and logsBloom of the header follow from them         |
| `reexecution`  | (optional) py-evm replays the block from the genesis state to the same      |
|                | state root, roots, gas, bloom, requests hash and receipts                   |

The checks are pure functions over JSON-RPC shapes (`check_links`, `check_header_rules`,
`check_consensus`, `check_transactions`, `check_receipts`, `compare_execution`), carried
from block to block by `ChainAudit` and driven by `verify_chain` over a small batching fetch
layer (`RpcSource`). Re-execution is `client.replay`; QBFT's rules are `client.qbft`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_UNCLE_HASH
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.db.trie import make_trie_root_and_nodes
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth.vm.forks.prague.receipts import PragueTypedReceipt
from eth.vm.forks.prague.transactions import Authorization, PragueTransactionBuilder
from eth_hash.auto import keccak
from eth_utils import ValidationError, to_bytes, to_canonical_address, to_int

from client.errors import MalformedHeader, NodeError, NodeUnreachable, VerificationError
from client.qbft import (
    MIX_HASH,
    ExtraData,
    VoteTally,
    block_hash,
    commit_seal_hash,
    decode_extra_data,
    header_from_json,
    proposer,
    quorum,
    seal_signer,
)
from client.replay import GenesisSpec, Replayer
from client.tls import ClientTls

DEFAULT_BATCH = 50


@dataclass(frozen=True, slots=True)
class Failure:
    """One check that did not hold: which block, which check, and what was found."""

    block: int
    check: str
    detail: str


@dataclass(slots=True)
class AuditReport:
    first: int
    last: int
    genesis_hash: bytes = b""
    checked: int = 0
    reexecuted: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


# --- fetching --------------------------------------------------------------------------------


class RpcSource:
    """The JSON-RPC reads an audit needs, batched into one HTTP round trip per group of blocks.

    Per-item errors (a block the node cannot serve) come back as `NodeError` values in the
    result list rather than raised, so the audit reports that block and carries on.
    """

    def __init__(self, url: str, timeout: float = 120.0, tls: ClientTls | None = None) -> None:
        self.url = url
        verify = tls.ssl_context() if tls is not None else True
        self._http = httpx.Client(timeout=timeout, verify=verify)

    def close(self) -> None:
        self._http.close()

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        payload = [
            {"jsonrpc": "2.0", "id": index, "method": method, "params": params}
            for index, (method, params) in enumerate(calls)
        ]
        try:
            response = self._http.post(self.url, json=payload)
            answers = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise NodeUnreachable(f"no JSON-RPC answer from {self.url}: {exc}") from exc
        if not isinstance(answers, list):
            error = answers.get("error", {}) if isinstance(answers, dict) else {}
            raise NodeUnreachable(f"{self.url} did not answer the batch: {error or answers!r}")
        by_id = {answer.get("id"): answer for answer in answers if isinstance(answer, dict)}
        results: list[Any] = []
        for index in range(len(calls)):
            answer = by_id.get(index, {"error": {"message": "no answer in the batch"}})
            error = answer.get("error")
            if error is not None:
                results.append(NodeError(str(error.get("message")), error.get("code")))
            else:
                results.append(answer.get("result"))
        return results

    def call(self, method: str, params: list[Any]) -> Any:
        (result,) = self.batch([(method, params)])
        if isinstance(result, NodeError):
            raise result
        return result

    def head(self) -> int:
        return to_int(hexstr=self.call("eth_blockNumber", []))

    def genesis_document(self) -> dict[str, Any]:
        return dict(self.call("tally_getGenesis", []))

    def blocks(self, numbers: Sequence[int], full: bool) -> list[Any]:
        return self.batch([("eth_getBlockByNumber", [hex(n), full]) for n in numbers])

    def receipts(self, numbers: Sequence[int]) -> list[Any]:
        return self.batch([("eth_getBlockReceipts", [hex(n)]) for n in numbers])


# --- transactions and receipts from JSON ------------------------------------------------------

_BUILDER = PragueTransactionBuilder


def transaction_from_json(tx: Mapping[str, Any]) -> SignedTransactionAPI:
    """py-evm's signed transaction for a JSON-RPC transaction object (types 0, 1, 2 and 4).

    Tally accepts no other types. Raises `ValueError` for anything it cannot rebuild.
    """
    kind = to_int(hexstr=tx.get("type", "0x0"))
    to = to_canonical_address(tx["to"]) if tx.get("to") else b""
    common: dict[str, Any] = {
        "nonce": to_int(hexstr=tx["nonce"]),
        "gas": to_int(hexstr=tx["gas"]),
        "to": to,
        "value": to_int(hexstr=tx["value"]),
        "data": to_bytes(hexstr=tx["input"]),
        "r": to_int(hexstr=tx["r"]),
        "s": to_int(hexstr=tx["s"]),
    }
    if kind == 0:
        return _BUILDER.new_transaction(
            gas_price=to_int(hexstr=tx["gasPrice"]), v=to_int(hexstr=tx["v"]), **common
        )
    typed: dict[str, Any] = {
        **common,
        "chain_id": to_int(hexstr=tx["chainId"]),
        "access_list": [
            (
                to_canonical_address(entry["address"]),
                [to_int(hexstr=key) for key in entry["storageKeys"]],
            )
            for entry in tx.get("accessList", [])
        ],
        "y_parity": to_int(hexstr=tx.get("yParity", tx["v"])),
    }
    if kind == 1:
        return _BUILDER.new_access_list_transaction(
            gas_price=to_int(hexstr=tx["gasPrice"]), **typed
        )
    if kind == 2:
        return _BUILDER.new_dynamic_fee_transaction(
            max_priority_fee_per_gas=to_int(hexstr=tx["maxPriorityFeePerGas"]),
            max_fee_per_gas=to_int(hexstr=tx["maxFeePerGas"]),
            **typed,
        )
    if kind == 4:
        return _BUILDER.new_set_code_transaction(
            max_priority_fee_per_gas=to_int(hexstr=tx["maxPriorityFeePerGas"]),
            max_fee_per_gas=to_int(hexstr=tx["maxFeePerGas"]),
            authorization_list=[_authorization_from_json(a) for a in tx["authorizationList"]],
            **typed,
        )
    raise ValueError(f"transaction type {kind} cannot be rebuilt from JSON")


def _authorization_from_json(entry: Mapping[str, Any]) -> Authorization:
    """An EIP-7702 authorization tuple as the transaction object lists it."""
    return Authorization(
        chain_id=to_int(hexstr=entry["chainId"]),
        address=to_canonical_address(entry["address"]),
        nonce=to_int(hexstr=entry["nonce"]),
        y_parity=to_int(hexstr=entry["yParity"]),
        r=to_int(hexstr=entry["r"]),
        s=to_int(hexstr=entry["s"]),
    )


def receipt_from_json(receipt: Mapping[str, Any]) -> ReceiptAPI:
    """py-evm's receipt (what the receipts trie holds) for a JSON-RPC receipt object."""
    logs = [
        Log(
            to_canonical_address(log["address"]),
            tuple(to_int(hexstr=topic) for topic in log["topics"]),
            to_bytes(hexstr=log["data"]),
        )
        for log in receipt["logs"]
    ]
    status = b"\x01" if to_int(hexstr=receipt["status"]) == 1 else b""
    inner = Receipt(status, to_int(hexstr=receipt["cumulativeGasUsed"]), logs)  # bloom from logs
    kind = to_int(hexstr=receipt.get("type", "0x0"))
    return inner if kind == 0 else PragueTypedReceipt(kind, inner)


def _trie_root(items: Sequence[SignedTransactionAPI] | Sequence[ReceiptAPI]) -> bytes:
    return bytes(make_trie_root_and_nodes(items)[0])


# --- per-block checks -------------------------------------------------------------------------


@dataclass(slots=True)
class Parent:
    """What a block is checked against from the block before it."""

    hash: bytes
    header: BlockHeaderAPI


@dataclass(frozen=True, slots=True)
class ChainRules:
    """The consensus settings of the chain, from its genesis document."""

    block_period: int
    epoch_length: int
    zero_base_fee: bool

    @classmethod
    def of(cls, genesis: GenesisSpec) -> ChainRules:
        return cls(genesis.block_period, genesis.epoch_length, genesis.zero_base_fee)


Problems = list[tuple[str, str]]
"""(check, detail) pairs for one block."""


def check_links(
    header: BlockHeaderAPI, reported: Mapping[str, Any], number: int, parent: Parent | None
) -> Problems:
    problems: Problems = []
    if header.block_number != number:
        problems.append(("number", f"block {number} is served as number {header.block_number}"))
    computed = block_hash(header)
    claimed = reported.get("hash")
    if claimed != "0x" + computed.hex():
        problems.append(("hash", f"header hashes to 0x{computed.hex()}, served as {claimed}"))
    if parent is not None and header.parent_hash != parent.hash:
        problems.append(
            (
                "parent",
                f"parentHash 0x{header.parent_hash.hex()} is not block {number - 1}'s "
                f"hash 0x{parent.hash.hex()}",
            )
        )
    return problems


def check_header_rules(
    header: BlockHeaderAPI, parent: BlockHeaderAPI, rules: ChainRules
) -> Problems:
    """Tally's fixed header fields and timing/fee rules (QBFT.md §1.1, README)."""
    found = []
    if header.mix_hash != MIX_HASH:
        found.append("mixHash is not QBFT's")
    if header.difficulty != 0:
        found.append(f"difficulty {header.difficulty}, not 0")
    if header.nonce != b"\x00" * 8:
        found.append("nonce is not zero")
    if header.uncles_hash != EMPTY_UNCLE_HASH:
        found.append("uncles hash is not the empty list's")
    if header.timestamp < parent.timestamp + rules.block_period:
        found.append(
            f"timestamp {header.timestamp} is less than {rules.block_period}s after the "
            f"parent's {parent.timestamp}"
        )
    expected_fee = 0 if rules.zero_base_fee else calculate_expected_base_fee_per_gas(parent)
    if header.base_fee_per_gas != expected_fee:
        found.append(f"base fee {header.base_fee_per_gas}, expected {expected_fee}")
    if header.gas_used > header.gas_limit:
        found.append("gasUsed exceeds gasLimit")
    if header.withdrawals_root != BLANK_ROOT_HASH:
        found.append("withdrawalsRoot is not the empty trie's (Tally has no withdrawals)")
    if header.blob_gas_used or header.excess_blob_gas:
        found.append("blob gas fields are not 0 (Tally takes no blob transactions)")
    return [("header", "; ".join(found))] if found else []


def check_consensus(
    header: BlockHeaderAPI, extra: ExtraData, tally: VoteTally, parent: BlockHeaderAPI
) -> Problems:
    """Validator list, commit seals and proposer against the validators in force."""
    problems: Problems = []
    validators = tally.sorted
    if not validators:
        return [("validators", "no validators are in force: nobody can seal this block")]
    if extra.validators != validators:
        problems.append(
            (
                "validators",
                f"extraData lists {_addresses(extra.validators)}, "
                f"in force are {_addresses(validators)}",
            )
        )
    digest = commit_seal_hash(header, extra.round)
    signers: set[bytes] = set()
    bad = []
    for index, seal in enumerate(extra.seals):
        signer = seal_signer(digest, seal)
        if signer is None:
            bad.append(f"seal {index} is not a valid signature")
        elif signer not in tally.validators:
            bad.append(f"seal {index} is from non-validator 0x{signer.hex()}")
        elif signer in signers:
            bad.append(f"seal {index} repeats 0x{signer.hex()}")
        else:
            signers.add(signer)
    needed = quorum(len(validators))
    if len(signers) < needed:
        bad.append(f"{len(signers)} valid seals, {needed} needed")
    if bad:
        problems.append(("seals", "; ".join(bad)))
    rounds = min(extra.round, len(validators) - 1) + 1
    candidates = {proposer(validators, parent.coinbase, r) for r in range(rounds)}
    if header.coinbase not in candidates:
        problems.append(
            (
                "proposer",
                f"coinbase 0x{header.coinbase.hex()} is not the proposer of any round up to "
                f"{extra.round} (expected one of {_addresses(sorted(candidates))})",
            )
        )
    return problems


def check_transactions(
    header: BlockHeaderAPI, reported_hash: bytes, transactions: Sequence[Any]
) -> tuple[list[SignedTransactionAPI] | None, Problems]:
    """Rebuild the block's transactions; None when any cannot be (so it cannot be replayed)."""
    rebuilt: list[SignedTransactionAPI] = []
    found = []
    for index, item in enumerate(transactions):
        if not isinstance(item, Mapping):
            return None, [("transactions", f"transaction {index} is served as a hash only")]
        try:
            tx = transaction_from_json(item)
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            return None, [("transactions", f"transaction {index} cannot be rebuilt: {exc!r}")]
        rebuilt.append(tx)
        computed = keccak(tx.encode())
        if item.get("hash") != "0x" + computed.hex():
            found.append(f"transaction {index} hashes to 0x{computed.hex()}, not its hash")
        try:
            sender = tx.sender
        except (ValidationError, ValueError) as exc:
            found.append(f"transaction {index} signature does not recover: {exc}")
        else:
            if str(item.get("from", "")).lower() != "0x" + sender.hex():
                found.append(f"transaction {index} is signed by 0x{sender.hex()}, not its from")
        placed = (item.get("blockHash"), item.get("transactionIndex"))
        if placed != ("0x" + reported_hash.hex(), hex(index)):
            found.append(f"transaction {index} is placed at {placed}")
    root = _trie_root(rebuilt)
    if root != header.transaction_root:
        found.append(
            f"transactionsRoot 0x{header.transaction_root.hex()}, transactions give 0x{root.hex()}"
        )
    return rebuilt, [("transactions", "; ".join(found))] if found else []


def check_receipts(
    header: BlockHeaderAPI, reported_hash: bytes, transactions: Sequence[Any], served: Any
) -> tuple[list[ReceiptAPI] | None, Problems]:
    """Rebuild the served receipts and the header fields that commit to them."""
    hashes = [tx.get("hash") if isinstance(tx, Mapping) else tx for tx in transactions]
    if not isinstance(served, list) or len(served) != len(hashes):
        count = len(served) if isinstance(served, list) else "no"
        return None, [("receipts", f"{count} receipts served for {len(hashes)} transactions")]
    receipts: list[ReceiptAPI] = []
    found = []
    previous_cumulative = 0
    bloom = 0
    for index, (item, tx_hash) in enumerate(zip(served, hashes, strict=True)):
        try:
            receipt = receipt_from_json(item)
        except (KeyError, TypeError, ValueError) as exc:
            return None, [("receipts", f"receipt {index} cannot be rebuilt: {exc!r}")]
        receipts.append(receipt)
        bloom |= receipt.bloom
        placed = (item.get("transactionHash"), item.get("blockHash"))
        if placed != (tx_hash, "0x" + reported_hash.hex()):
            found.append(f"receipt {index} belongs to {item.get('transactionHash')}")
        if to_int(hexstr=item["logsBloom"]) != receipt.bloom:
            found.append(f"receipt {index} logsBloom does not match its logs")
        if to_int(hexstr=item["gasUsed"]) != receipt.gas_used - previous_cumulative:
            found.append(f"receipt {index} gasUsed does not follow cumulativeGasUsed")
        previous_cumulative = receipt.gas_used
    if header.gas_used != previous_cumulative:
        found.append(f"header gasUsed {header.gas_used}, receipts total {previous_cumulative}")
    if header.bloom != bloom:
        found.append("header logsBloom is not its receipts' blooms combined")
    root = _trie_root(receipts)
    if root != header.receipt_root:
        found.append(f"receiptsRoot 0x{header.receipt_root.hex()}, receipts give 0x{root.hex()}")
    return receipts, [("receipts", "; ".join(found))] if found else []


_REEXECUTED_FIELDS = (
    ("state_root", "stateRoot"),
    ("transaction_root", "transactionsRoot"),
    ("receipt_root", "receiptsRoot"),
    ("gas_used", "gasUsed"),
    ("bloom", "logsBloom"),
    ("requests_hash", "requestsHash"),
)


def compare_execution(
    header: BlockHeaderAPI,
    executed: BlockHeaderAPI,
    computed: Sequence[ReceiptAPI],
    served: Sequence[ReceiptAPI] | None,
) -> Problems:
    found = [
        f"{label} differs from execution"
        for name, label in _REEXECUTED_FIELDS
        if getattr(header, name) != getattr(executed, name)
    ]
    if served is not None:
        for index, (mine, theirs) in enumerate(zip(computed, served, strict=False)):
            if mine.encode() != theirs.encode():
                found.append(f"receipt {index} differs from execution")
                break
    return [("reexecution", "; ".join(found))] if found else []


def _addresses(values: Sequence[bytes] | tuple[bytes, ...]) -> str:
    return "[" + ", ".join("0x" + v.hex()[:8] + "…" for v in values) + "]"


# --- the walk ---------------------------------------------------------------------------------


class ChainAudit:
    """Walks blocks in order, carrying what each check needs from the blocks before.

    Blocks before the audited range are still followed: their links and hashes are checked
    and their votes tallied (the validator set of the range depends on them), and with
    re-execution they are replayed, since the state of the range depends on them too.
    """

    def __init__(self, genesis: GenesisSpec, reexecute: bool) -> None:
        self.rules = ChainRules.of(genesis)
        self.genesis = genesis
        self.replayer = Replayer(genesis) if reexecute else None
        self.genesis_hash = bytes(
            (self.replayer.genesis_header if self.replayer else _genesis_header(genesis)).hash
        )
        self.tally = VoteTally.starting(())
        self.parent: Parent | None = None
        self.reexecuted = 0

    def block(self, number: int, served: Any, receipts: Any, audited: bool) -> list[Failure]:
        problems = self._block(number, served, receipts, audited)
        return [Failure(number, check, detail) for check, detail in problems]

    def _block(self, number: int, served: Any, receipts: Any, audited: bool) -> Problems:
        if isinstance(served, NodeError) or not isinstance(served, Mapping):
            self._lose_track()
            return [("fetch", f"block not served: {served}")]
        try:
            header = header_from_json(served)
            extra = decode_extra_data(header.extra_data)
        except MalformedHeader as exc:
            self._lose_track()
            return [("header", str(exc))]
        problems = check_links(header, served, number, self.parent)
        reported = to_bytes(hexstr=served["hash"])
        if number == 0:
            if reported != self.genesis_hash:
                problems.append(
                    (
                        "genesis",
                        f"block 0 is 0x{reported.hex()}, the genesis document builds "
                        f"0x{self.genesis_hash.hex()}",
                    )
                )
                self._stop_replay()
        elif self.parent is None:
            problems.append(("parent", f"block {number - 1} unavailable: cannot link or check"))
        else:
            if audited:
                problems += check_header_rules(header, self.parent.header, self.rules)
                problems += check_consensus(header, extra, self.tally, self.parent.header)
            problems += self._contents(header, reported, served, receipts, audited)
        self.tally = self.tally.after(header, self.rules.epoch_length)
        self.parent = Parent(reported, header)
        if self.replayer is not None:
            self.replayer.remember(header)
        return problems

    def _contents(
        self,
        header: BlockHeaderAPI,
        reported: bytes,
        served: Mapping[str, Any],
        receipts: Any,
        audited: bool,
    ) -> Problems:
        problems: Problems = []
        transactions = served.get("transactions", [])
        rebuilt: list[SignedTransactionAPI] | None = None
        if audited or self.replayer is not None:
            rebuilt, found = check_transactions(header, reported, transactions)
            problems += found
        served_receipts: list[ReceiptAPI] | None = None
        if audited:
            if isinstance(receipts, NodeError):
                problems.append(("fetch", f"receipts not served: {receipts}"))
            else:
                served_receipts, found = check_receipts(header, reported, transactions, receipts)
                problems += found
        if self.replayer is not None:
            problems += self._replay(header, rebuilt, served_receipts if audited else None)
        return problems

    def _replay(
        self,
        header: BlockHeaderAPI,
        transactions: list[SignedTransactionAPI] | None,
        served: list[ReceiptAPI] | None,
    ) -> Problems:
        assert self.replayer is not None
        if transactions is None:
            self._stop_replay()
            return [("reexecution", "transactions unavailable; replay stops here")]
        try:
            executed = self.replayer.execute(header, transactions)
        except VerificationError as exc:
            self._stop_replay()
            return [("reexecution", f"{exc}; replay stops here")]
        self.reexecuted += 1
        problems = compare_execution(header, executed.header, executed.receipts, served)
        if executed.header.state_root != header.state_root:
            self._stop_replay()
            problems = [(c, d + "; later blocks not re-executed") for c, d in problems]
        return problems

    def _stop_replay(self) -> None:
        self.replayer = None

    def _lose_track(self) -> None:
        """A block that cannot be read: its child cannot be linked, nor the state replayed."""
        self.parent = None
        self._stop_replay()


def _genesis_header(genesis: GenesisSpec) -> BlockHeaderAPI:
    return genesis.build(ChainDB(AtomicDB()))


def verify_chain(
    source: RpcSource,
    *,
    first: int = 0,
    last: int | None = None,
    reexecute: bool = False,
    genesis: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    batch: int = DEFAULT_BATCH,
) -> AuditReport:
    """Check blocks `first`..`last` (default: the head when the audit starts).

    `genesis` is the genesis document to trust; by default the node's `tally_getGenesis`,
    which is safe because block 0 must be what it builds. `progress` is called with the
    number of blocks just processed (blocks before `first` included: they are followed).
    A range that is empty or goes past the head raises `ValueError` before any block is
    read: blocks that do not exist would otherwise each be reported as a failed fetch.
    """
    started = time.monotonic()
    head = source.head()
    end = head if last is None else last
    if first > end:
        if last is None:
            raise ValueError(f"--from {first} is past the head of the chain (block {head})")
        raise ValueError(f"--from {first} is after --to {end}")
    if end > head:
        raise ValueError(f"the range {first}..{end} goes past the head of the chain (block {head})")
    report = AuditReport(first, end)
    spec = GenesisSpec.from_json(genesis if genesis is not None else source.genesis_document())
    audit = ChainAudit(spec, reexecute)
    report.genesis_hash = audit.genesis_hash
    for numbers in _groups(0, end, batch):
        audited = [n >= first for n in numbers]
        need_full = any(audited) or reexecute
        blocks = source.blocks(numbers, need_full)
        wanted = [n for n, a in zip(numbers, audited, strict=True) if a and n > 0]
        fetched = dict(zip(wanted, source.receipts(wanted), strict=True)) if wanted else {}
        for number, served, in_range in zip(numbers, blocks, audited, strict=True):
            report.failures += audit.block(number, served, fetched.get(number), in_range)
            report.checked += in_range
        if progress is not None:
            progress(len(numbers))
    report.reexecuted = audit.reexecuted
    report.seconds = time.monotonic() - started
    return report


def _groups(start: int, end: int, size: int) -> Iterator[list[int]]:
    for low in range(start, end + 1, size):
        yield list(range(low, min(low + size, end + 1)))
