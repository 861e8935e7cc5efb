"""Request and response bodies (pydantic), which are also the published OpenAPI schema.

Conventions: addresses 0x-hex checksummed, hashes 0x-hex, amounts as decimal strings (wei, or a
token's base units), times as `timestamp` (unix seconds) plus ISO-8601 `time` (UTC).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from node.api.roles import ApiRole

T = TypeVar("T")

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


class Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class Page(Model, Generic[T]):
    """One page, newest first; pass `next_cursor` as `?cursor=` for the next (null: no more).
    A page may hold fewer than `limit` items while more follow (filters skip rows)."""

    items: list[T]
    next_cursor: str | None


class Head(Model):
    number: int
    hash: str
    timestamp: int
    time: str


class Status(Model):
    chain_id: int
    head: Head
    peers: int
    syncing: bool


class ChallengeRequest(Model):
    address: str = Field(pattern=ADDRESS_PATTERN)


class Challenge(Model):
    message: str
    nonce: str
    expires_at: int


class TokenRequest(Model):
    message: str = Field(max_length=4096)
    signature: str = Field(max_length=200)


class Token(Model):
    token: str
    token_type: str = "bearer"
    role: ApiRole
    address: str
    expires_at: int


class Me(Model):
    role: ApiRole
    label: str
    addresses: list[str]
    key_id: str | None


class ApiKeyRequest(Model):
    role: ApiRole
    label: str = Field(min_length=1, max_length=100)
    addresses: list[str] = Field(default_factory=list, max_length=100)


class ApiKeyInfo(Model):
    id: str
    role: ApiRole
    label: str
    addresses: list[str]
    created: int


class ApiKeyCreated(ApiKeyInfo):
    key: str = Field(description="The key itself: shown only in this answer.")


class CommitSeals(Model):
    count: int
    quorum: int
    valid: bool = Field(description="The node recovered every seal and counted a quorum.")


class BlockSummary(Model):
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    time: str
    proposer: str
    tx_count: int
    gas_used: int
    state_root: str


class Block(BlockSummary):
    transactions: list[str]
    validators: list[str]
    commit_seals: CommitSeals


class RawLog(Model):
    topics: list[str]
    data: str


class Event(Model):
    address: str
    log_index: int
    contract: str | None
    event: str | None
    args: dict[str, Any] | None
    raw: RawLog | None


class TxBlock(Model):
    number: int
    hash: str
    index: int
    timestamp: int
    time: str


class Transaction(Model):
    hash: str
    status: str = Field(description="pending, success or failed")
    sender: str = Field(alias="from")
    to: str | None
    value: str
    nonce: int
    gas: int
    gas_price: str
    input: str
    type: int
    chain_id: int | None
    block: TxBlock | None
    gas_used: int | None
    fee: str | None
    contract_address: str | None
    events: list[Event]


class InternalCall(Model):
    """One frame of a transaction's call tree (geth's callTracer), depth first."""

    depth: int = Field(description="0: the transaction's own call")
    type: str = Field(
        description="CALL, STATICCALL, DELEGATECALL, CALLCODE, CREATE, CREATE2, SELFDESTRUCT"
    )
    sender: str = Field(alias="from")
    to: str | None
    value: str = Field(description="wei, decimal")
    gas: int
    gas_used: int
    input: str
    output: str | None
    error: str | None
    revert_reason: str | None


class InternalCalls(Model):
    hash: str
    calls: list[InternalCall]


class RelayRequest(Model):
    raw: str = Field(description="A signed transaction, 0x-hex.", max_length=300_000)


class Relayed(Model):
    hash: str


class Account(Model):
    address: str
    block: int
    balance: str
    nonce: int
    is_contract: bool
    role: str | None
    kyc_tier: int | None
    frozen: bool | None
    token_balance: str | None
    points: str | None


class AccountTransaction(Model):
    hash: str
    block_number: int
    tx_index: int
    timestamp: int
    time: str
    sender: str = Field(alias="from")
    to: str | None
    value: str
    fee: str
    gas_used: int
    status: str
    direction: str = Field(description="out, in or self")


class LogPlace(Model):
    """Where a log sits in the chain, and when: the fields every log-based row starts with."""

    tx_hash: str
    block_number: int
    tx_index: int
    log_index: int
    timestamp: int
    time: str


class Transfer(LogPlace):
    token: str
    sender: str = Field(alias="from")
    to: str
    amount: str
    direction: str


class FeePaid(LogPlace):
    token: str
    payer: str
    recipient: str
    kind: str
    amount: str
    fee: str


class HeldPaymentRow(LogPlace):
    """A wallet-token payment held for review: `status` held|released|rejected|cancelled;
    `reasons` among over_review_threshold, payer_flagged, payee_flagged; `fee` is charged on
    release; `closed_*` name the transaction that decided it (null while held)."""

    token: str
    hold_id: int
    sender: str = Field(alias="from")
    to: str
    amount: str
    direction: str
    kind: str
    reasons: list[str]
    status: str
    fee: str
    closed_tx_hash: str | None
    closed_time: str | None


class PointsRow(LogPlace):
    """A points event: `event` earned (on a payment, in the wallet token), awarded, redeemed,
    offer_redeemed, offer_published, offer_expired, offer_withdrawn or transferred; `account`
    is whose points moved (the merchant for offer_published/expired/withdrawn), `counterparty`
    the offer's merchant of a redemption or a transfer's recipient; `change` the signed move
    of this account's points (0 for a merchant's offer events). `quantity`: items redeemed,
    stock published or unsold stock closed."""

    contract: str
    event: str
    account: str
    counterparty: str | None
    points: str
    change: str
    offer_id: str | None
    quantity: str | None
    price: str | None
    expiry: int | None
    payment_amount: str | None
    ref: str | None


class MonthTotal(Model):
    month: str
    total: str


class CategoryTotal(Model):
    category: str
    total: str


class Spending(Model):
    address: str
    token: str
    by_month: list[MonthTotal]
    by_category: list[CategoryTotal]
    total: str


class SettlementEvent(LogPlace):
    name: str


class Settlement(Model):
    kind: str
    id: int
    contract: str
    state: str
    parties: list[str]
    total: str
    settled: str
    opened: SettlementEvent | None
    updated: SettlementEvent | None
    events: list[SettlementEvent]


class ProofBlock(Model):
    number: int
    hash: str
    state_root: str
    header_rlp: str


class Proof(Model):
    block: ProofBlock
    proof: dict[str, Any] = Field(description="The eth_getProof (EIP-1186) result.")


class Validators(Model):
    block: Head
    validators: list[str]


class MerchantRequest(Model):
    name: str = Field(min_length=1, max_length=100)
    category: str = Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9_ -]*$")


class Merchant(Model):
    address: str
    name: str
    category: str


class FeeQuote(Model):
    sender: str = Field(alias="from")
    to: str
    amount: str
    kind: str
    fee: str
    total: str


class PaymentRequest(Model):
    uri: str
    qr_svg: str
    memo: str | None
