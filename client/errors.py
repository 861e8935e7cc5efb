"""Every error the SDK raises, grouped by what the caller can do about it.

One root, so an application can catch "anything Tally's client refused" in one place, and one
branch per kind of cause, so it can tell "the user typed the wrong PIN" from "the node said the
nonce is stale" without parsing strings. Builtins are mixed in where they fit (web3.py does the
same), so `except ValueError` around a URI parser still works. The CLI maps each branch to an exit
code (see `client.cli`).

The tree::

    TallyClientError
    ├── PolicyViolation                 the spending policy refused before anything was signed
    │   ├── PerPaymentLimitExceeded         rule "per-payment limit"
    │   ├── DailyLimitExceeded              rule "daily limit"
    │   ├── CounterpartyNotAllowed          rule "counterparty allowlist"
    │   ├── SecondFactorRequired            rule "second factor": no TOTP code given
    │   ├── SecondFactorInvalid             rule "second factor": code wrong, stale or reused
    │   └── PinLockedOut                    rule "PIN retry lockout"
    (PaymentRequestError (ValueError): an EIP-681 URI that cannot be generated or parsed;
     defined in `tally_common.eip681`, shared with the node, so outside this tree)
    (KeyStoreError: the key store could not do what was asked, with KeyStoreUnavailable,
     KeyNotFound, KeyExists and AuthenticationError (WrongPin, WrongPassword) below it;
     defined in `tally_common.keystore.errors`, shared with the node, so outside this tree)
    ├── ContractUnavailable             an artifact or ABI function the helper needs is absent
    ├── NodeError                       the node answered with a JSON-RPC error
    │   ├── NonceTooLow                     -32000 "nonce too low"
    │   ├── NonceTooHigh                    -32000 "nonce too high"
    │   ├── InsufficientFunds               -32000 "insufficient funds ..."
    │   ├── Underpriced                     -32000 "... underpriced"
    │   ├── AlreadyKnown                    -32000 "already known"
    │   ├── TransactionRejected             any other refusal of a transaction by the pool
    │   ├── ExecutionReverted               code 3 (eth_call / eth_estimateGas), decoded reason
    │   └── NodeUnreachable                 no JSON-RPC answer at all (refused, timed out, not JSON)
    ├── TransactionFailed               mined, but the receipt says status 0
    ├── FinalityTimeout (TimeoutError)  not in a finalised block before the deadline
    └── VerificationError               what the node served does not prove what it claims
        ├── MalformedHeader (ValueError)    a header or its QBFT extraData does not decode
        ├── GenesisDocumentError (ValueError)  a genesis document that cannot build block 0
        ├── ReplayError                     py-evm refuses to execute a block being audited
        └── ProofError                      an eth_getProof answer that does not verify
            ├── HeaderMismatch                  the header does not hash to the expected block
            ├── AccountProofInvalid             account proof vs the header's stateRoot
            └── StorageProofInvalid             a storage proof vs the account's storageHash
"""

from __future__ import annotations

from typing import Any

from tally_common.eip681 import PaymentRequestError as PaymentRequestError  # shared: see above


class TallyClientError(Exception):
    """Root of every error the client SDK raises; `str(err)` is meant for a human."""


# --- policy ----------------------------------------------------------------------------------


class PolicyViolation(TallyClientError):
    """The spending policy refused a payment; `rule` names the rule that did.

    Raised before the key store is asked for a signature, so a refused payment leaves no
    signature anywhere.
    """

    rule: str = "policy"

    def __init__(self, message: str) -> None:
        super().__init__(f"refused by policy rule {self.rule!r}: {message}")
        self.detail = message


class PerPaymentLimitExceeded(PolicyViolation):
    """One payment is larger than the per-payment limit for its asset."""

    rule = "per-payment limit"


class DailyLimitExceeded(PolicyViolation):
    """This payment would take the day's total for its asset over the daily limit."""

    rule = "daily limit"


class CounterpartyNotAllowed(PolicyViolation):
    """The recipient is not on the counterparty allowlist."""

    rule = "counterparty allowlist"


class SecondFactorRequired(PolicyViolation):
    """The amount is above the TOTP threshold and no code was supplied."""

    rule = "second factor"


class SecondFactorInvalid(PolicyViolation):
    """The TOTP code is wrong, outside the accepted window, or was already used."""

    rule = "second factor"


class PinLockedOut(PolicyViolation):
    """Too many wrong PINs/passwords in a row: no further attempt reaches the store for now."""

    rule = "PIN retry lockout"


# --- contracts -------------------------------------------------------------------------------


class ContractUnavailable(TallyClientError):
    """A contract helper needs an artifact (or a function in its ABI) that is not shipped."""


# --- the node --------------------------------------------------------------------------------


class NodeError(TallyClientError):
    """The node answered a JSON-RPC call with an error object."""

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message if code is None else f"{message} (JSON-RPC code {code})")
        self.message = message
        self.code = code
        self.data = data


class TransactionRejected(NodeError):
    """The node's pool refused the signed transaction; nothing was executed."""


class NonceTooLow(TransactionRejected):
    """The nonce was already used: another client sent from this account, or a resend."""


class NonceTooHigh(TransactionRejected):
    """The nonce leaves a gap the pool will not hold."""


class InsufficientFunds(TransactionRejected):
    """The account cannot pay gas * price + value."""


class Underpriced(TransactionRejected):
    """The fee is below what the pool accepts, or too low to replace a pending transaction."""


class AlreadyKnown(TransactionRejected):
    """The very same transaction is already in the pool."""


class ExecutionReverted(NodeError):
    """The call reverted (code 3); `reason` is decoded from the revert data where possible."""

    def __init__(self, reason: str, data: str | None = None) -> None:
        super().__init__(f"execution reverted: {reason}" if reason else "execution reverted", 3)
        self.reason = reason
        self.data = data


class NodeUnreachable(NodeError):
    """Nothing usable came back: connection refused or reset, a timeout, or not JSON-RPC."""


# --- after submission ------------------------------------------------------------------------


class TransactionFailed(TallyClientError):
    """The transaction was included but reverted (receipt status 0); gas was still used."""

    def __init__(self, tx_hash: str, block_number: int) -> None:
        super().__init__(f"transaction {tx_hash} reverted in block {block_number}")
        self.tx_hash = tx_hash
        self.block_number = block_number


class FinalityTimeout(TallyClientError, TimeoutError):
    """The transaction was not in a finalised block before the deadline; it may still land."""

    def __init__(self, tx_hash: str, timeout: float) -> None:
        super().__init__(
            f"transaction {tx_hash} not final after {timeout:g}s; it may still be included"
        )
        self.tx_hash = tx_hash
        self.timeout = timeout


# --- verification ----------------------------------------------------------------------------


class VerificationError(TallyClientError):
    """Data the node served fails a check the client made itself (seals, hashes, proofs).

    Unlike `NodeError`, the node answered: the answer is what cannot be trusted.
    """


class MalformedHeader(VerificationError, ValueError):
    """A block header, or its QBFT extraData, that cannot be decoded as Tally writes them."""


class GenesisDocumentError(VerificationError, ValueError):
    """A genesis document the verifier cannot read or build block 0 from."""


class ReplayError(VerificationError):
    """A block py-evm refuses to execute on its parent's state (an invalid transaction)."""


class ProofError(VerificationError):
    """An `eth_getProof` result that does not verify; the message says which part failed."""


class HeaderMismatch(ProofError):
    """The header given does not hash (QBFT on-chain hash) to the block hash expected."""


class AccountProofInvalid(ProofError):
    """The account proof does not lead from the header's stateRoot to the account claimed."""


class StorageProofInvalid(ProofError):
    """A storage proof does not lead from the account's storageHash to the value claimed."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(f"storage slot {key}: {message}")
        self.key = key
