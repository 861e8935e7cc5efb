"""The QBFT state machine for one validator (shared/QBFT.md §2.1 and §3), free of I/O.

`QbftStateMachine.handle(event)` takes one event and returns the actions it causes; the object
owns no socket, thread or clock. Time enters only as the `now` each event carries (seconds,
the same wall clock block timestamps use) and leaves only as `StartTimer` delays. That is what
lets tests drive whole networks of these machines deterministically from a seed, and what
keeps the asyncio engine around it a thin loop: decode, `handle`, perform actions.

Engine contract:

- Feed `NewChainHead(head, now)` at start and after every import (own `CommitBlock` or sync).
  The machine then decides height `head.block_number + 1`; older heads are ignored.
- `StartTimer` replaces any pending timer of the same kind; when it fires, feed
  `BlockTimerExpired` / `RoundTimerExpired` with the height and round it named. Stale expiries
  are discarded here, so the engine need not cancel timers precisely.
- `Broadcast(message)` goes to every other validator. The machine has already processed its
  own messages; feeding them back is harmless (duplicates are dropped).
- `Regossip(message)` is a received message that passed the dispatch checks: forward it to
  validators other than its sender and author (Besu's `QbftGossiper`).
- `CommitBlock(block, round, seals)` carries the sealed block: import it (its state transition
  was already checked through `BlockPort.validate_block`), then feed `NewChainHead`.
- `RequestSync(height)` says validators are deciding a height above ours: sync blocks from
  peers (Besu's `FutureMessageSynchronizerHandler`).
- Feed `PeerConnected(address, now)` whenever a link to a peer is (re)established and
  `PeerDisconnected(address, now)` when it ends; the machine answers a connection with
  `SendTo(address, message)` for the messages that peer must have missed (see
  `_on_peer_connected`), and uses the set of linked peers to cut short rounds whose proposer
  is absent (`QbftConfig.absent_proposer_timeout_seconds`).
- `Log(level, text)` is diagnostics only.

Block timestamps: a proposer stamps a new block `max(parent.timestamp + period, floor(now))`,
using the `now` of the event that made it propose (the block timer, or the round change that
completed a quorum), as Besu stamps it from its clock when building.

Where this departs from Besu, and why:

- A proposal's block must carry the proposal's round in its extraData (Besu does not check,
  besu#2141). Besu tolerates the mismatch only for blocks from versions that always wrote
  round 0; we interoperate with none, and a mismatched round would let a faulty proposer get a
  block prepared whose prepared certificate can never justify a re-proposal.
- The latest prepared certificate is updated the moment a round becomes prepared, not only when
  its timer expires; so a node that jumps to a later round (by round-change quorum or by a
  future-round proposal) still carries its lock, as the QBFT specification's node does.
- Round timeouts are capped (see `validators.round_timeout`) and rounds more than
  `max_future_rounds` ahead are ignored.
- Prepares inside a proposal's justification are deduplicated by author, as Besu does for
  round changes since besu#2449.
- When a peer (re)connects, this node re-sends it its own messages of the current round (its
  ROUND-CHANGE for that round, sending one if it entered the round without, and its proposal,
  prepare and commit). Besu sends a message once and relies on the next timer expiry for
  peers that missed it; with capped 30 s rounds that left a healed partition or restarted
  quorum idle for up to a whole round (issue 12 point 7: 26 s after a 2-2 split healed).
  Re-sent round changes let peers at different rounds meet at once: the f+1 early round
  change pulls the lower ones up, and a quorum for the common round elects its proposer.
- With `absent_proposer_timeout_seconds` set, a round whose proposer has no link to this node
  (while a quorum does) times out after that many seconds instead of the full round timeout:
  Besu waits out every round of a dead proposer (3-4 s per turn here, up to the 30 s cap after
  an outage). Timeouts are then no longer the same on every node; QBFT's safety never
  depended on them, and liveness only needs the honest nodes that see the proposer to wait.
- A node that reaches a commit quorum before it is prepared (commits overtook prepares; its
  own commit counts) multicasts its COMMIT before importing, as Besu does not: otherwise peers
  one commit short wait for block sync (seen as a 3 s stall behind a dead proposer).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, Protocol

from eth_keys import keys
from eth_keys.exceptions import BadSignature

from node.consensus.qbft.messages import (
    Commit,
    Prepare,
    PreparedRoundMetadata,
    PreparePayload,
    Proposal,
    QbftBlock,
    QbftMessage,
    RoundChange,
    Signed,
)
from node.consensus.qbft.validators import (
    DEFAULT_MAX_ROUND_TIMEOUT_SECONDS,
    max_faulty,
    proposer,
    round_timeout,
)
from node.qbftheader.extra_data import ExtraDataError, QbftExtraData
from node.qbftheader.hashing import commit_seal_hash, onchain_hash
from node.qbftheader.quorum import quorum
from node.qbftheader.verify import QBFT_MIX_HASH
from node.signer import NodeSigner

if TYPE_CHECKING:  # py-evm's types only: importing `eth` at run time loads the whole EVM
    from eth.abc import BlockHeaderAPI

# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class NewChainHead:
    """The chain's head is now `header`; consensus moves to height `header.block_number + 1`."""

    header: BlockHeaderAPI
    now: float

    @property
    def height(self) -> int:
        return self.header.block_number + 1


@dataclass(frozen=True, slots=True)
class BlockTimerExpired:
    """The block period after the parent of `height` has elapsed."""

    height: int
    now: float


@dataclass(frozen=True, slots=True)
class RoundTimerExpired:
    """Round `round` of `height` timed out."""

    height: int
    round: int
    now: float


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A decoded (hence authenticated) consensus message from the network."""

    message: QbftMessage
    now: float


@dataclass(frozen=True, slots=True)
class PeerConnected:
    """A link to the node `address` was (re)established: it may have missed our messages."""

    address: bytes
    now: float


@dataclass(frozen=True, slots=True)
class PeerDisconnected:
    """The link to the node `address` is gone."""

    address: bytes
    now: float


Event = (
    NewChainHead
    | BlockTimerExpired
    | RoundTimerExpired
    | MessageReceived
    | PeerConnected
    | PeerDisconnected
)

# ---------------------------------------------------------------------------------------------
# Actions


class _Outgoing:
    """An action that sends `message`: the transport reads its code and data from here."""

    __slots__ = ()
    message: QbftMessage

    @property
    def code(self) -> int:
        return self.message.code

    @property
    def data(self) -> bytes:
        return self.message.data


@dataclass(frozen=True, slots=True)
class Broadcast(_Outgoing):
    """Send this node's own `message` to every other validator."""

    message: QbftMessage


@dataclass(frozen=True, slots=True)
class Regossip(_Outgoing):
    """Forward a received `message` to the validators other than its sender and author."""

    message: QbftMessage


@dataclass(frozen=True, slots=True)
class SendTo(_Outgoing):
    """Send this node's own `message` to the one validator `peer` (a re-send on reconnection)."""

    peer: bytes
    message: QbftMessage


TimerKind = Literal["block", "round"]


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Arm the `kind` timer (replacing a pending one of that kind) for `delay_seconds`."""

    kind: TimerKind
    height: int
    round: int
    delay_seconds: float


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """`block` (header sealed: extraData round = `round`, seals = `seals`) is final: import it."""

    block: QbftBlock
    round: int
    seals: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RequestSync:
    """Validators are deciding `height`: fetch blocks up to `height - 1` from peers."""

    height: int


@dataclass(frozen=True, slots=True)
class Log:
    """A diagnostic line for the engine's logger."""

    level: int
    text: str


Action = Broadcast | SendTo | Regossip | StartTimer | CommitBlock | RequestSync | Log

# ---------------------------------------------------------------------------------------------
# Ports and configuration


class BlockPort(Protocol):
    """Block work the state machine delegates (Besu's `QbftBlockCreator`/validator ports)."""

    def validators_after(self, header: BlockHeaderAPI) -> Sequence[bytes]:
        """The sorted validators in force for the child of `header`."""
        ...

    def create_block(self, parent: BlockHeaderAPI, round_number: int, timestamp: int) -> QbftBlock:
        """Build a child of `parent` with coinbase = this node and extraData round =
        `round_number` (validators in force, the proposer's vote, no seals)."""
        ...

    def validate_block(self, block: QbftBlock) -> bool:
        """Whether `block` re-executes correctly on its parent (the current head).

        Header rules the state machine can check itself (number, parent, timestamp, coinbase,
        extraData) are checked before this is called.
        """
        ...


class ChainTiming(Protocol):
    """The timing a chain's genesis fixes for every validator (`node.chain.genesis.Genesis`)."""

    @property
    def block_period_seconds(self) -> float: ...

    @property
    def request_timeout_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class QbftConfig:
    """Protocol parameters; all validators must use the same values for the timing ones."""

    block_period_seconds: float = 1.0
    request_timeout_seconds: float = 2.0
    max_round_timeout_seconds: float | None = DEFAULT_MAX_ROUND_TIMEOUT_SECONDS
    early_round_change: bool = False
    absent_proposer_timeout_seconds: float | None = None
    """If set, a round whose proposer has no link to this node while a quorum of validators
    (this node included) does, lasts at most this long (see `_round_timeout`)."""
    future_height_limit: int = 10
    future_message_limit: int = 1000
    max_future_rounds: int = 1000
    max_clock_drift_seconds: float = 1.0
    seen_message_limit: int = 10_000

    @classmethod
    def from_genesis(cls, genesis: ChainTiming, **overrides: object) -> QbftConfig:
        config = cls(
            block_period_seconds=genesis.block_period_seconds,
            request_timeout_seconds=genesis.request_timeout_seconds,
        )
        return replace(config, **overrides)  # type: ignore[arg-type]

    def round_timeout(self, round_number: int) -> float:
        return round_timeout(
            self.request_timeout_seconds, round_number, self.max_round_timeout_seconds
        )


# ---------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True, slots=True)
class PreparedCertificate:
    """A block that reached a prepare quorum in `round`, with those prepares (the lock)."""

    block: QbftBlock
    prepares: tuple[Signed[PreparePayload], ...]
    round: int
    digest: bytes


@dataclass(slots=True)
class _RoundState:
    """One round of one height (Besu's `RoundState`)."""

    round: int
    proposal: Proposal | None = None
    digest: bytes = b""
    prepares: dict[bytes, Signed[PreparePayload]] = field(default_factory=dict)
    commits: dict[bytes, Commit] = field(default_factory=dict)
    early_prepares: dict[bytes, Prepare] = field(default_factory=dict)
    early_commits: dict[bytes, Commit] = field(default_factory=dict)
    own_commit: Commit | None = None
    proposed: bool = False
    prepared: bool = False
    committed: bool = False


@dataclass(slots=True)
class _Height:
    """Everything known about the height being decided (Besu's `QbftBlockHeightManager`)."""

    number: int
    parent: BlockHeaderAPI
    parent_hash: bytes
    validators: tuple[bytes, ...]
    quorum: int
    is_validator: bool
    round: int | None = None  # None until the block timer fires or a proposal starts a round
    rounds: dict[int, _RoundState] = field(default_factory=dict)
    round_changes: dict[int, dict[bytes, RoundChange]] = field(default_factory=dict)
    rc_quorums: set[int] = field(default_factory=set)
    latest_prepared: PreparedCertificate | None = None
    block_validity: dict[bytes, bool] = field(default_factory=dict)
    committed: bool = False
    sent: dict[tuple[int, int], QbftMessage] = field(default_factory=dict)
    """This node's own messages at this height by (round, message code), for re-sending."""

    @property
    def current_round(self) -> int:
        return -1 if self.round is None else self.round

    def proposer(self, round_number: int) -> bytes:
        return proposer(self.validators, self.parent.coinbase, round_number)


def proposal_timestamp(parent: BlockHeaderAPI, block_period: float, now: float) -> int:
    """The timestamp a proposer stamps on a new block at `now`: a block period after its
    parent's, or `now` (whole seconds) if that is later."""
    return max(math.ceil(parent.timestamp + block_period), math.floor(now))


def with_round(header: BlockHeaderAPI, round_number: int) -> BlockHeaderAPI:
    """`header` with its extraData round replaced and its seals removed (re-proposal)."""
    extra = QbftExtraData.decode(header.extra_data)
    return header.copy(extra_data=replace(extra, round=round_number, seals=()).encode())


def _seal_signer(digest: bytes, seal: bytes) -> bytes | None:
    try:
        return keys.Signature(seal).recover_public_key_from_msg_hash(digest).to_canonical_address()
    except (BadSignature, ValueError):
        return None


class QbftStateMachine:
    """One validator's QBFT protocol state across heights; `handle` is its only entry point."""

    def __init__(self, key: NodeSigner, port: BlockPort, config: QbftConfig) -> None:
        self.key = key
        self.address = key.public_key.to_canonical_address()
        self.port = port
        self.config = config
        self._height: _Height | None = None
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._future: dict[int, list[QbftMessage]] = {}
        self._future_count = 0
        self._sync_requested = 0
        self._out: list[Action] = []
        self._connected: set[bytes] = set()

    # -- introspection (tests, metrics) --------------------------------------------------------

    @property
    def height(self) -> int | None:
        return None if self._height is None else self._height.number

    @property
    def round(self) -> int | None:
        return None if self._height is None else self._height.round

    @property
    def latest_prepared(self) -> PreparedCertificate | None:
        return None if self._height is None else self._height.latest_prepared

    # -- entry point ---------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        """Apply one event; return the actions it causes, in order."""
        self._out = []
        if isinstance(event, MessageReceived):
            self._on_message(event.message, event.now)
        elif isinstance(event, NewChainHead):
            self._on_new_head(event.header, event.now)
        elif isinstance(event, BlockTimerExpired):
            self._on_block_timer(event.height, event.now)
        elif isinstance(event, RoundTimerExpired):
            self._on_round_timer(event.height, event.round, event.now)
        elif isinstance(event, PeerConnected):
            was_short = self._short_round()
            self._connected.add(event.address)
            self._on_peer_connected(event.address, event.now)
            if not was_short:
                self._cut_short_if_proposer_absent()
        elif isinstance(event, PeerDisconnected):
            was_short = self._short_round()
            self._connected.discard(event.address)
            if not was_short:
                self._cut_short_if_proposer_absent()
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown event {event!r}")
        out, self._out = self._out, []
        return out

    # -- helpers -------------------------------------------------------------------------------

    def _log(self, text: str, level: int = logging.DEBUG) -> None:
        self._out.append(Log(level, text))

    def _reject(self, message: QbftMessage, reason: str) -> None:
        kind = type(message).__name__
        self._log(
            f"rejected {kind} h={message.height} r={message.round} "
            f"from 0x{message.author.hex()}: {reason}",
            logging.INFO,
        )

    def _remember(self, key: bytes) -> bool:
        """Record a message identity; False if it was already seen."""
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self.config.seen_message_limit:
            self._seen.popitem(last=False)
        return True

    def _send(self, message: QbftMessage) -> None:
        self._remember(message.key)
        if self._height is not None and message.height == self._height.number:
            self._height.sent[(message.round, message.code)] = message
        self._out.append(Broadcast(message))

    # -- chain head and timers -----------------------------------------------------------------

    def _on_new_head(self, header: BlockHeaderAPI, now: float) -> None:
        number = header.block_number + 1
        if self._height is not None and number <= self._height.number:
            return
        validators = tuple(self.port.validators_after(header))
        self._height = height = _Height(
            number=number,
            parent=header,
            parent_hash=onchain_hash(header),
            validators=validators,
            quorum=quorum(len(validators)),
            is_validator=self.address in validators,
        )
        self._sync_requested = max(self._sync_requested, number)
        if height.is_validator:
            delay = max(0.0, header.timestamp + self.config.block_period_seconds - now)
            self._out.append(StartTimer("block", number, 0, delay))
        for buffered_height in sorted(self._future):
            if buffered_height > number:
                break
            messages = self._future.pop(buffered_height)
            self._future_count -= len(messages)
            if buffered_height == number:
                for message in messages:
                    self._dispatch(message, now)

    def _on_block_timer(self, height_number: int, now: float) -> None:
        height = self._height
        if height is None or height_number != height.number or not height.is_validator:
            return  # stale: the height was imported meanwhile (besu#10052)
        if height.round is not None:
            return  # a proposal or round change already started a round
        self._start_round(0)
        if height.proposer(0) == self.address:
            self._propose(0, now)

    def _on_round_timer(self, height_number: int, round_number: int, now: float) -> None:
        height = self._height
        if height is None or height_number != height.number or round_number != height.round:
            return
        self._log(f"round {round_number} of height {height.number} expired", logging.INFO)
        self._start_round(round_number + 1)
        self._send_round_change(round_number + 1, now)

    def _on_peer_connected(self, peer: bytes, now: float) -> None:
        """Re-send our messages of the current round to a peer that may have missed them.

        Without this, validators that lost each other (a partition, a restart) only hear from
        each other at their next round-timer expiry, up to the timeout cap later. With it, a
        peer behind us receives our ROUND-CHANGE and, once f+1 such arrive, moves up (early
        round change); a peer in our round completes its round-change quorum at once. A node
        in round r > 0 that has not sent a ROUND-CHANGE for r (it entered r on a quorum or a
        proposal) sends one now: it says no more than that this node is in round r (unless
        it prepared in r: its lock would then be as recent as the round change's target).
        """
        height = self._height
        if (
            height is None
            or not height.is_validator
            or height.committed
            or peer == self.address
            or peer not in height.validators
            or height.round is None
        ):
            return
        current = height.round
        latest = height.latest_prepared
        if (
            current > 0
            and (current, RoundChange.code) not in height.sent
            and (latest is None or latest.round < current)  # else it could not justify it
        ):
            self._send_round_change(current, now)  # broadcast: every peer may lack it
        broadcast = {action.message.key for action in self._out if isinstance(action, Broadcast)}
        for (round_number, _), message in sorted(height.sent.items(), key=lambda item: item[0]):
            if round_number >= current and message.key not in broadcast:
                self._out.append(SendTo(peer, message))

    def _proposer_absent(self, round_number: int) -> bool:
        """Whether `round_number`'s proposer is another node with no link to us while a
        quorum of validators (us included) is linked: its proposal cannot come directly."""
        height = self._height
        assert height is not None
        if self.config.absent_proposer_timeout_seconds is None:
            return False
        proposer_address = height.proposer(round_number)
        if proposer_address == self.address or proposer_address in self._connected:
            return False
        linked = sum(1 for v in height.validators if v in self._connected and v != self.address)
        return linked + 1 >= height.quorum

    def _round_timeout(self, round_number: int) -> float:
        """The round's timeout, cut short when its proposer is absent.

        Waiting out a full round (up to the 30 s cap) for a proposer that is down is what made
        every turn of a dead proposer stall the chain (issue 12 point 7). Only the length of
        the wait changes, never what is decided, so safety is untouched; and since one node's
        early round change moves nobody (f+1 or a quorum must agree), a node that alone lost
        its link to a live proposer does not derail the round. The quorum condition keeps an
        isolated node from racing through rounds that nobody else would ever reach.
        """
        timeout = self.config.round_timeout(round_number)
        short = self.config.absent_proposer_timeout_seconds
        if short is not None and self._proposer_absent(round_number):
            return min(timeout, short)
        return timeout

    def _short_round(self) -> bool:
        """Whether the current round, still without a proposal, is one of an absent proposer."""
        height = self._height
        if (
            height is None
            or not height.is_validator
            or height.committed
            or height.round is None
            or self.config.absent_proposer_timeout_seconds is None
        ):
            return False
        state = height.rounds.get(height.round)
        if state is not None and state.proposal is not None:
            return False
        return self._proposer_absent(height.round)

    def _cut_short_if_proposer_absent(self) -> None:
        """A link change made the current round's proposer absent (it left, or a quorum came
        back without it, as after a restart): stop waiting out the full round."""
        height = self._height
        if height is not None and height.round is not None and self._short_round():
            timeout = self._round_timeout(height.round)
            self._out.append(StartTimer("round", height.number, height.round, timeout))

    def _start_round(self, round_number: int) -> None:
        height = self._height
        assert height is not None
        height.round = round_number
        self._out.append(
            StartTimer("round", height.number, round_number, self._round_timeout(round_number))
        )
        for old in [r for r in height.rounds if r < round_number]:
            del height.rounds[old]
        for old in [r for r in height.round_changes if r < round_number]:
            del height.round_changes[old]
        for key in [key for key in height.sent if key[0] < round_number]:
            del height.sent[key]
        height.rounds.setdefault(round_number, _RoundState(round_number))

    # -- dispatch ------------------------------------------------------------------------------

    def _on_message(self, message: QbftMessage, now: float) -> None:
        if not self._remember(message.key):
            return
        height = self._height
        if height is None or message.height < height.number:
            return
        if message.height > height.number:
            self._buffer_future(message)
            return
        self._dispatch(message, now)

    def _buffer_future(self, message: QbftMessage) -> None:
        height = self._height
        assert height is not None
        if message.height > height.number + self.config.future_height_limit:
            return
        if self._future_count >= self.config.future_message_limit:
            highest = max(self._future)
            if message.height >= highest:
                return
            evicted = self._future[highest]
            evicted.pop()
            self._future_count -= 1
            if not evicted:
                del self._future[highest]
        self._future.setdefault(message.height, []).append(message)
        self._future_count += 1
        if message.height > self._sync_requested:
            self._sync_requested = message.height
            self._out.append(RequestSync(message.height))

    def _dispatch(self, message: QbftMessage, now: float) -> None:
        height = self._height
        assert height is not None and message.height == height.number
        if not height.is_validator or message.author not in height.validators:
            return
        if message.round > height.current_round + self.config.max_future_rounds:
            return  # bounded lookahead (besu#11102)
        self._out.append(Regossip(message))
        if isinstance(message, Proposal):
            self._on_proposal(message, now)
        elif isinstance(message, Prepare):
            self._on_prepare(message)
        elif isinstance(message, Commit):
            self._on_commit(message)
        else:
            self._on_round_change(message, now)

    # -- proposals -----------------------------------------------------------------------------

    def _propose(self, round_number: int, now: float) -> None:
        """Propose in `round_number`: re-propose the best prepared block, or build a new one."""
        height = self._height
        assert height is not None
        state = height.rounds.setdefault(round_number, _RoundState(round_number))
        if state.proposed or state.proposal is not None:
            return
        state.proposed = True
        round_changes = list(height.round_changes.get(round_number, {}).values())
        best = max(
            (rc for rc in round_changes if rc.prepared is not None),
            key=lambda rc: rc.prepared.round,  # type: ignore[union-attr]
            default=None,
        )
        prepares: tuple[Signed[PreparePayload], ...] = ()
        if best is not None and best.block is not None:
            block = best.block.with_header(with_round(best.block.header, round_number))
            prepares = tuple(_dedupe(best.prepares).values())
            self._log(f"re-proposing the block prepared in round {best.prepared.round}")  # type: ignore[union-attr]
        else:
            timestamp = proposal_timestamp(height.parent, self.config.block_period_seconds, now)
            block = self.port.create_block(height.parent, round_number, timestamp)
        proposal = Proposal.create(
            self.key,
            height.number,
            round_number,
            block,
            [rc.signed for rc in round_changes] if round_number > 0 else (),
            prepares,
        )
        self._send(proposal)
        # Self-validate before preparing our own block (besu#7875).
        self._on_proposal(proposal, now)

    def _on_proposal(self, proposal: Proposal, now: float) -> None:
        height = self._height
        assert height is not None
        round_number = proposal.round
        if round_number < height.current_round:
            return
        state = height.rounds.get(round_number)
        if state is not None and state.proposal is not None:
            return  # only the first valid proposal of a round counts
        reason = self._proposal_error(proposal, now)
        if reason is not None:
            self._reject(proposal, reason)
            return
        if round_number > height.current_round:
            self._start_round(round_number)
        self._accept(height.rounds[round_number], proposal)

    def _proposal_error(self, proposal: Proposal, now: float) -> str | None:
        height = self._height
        assert height is not None
        round_number = proposal.round
        block = proposal.block
        if proposal.author != height.proposer(round_number):
            return "author is not the proposer of this round"
        reason = self._header_error(block, round_number, now)
        if reason is not None:
            return reason
        coinbase_must_be_author = True
        if round_number == 0:
            if proposal.round_changes or proposal.prepares:
                return "round-0 proposal carries a justification"
        else:
            reason, best = self._justification_error(proposal)
            if reason is not None:
                return reason
            if best is not None:
                coinbase_must_be_author = False  # re-proposal keeps the original coinbase
                restored = with_round(block.header, best.round)
                if commit_seal_hash(restored, best.round) != best.block_hash:
                    return "block does not match the highest prepared certificate"
                prepares = _dedupe(proposal.prepares)
                for prepare in prepares.values():
                    if prepare.author not in height.validators:
                        return "justifying prepare from a non-validator"
                    if (prepare.height, prepare.round, prepare.payload.digest) != (
                        height.number,
                        best.round,
                        best.block_hash,
                    ):
                        return "justifying prepare for another height, round or block"
                if len(prepares) < height.quorum:
                    return f"{len(prepares)} justifying prepares, {height.quorum} required"
            elif proposal.prepares:
                return "prepares without any prepared round change"
        if coinbase_must_be_author and block.header.coinbase != proposal.author:
            return "coinbase of a new block is not its proposer"
        if not self._block_valid(block):
            return "block fails validation"
        return None

    def _justification_error(
        self, proposal: Proposal
    ) -> tuple[str | None, PreparedRoundMetadata | None]:
        height = self._height
        assert height is not None
        round_changes = proposal.round_changes
        authors = {rc.author for rc in round_changes}
        if len(authors) != len(round_changes):
            return "duplicate round-change authors", None
        if len(authors) < height.quorum:
            return f"{len(authors)} round changes, {height.quorum} required", None
        hashes: dict[int, bytes] = {}
        best: PreparedRoundMetadata | None = None
        for rc in round_changes:
            if rc.author not in height.validators:
                return "round change from a non-validator", None
            if rc.height != height.number or rc.round != proposal.round:
                return "round change for another height or round", None
            prepared = rc.payload.prepared
            if prepared is None:
                continue
            if prepared.round >= proposal.round:
                return "round change prepared at or after its target round", None
            if hashes.setdefault(prepared.round, prepared.block_hash) != prepared.block_hash:
                return "round changes disagree on the block of one prepared round", None
            if best is None or prepared.round > best.round:
                best = prepared
        return None, best

    def _header_error(self, block: QbftBlock, round_number: int, now: float) -> str | None:
        """Header rules of a proposed block (QBFT.md §1.1), short of re-execution."""
        height = self._height
        assert height is not None
        header = block.header
        if header.block_number != height.number:
            return "block number is not the height"
        if header.parent_hash != height.parent_hash:
            return "block does not extend the head"
        if header.timestamp < height.parent.timestamp + self.config.block_period_seconds:
            return "timestamp earlier than the block period allows"
        if header.timestamp > now + self.config.max_clock_drift_seconds:
            return "timestamp in the future"
        if header.mix_hash != QBFT_MIX_HASH:
            return "mixHash is not QBFT's"
        if header.coinbase not in height.validators:
            return "coinbase is not a validator"
        try:
            extra = QbftExtraData.decode(header.extra_data)
        except ExtraDataError as exc:
            return str(exc)
        if extra.validators != height.validators:
            return "extraData validators differ from the validators in force"
        if extra.seals:
            return "proposed block carries commit seals"
        if extra.round != round_number:
            return "extraData round differs from the proposal round"
        return None

    def _block_valid(self, block: QbftBlock) -> bool:
        """Full validation through the port, once per block content (round excluded)."""
        height = self._height
        assert height is not None
        key = onchain_hash(block.header)
        valid = height.block_validity.get(key)
        if valid is None:
            valid = height.block_validity[key] = bool(self.port.validate_block(block))
        return valid

    def _accept(self, state: _RoundState, proposal: Proposal) -> None:
        """Take `proposal` as the round's block: PREPARE it, hold our COMMIT until prepared."""
        height = self._height
        assert height is not None
        header = proposal.block.header
        state.proposal = proposal
        state.digest = commit_seal_hash(header, state.round)
        prepare = Prepare.create(self.key, height.number, state.round, state.digest)
        self._send(prepare)
        state.prepares[self.address] = prepare.signed
        seal = self.key.sign_msg_hash(state.digest).to_bytes()
        state.own_commit = Commit.create(self.key, height.number, state.round, state.digest, seal)
        state.commits[self.address] = state.own_commit
        for author, early in state.early_prepares.items():
            if early.digest == state.digest:
                state.prepares.setdefault(author, early.signed)
        for author, commit in state.early_commits.items():
            if self._commit_error(state, commit) is None:
                state.commits.setdefault(author, commit)
        state.early_prepares.clear()
        state.early_commits.clear()
        self._check_prepared(state)
        self._check_committed(state)

    # -- prepares and commits ------------------------------------------------------------------

    def _round_state_for(self, round_number: int) -> _RoundState | None:
        height = self._height
        assert height is not None
        if round_number < height.current_round:
            return None
        return height.rounds.setdefault(round_number, _RoundState(round_number))

    def _on_prepare(self, prepare: Prepare) -> None:
        state = self._round_state_for(prepare.round)
        if state is None:
            return
        if state.proposal is None:
            state.early_prepares.setdefault(prepare.author, prepare)
            return
        if prepare.digest != state.digest:
            self._reject(prepare, "digest differs from the accepted proposal")
            return
        if prepare.author not in state.prepares:
            state.prepares[prepare.author] = prepare.signed
            self._check_prepared(state)

    def _commit_error(self, state: _RoundState, commit: Commit) -> str | None:
        if commit.digest != state.digest:
            return "digest differs from the accepted proposal"
        if _seal_signer(state.digest, commit.seal) != commit.author:
            return "commit seal is not the author's over this round's commit-seal hash"
        return None

    def _on_commit(self, commit: Commit) -> None:
        state = self._round_state_for(commit.round)
        if state is None:
            return
        if state.proposal is None:
            state.early_commits.setdefault(commit.author, commit)
            return
        if commit.author in state.commits:
            return
        reason = self._commit_error(state, commit)
        if reason is not None:
            self._reject(commit, reason)
            return
        state.commits[commit.author] = commit
        self._check_committed(state)

    def _check_prepared(self, state: _RoundState) -> None:
        height = self._height
        assert height is not None and state.proposal is not None
        if state.prepared or len(state.prepares) < height.quorum:
            return
        state.prepared = True
        latest = height.latest_prepared
        if latest is None or latest.round < state.round:
            height.latest_prepared = PreparedCertificate(
                state.proposal.block, tuple(state.prepares.values()), state.round, state.digest
            )
        assert state.own_commit is not None
        self._send(state.own_commit)

    def _check_committed(self, state: _RoundState) -> None:
        height = self._height
        assert height is not None and state.proposal is not None
        if state.committed or len(state.commits) < height.quorum:
            return
        state.committed = height.committed = True
        if (state.round, Commit.code) not in height.sent and state.own_commit is not None:
            # Our own commit counts toward the quorum before we are prepared, so commits that
            # overtook prepares can decide the block here while our COMMIT was never sent;
            # peers one commit short would then wait for sync. A block a quorum committed is
            # decided, so sealing it too is safe.
            self._send(state.own_commit)
        seals = tuple(commit.seal for commit in state.commits.values())
        block = state.proposal.block
        extra = QbftExtraData.decode(block.header.extra_data)
        sealed = block.header.copy(
            extra_data=replace(extra, round=state.round, seals=seals).encode()
        )
        self._log(
            f"committed height {height.number} in round {state.round} with {len(seals)} seals",
            logging.INFO,
        )
        self._out.append(CommitBlock(block.with_header(sealed), state.round, seals))

    # -- round changes -------------------------------------------------------------------------

    def _send_round_change(self, round_number: int, now: float) -> None:
        height = self._height
        assert height is not None
        cert = height.latest_prepared
        if cert is None:
            message = RoundChange.create(self.key, height.number, round_number)
        else:
            message = RoundChange.create(
                self.key,
                height.number,
                round_number,
                PreparedRoundMetadata(cert.round, cert.digest),
                cert.block,
                cert.prepares,
            )
        self._send(message)
        self._on_round_change(message, now)

    def _on_round_change(self, message: RoundChange, now: float) -> None:
        height = self._height
        assert height is not None
        target = message.round
        if target < height.current_round:
            return
        received = height.round_changes.setdefault(target, {})
        if message.author in received:
            return
        if message.author != self.address:
            reason = self._round_change_error(message)
            if reason is not None:
                self._reject(message, reason)
                return
        received[message.author] = message
        if len(received) >= height.quorum and target not in height.rc_quorums:
            height.rc_quorums.add(target)
            if target > height.current_round:
                self._start_round(target)
            if height.proposer(target) == self.address:
                self._propose(target, now)
        elif self.config.early_round_change and target > height.current_round:
            self._early_round_change(now)

    def _early_round_change(self, now: float) -> None:
        """f+1 validators are past our round: at least one honest one is; follow (SPEC)."""
        height = self._height
        assert height is not None
        highest: dict[bytes, int] = {}
        for target, received in height.round_changes.items():
            if target > height.current_round:
                for author in received:
                    highest[author] = max(highest.get(author, 0), target)
        needed = max_faulty(len(height.validators)) + 1
        if len(highest) < needed:
            return
        target = sorted(highest.values(), reverse=True)[needed - 1]
        if target <= height.current_round:
            return
        self._log(f"f+1 round changes: moving to round {target}", logging.INFO)
        self._start_round(target)
        self._send_round_change(target, now)

    def _round_change_error(self, message: RoundChange) -> str | None:
        height = self._height
        assert height is not None
        if message.round <= 0:
            return "round change to round 0"
        prepared = message.prepared
        if prepared is None:
            if message.block is not None or message.prepares:
                return "block or prepares without prepared-round metadata"
            return None
        if prepared.round >= message.round:
            return "prepared round not below the target round"
        block = message.block
        if block is None:
            return "prepared-round metadata without its block"
        reason = self._header_error(block, prepared.round, math.inf)
        if reason is not None:
            return f"prepared block: {reason}"
        if commit_seal_hash(block.header, prepared.round) != prepared.block_hash:
            return "prepared block hash does not match its block"
        prepares = _dedupe(message.prepares)  # duplicates are tolerated (besu#2449)
        for prepare in prepares.values():
            if prepare.author not in height.validators:
                return "prepare from a non-validator"
            if (prepare.height, prepare.round, prepare.payload.digest) != (
                height.number,
                prepared.round,
                prepared.block_hash,
            ):
                return "prepare for another height, round or block"
        if len(prepares) < height.quorum:
            return f"{len(prepares)} prepares, {height.quorum} required"
        if not self._block_valid(block):
            return "prepared block fails validation"
        return None


def _dedupe(prepares: Sequence[Signed[PreparePayload]]) -> dict[bytes, Signed[PreparePayload]]:
    """One prepare per author, the first kept."""
    unique: dict[bytes, Signed[PreparePayload]] = {}
    for prepare in prepares:
        unique.setdefault(prepare.author, prepare)
    return unique
