"""Why the transaction pool refused a transaction.

Messages reuse go-ethereum's wording (and Besu's where geth has none) because wallets, SDKs
and people match on them: ethers.js recognises "nonce too low", "replacement transaction
underpriced" and "insufficient funds"; users paste "already known" into search engines. Details
follow the canonical text after a colon, so prefix matching keeps working.

The tree, grouped by what the sender can do about it::

    TxPoolError
    ├── InvalidTransaction          the transaction can never be valid on this chain
    │   ├── MalformedTransaction        "invalid transaction: rlp: ..."
    │   ├── OversizedTransaction        "oversized data: transaction size X, limit Y"
    │   ├── UnsupportedTxType           "transaction type not supported"
    │   ├── UnprotectedTransaction      "only replay-protected (EIP-155) transactions ..."
    │   ├── InvalidChainId              "invalid chain id: have X want Y"
    │   ├── InvalidSender               "invalid sender"
    │   ├── NonceMax                    "nonce has max value"
    │   ├── IntrinsicGasTooLow          "intrinsic gas too low: have X, want Y"
    │   │   └── FloorDataGasTooLow      "insufficient gas for floor data gas cost: ..."
    │   ├── InitCodeTooLarge            "max initcode size exceeded: ..."
    │   ├── GasLimitExceeded            "exceeds block gas limit"
    │   ├── InvalidSetCode              "set code tx must have at least one authorization tuple"
    │   └── TipAboveFeeCap              "max priority fee per gas higher than max fee per gas"
    ├── AccountStateRejection       valid, but not against the sender's account right now
    │   ├── NonceTooLow                 "nonce too low: next nonce X, tx nonce Y"
    │   └── InsufficientFunds           "insufficient funds for gas * price + value: ..."
    └── PoolPolicyRejection         valid, but this pool will not hold it
        ├── AlreadyKnown                "already known"
        ├── Underpriced                 "transaction underpriced"
        ├── ReplacementUnderpriced      "replacement transaction underpriced"
        ├── NonceTooHigh                "nonce too high"
        ├── AccountLimitExceeded        "account limit exceeded"
        ├── InflightLimitReached        "in-flight transaction limit reached for delegated ..."
        ├── AuthorityReserved           "authority already reserved"
        └── PoolFull                    "txpool is full"
"""

from __future__ import annotations

from eth_utils import to_checksum_address


def _address(address: bytes) -> str:
    """Addresses in messages are checksummed hex, as geth prints them."""
    return to_checksum_address(address)


class TxPoolError(Exception):
    """Root of every rejection the pool raises; `str(err)` is the user-facing message."""


# --- the transaction itself is invalid -------------------------------------------------------


class InvalidTransaction(TxPoolError):
    """The transaction is invalid whatever the chain state: resending it cannot help."""


class MalformedTransaction(InvalidTransaction):
    """The bytes do not decode to a transaction (bad RLP, a field too wide for its type)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"invalid transaction: rlp: {detail}")
        self.detail = detail


class OversizedTransaction(InvalidTransaction):
    """Larger than the pool accepts: bounds memory and gossip bandwidth (geth: 128 KiB)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"oversized data: transaction size {size}, limit {limit}")
        self.size = size
        self.limit = limit


class UnsupportedTxType(InvalidTransaction):
    """Blob (0x03), set-code (0x04) and unknown EIP-2718 types: Tally accepts 0x00-0x02."""

    def __init__(self, type_id: int) -> None:
        super().__init__(f"transaction type not supported: type {type_id:#04x}")
        self.type_id = type_id


class UnprotectedTransaction(InvalidTransaction):
    """A legacy transaction signed without a chain id could be replayed on any chain."""

    def __init__(self) -> None:
        super().__init__("only replay-protected (EIP-155) transactions allowed over RPC")


class InvalidChainId(InvalidTransaction):
    """Signed for another chain (geth's wording: the signer cannot recover for this chain)."""

    def __init__(self, have: int, want: int) -> None:
        super().__init__(f"invalid sender: invalid chain id for signer: have {have} want {want}")
        self.have = have
        self.want = want


class InvalidSender(InvalidTransaction):
    """The signature is malformed, non-canonical (high s) or recovers no public key."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"invalid sender: {detail}" if detail else "invalid sender")
        self.detail = detail


class NonceMax(InvalidTransaction):
    """Nonce 2**64-1 would overflow the account nonce (EIP-2681)."""

    def __init__(self, address: bytes, nonce: int) -> None:
        super().__init__(f"nonce has max value: address {_address(address)}, nonce: {nonce}")
        self.nonce = nonce


class IntrinsicGasTooLow(InvalidTransaction):
    """The gas limit does not even cover the transaction's fixed and calldata cost."""

    def __init__(self, have: int, want: int) -> None:
        super().__init__(f"intrinsic gas too low: have {have}, want {want}")
        self.have = have
        self.want = want


class FloorDataGasTooLow(IntrinsicGasTooLow):
    """Prague's EIP-7623 calldata floor exceeds the gas limit."""

    def __init__(self, have: int, want: int) -> None:
        InvalidTransaction.__init__(
            self, f"insufficient gas for floor data gas cost: have {have}, want {want}"
        )
        self.have = have
        self.want = want


class InitCodeTooLarge(InvalidTransaction):
    """Contract creation code above EIP-3860's limit fails in any block."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"max initcode size exceeded: code size {size}, limit {limit}")
        self.size = size
        self.limit = limit


class GasLimitExceeded(InvalidTransaction):
    """The transaction alone needs more gas than a block may use."""

    def __init__(self, gas: int, limit: int) -> None:
        super().__init__(f"exceeds block gas limit: tx gas {gas}, block gas limit {limit}")
        self.gas = gas
        self.limit = limit


class TipAboveFeeCap(InvalidTransaction):
    """EIP-1559: the priority fee is paid out of the fee cap, so it cannot exceed it."""

    def __init__(self, address: bytes, tip: int, fee_cap: int) -> None:
        super().__init__(
            "max priority fee per gas higher than max fee per gas: "
            f"address {_address(address)}, maxPriorityFeePerGas: {tip}, maxFeePerGas: {fee_cap}"
        )
        self.tip = tip
        self.fee_cap = fee_cap


# --- the sender's account does not allow it now -----------------------------------------------


class InvalidSetCode(InvalidTransaction):
    """An EIP-7702 transaction breaking a stateless rule (no authorization)."""


class AccountStateRejection(TxPoolError):
    """Valid, but the sender's current nonce or balance rules it out."""


class NonceTooLow(AccountStateRejection):
    """The nonce was already used by a transaction in a block."""

    def __init__(self, next_nonce: int, tx_nonce: int) -> None:
        super().__init__(f"nonce too low: next nonce {next_nonce}, tx nonce {tx_nonce}")
        self.next_nonce = next_nonce
        self.tx_nonce = tx_nonce


class InsufficientFunds(AccountStateRejection):
    """The balance does not cover gas * max fee + value (the most the transaction can cost)."""

    def __init__(self, address: bytes, have: int, want: int) -> None:
        super().__init__(
            "insufficient funds for gas * price + value: "
            f"address {_address(address)} have {have} want {want}"
        )
        self.address = address
        self.have = have
        self.want = want


class SenderNotPermitted(AccountStateRejection):
    """On-chain account permissioning (AccountRules) does not allow the sender to transact."""

    def __init__(self, address: bytes) -> None:
        super().__init__(f"sender account not authorized to send transactions: {_address(address)}")
        self.address = address


class AuthorityNotPermitted(AccountStateRejection):
    """A set-code authorization is signed by an account AccountRules does not allow: the
    authorization would act for that account (move its nonce, set its code)."""

    def __init__(self, address: bytes) -> None:
        super().__init__(
            f"authorization signer not authorized to send transactions: {_address(address)}"
        )
        self.address = address


# --- the pool's policy refuses it --------------------------------------------------------------


class PoolPolicyRejection(TxPoolError):
    """Valid, but this pool will not hold it (duplicates, limits, fees)."""


class AlreadyKnown(PoolPolicyRejection):
    """The same transaction (by hash) is already in the pool."""

    def __init__(self) -> None:
        super().__init__("already known")


class Underpriced(PoolPolicyRejection):
    """The fee is below the pool's minimum gas price or the current base fee."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"transaction underpriced: {detail}")
        self.detail = detail


class ReplacementUnderpriced(PoolPolicyRejection):
    """Same sender and nonce as a pooled transaction, without the required fee bump.

    The bump makes replacement cost something, so nobody can churn the pool (and the gossip
    network) for free.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(f"replacement transaction underpriced: {detail}")
        self.detail = detail


class NonceTooHigh(PoolPolicyRejection):
    """The nonce leaves a gap wider than the pool keeps for future transactions."""

    def __init__(self, address: bytes, tx_nonce: int, next_nonce: int, max_gap: int) -> None:
        super().__init__(
            f"nonce too high: address {_address(address)}, tx: {tx_nonce} "
            f"next: {next_nonce}, max gap: {max_gap}"
        )
        self.tx_nonce = tx_nonce
        self.next_nonce = next_nonce
        self.max_gap = max_gap


class AccountLimitExceeded(PoolPolicyRejection):
    """One sender may hold only so many slots, so one account cannot fill the pool."""

    def __init__(self, address: bytes, limit: int) -> None:
        super().__init__(f"account limit exceeded: address {_address(address)}, limit {limit}")
        self.limit = limit


class InflightLimitReached(PoolPolicyRejection):
    """A delegated account (or one a pooled authorization will delegate) may have one
    transaction in the pool at a time: its nonce can move under the pool (geth's rule)."""

    def __init__(self) -> None:
        super().__init__("in-flight transaction limit reached for delegated accounts")


class AuthorityReserved(PoolPolicyRejection):
    """A set-code transaction whose authority already has several pooled transactions: the
    authorization would bump that account's nonce under them (geth's rule)."""

    def __init__(self) -> None:
        super().__init__("authority already reserved")


class PoolFull(PoolPolicyRejection):
    """The pool is at capacity and the transaction pays no more than what it would evict."""

    def __init__(self) -> None:
        super().__init__("txpool is full")
