"""Settlement helpers: escrow with milestones and batch payouts, over the contracts' ABIs.

The `Escrow` and `BatchPayout` contracts come from the contracts work; their ABIs are loaded by
name (`client.artifacts`), and where an artifact is absent every helper raises
`ContractUnavailable` saying so. Each helper checks that the function it calls is in the ABI.
Funds leave the wallet only through `Wallet.send`, so the spending policy judges them first:
an escrow deposit as a payment of the token to the payee, a batch as its total with every payee
checked against the allowlist (the batch contract itself is then the counterparty, so a wallet
with an allowlist must list the contract too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address
from eth_utils.abi import abi_to_signature

from client.artifacts import contract_abi, require_functions
from client.errors import ContractUnavailable
from client.policy import Payment, asset_key
from client.tokens import NO_REF, ContractBinding, WalletToken

if TYPE_CHECKING:
    from client.wallet import Submitted, Wallet


def _with_token_errors(abi: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`abi` plus the wallet token's errors: the settlement contracts move funds with token
    calls whose reverts bubble up unchanged, so `AccountNotAllowed`, `OverPaymentLimit` and
    the like must decode too, not read as a bare selector."""
    try:
        token_abi = contract_abi(WalletToken.ARTIFACT)
    except ContractUnavailable:
        return abi
    errors = [e for e in abi if e.get("type") == "error"]
    known = {abi_to_signature(e) for e in errors}  # type: ignore[arg-type]
    extra = [
        e
        for e in token_abi
        if e.get("type") == "error" and abi_to_signature(e) not in known  # type: ignore[arg-type]
    ]
    return abi + extra


class Escrow(ContractBinding):
    """A milestone escrow over the wallet token: the payer opens a deal (pulling its total, so
    approve the escrow first), releases milestones, disputes, or is refunded after the deadline;
    an arbiter resolves disputes."""

    ARTIFACT = "Escrow"

    def __init__(self, wallet: Wallet, address: str) -> None:
        super().__init__(wallet, address, _with_token_errors(contract_abi(self.ARTIFACT)))

    def token(self) -> str:
        return to_checksum_address(self.call("token"))

    def open(
        self,
        payee: str,
        arbiter: str,
        milestones: Sequence[int],
        deadline: int,
        ref: bytes = NO_REF,
        **options: Any,
    ) -> Submitted:
        """Open a deal of sum(milestones); judged by the policy as paying the total to `payee`."""
        require_functions(self.ARTIFACT, self.abi, "open")
        payee = to_checksum_address(payee)
        payment = Payment(asset_key(self.token()), payee, sum(milestones))
        return self.transact(
            "open",
            payee,
            to_checksum_address(arbiter),
            list(milestones),
            deadline,
            ref,
            payment=payment,
            **options,
        )

    def _no_funds(self, function: str, *args: Any, **options: Any) -> Submitted:
        """A deal operation that moves no new funds out of the wallet."""
        require_functions(self.ARTIFACT, self.abi, function)
        payment = Payment(asset_key(None), self.address, 0)
        return self.transact(function, *args, payment=payment, **options)

    def release(self, deal: int, milestone: int, **options: Any) -> Submitted:
        """Release one milestone to the payee (the funds left the wallet at `open`)."""
        return self._no_funds("release", deal, milestone, **options)

    def dispute(self, deal: int, **options: Any) -> Submitted:
        """Hand the deal to its arbiter."""
        return self._no_funds("dispute", deal, **options)

    def refund(self, deal: int, **options: Any) -> Submitted:
        """Take back what is unreleased after the deadline."""
        return self._no_funds("refund", deal, **options)


class BatchPayout(ContractBinding):
    """Many payees in one all-or-nothing transaction (payroll), in the wallet token."""

    ARTIFACT = "BatchPayout"

    def __init__(self, wallet: Wallet, address: str) -> None:
        super().__init__(wallet, address, _with_token_errors(contract_abi(self.ARTIFACT)))

    def pay(
        self, payees: Sequence[str], amounts: Sequence[int], ref: bytes = NO_REF, **options: Any
    ) -> Submitted:
        """Pay `amounts[i]` to `payees[i]` (approve the contract first); the policy checks every
        payee against the allowlist and the total against the limits."""
        if len(payees) != len(amounts):
            raise ValueError("payees and amounts differ in length")
        require_functions(self.ARTIFACT, self.abi, "pay")
        payees = [to_checksum_address(p) for p in payees]
        asset = asset_key(to_checksum_address(self.call("token")))
        for payee in payees:  # allowlist per payee, before anything is reserved
            self.wallet.policy.approve(Payment(asset, payee, 0)).cancel()
        payment = Payment(asset, payees[0] if len(set(payees)) == 1 else self.address, sum(amounts))
        return self.transact("pay", payees, list(amounts), ref, payment=payment, **options)
