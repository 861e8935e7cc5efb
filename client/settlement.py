"""Settlement helpers: escrow with milestones and batch payouts, over the contracts' ABIs.

The `Escrow` and `BatchPayout` contracts come from the contracts work (issue 5); their ABIs are
loaded by name (`client.artifacts`), and until those artifacts exist every helper raises
`ContractUnavailable` saying so. Each helper checks that the function it calls is in the ABI.
Funds leave the wallet only through `Wallet.send`, so the spending policy judges them first:
an escrow deposit as a payment of the token to the payee, a batch as its total with every payee
checked against the allowlist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from client.artifacts import contract_abi, require_functions
from client.policy import Payment, asset_key
from client.tokens import ContractBinding

if TYPE_CHECKING:
    from client.wallet import Submitted, Wallet


class Escrow(ContractBinding):
    """A milestone escrow: the payer funds it, approves milestones, or is refunded after the
    deadline; an arbiter resolves disputes."""

    ARTIFACT = "Escrow"

    def __init__(self, wallet: Wallet, address: str) -> None:
        super().__init__(wallet, address, contract_abi(self.ARTIFACT))

    def create(
        self,
        payee: str,
        token: str,
        milestones: Sequence[int],
        deadline: int,
        arbiter: str,
        **options: Any,
    ) -> Submitted:
        """Open and fund an escrow of sum(milestones) (approve the token to this contract
        first); judged by the policy as paying the total to `payee`."""
        require_functions(self.ARTIFACT, self.abi, "create")
        payee = to_checksum_address(payee)
        payment = Payment(asset_key(token), payee, sum(milestones))
        return self.transact(
            "create",
            payee,
            to_checksum_address(token),
            list(milestones),
            deadline,
            to_checksum_address(arbiter),
            payment=payment,
            **options,
        )

    def approve_milestone(self, escrow_id: int, milestone: int, **options: Any) -> Submitted:
        """Release one milestone to the payee (the funds already left at `create`)."""
        require_functions(self.ARTIFACT, self.abi, "approveMilestone")
        payment = Payment(asset_key(None), self.address, 0)
        return self.transact("approveMilestone", escrow_id, milestone, payment=payment, **options)

    def refund(self, escrow_id: int, **options: Any) -> Submitted:
        """Take back what is unreleased after the deadline."""
        require_functions(self.ARTIFACT, self.abi, "refund")
        payment = Payment(asset_key(None), self.address, 0)
        return self.transact("refund", escrow_id, payment=payment, **options)


class BatchPayout(ContractBinding):
    """Many payees in one all-or-nothing transaction (payroll)."""

    ARTIFACT = "BatchPayout"

    def __init__(self, wallet: Wallet, address: str) -> None:
        super().__init__(wallet, address, contract_abi(self.ARTIFACT))

    def pay(
        self, token: str, payees: Sequence[str], amounts: Sequence[int], **options: Any
    ) -> Submitted:
        """Pay `amounts[i]` of `token` to `payees[i]`; the policy checks every payee and the
        total."""
        if len(payees) != len(amounts):
            raise ValueError("payees and amounts differ in length")
        require_functions(self.ARTIFACT, self.abi, "payout")
        payees = [to_checksum_address(p) for p in payees]
        asset = asset_key(token)
        for payee in payees:  # allowlist per payee, before anything is reserved
            self.wallet.policy.approve(Payment(asset, payee, 0)).cancel()
        payment = Payment(asset, self.address, sum(amounts))
        return self.transact(
            "payout",
            to_checksum_address(token),
            payees,
            list(amounts),
            payment=payment,
            **options,
        )
