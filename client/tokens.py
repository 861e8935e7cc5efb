"""Typed wrappers for tokens: any ERC-20, and the bank's wallet token.

`Erc20` uses the standard EIP-20 ABI (plus OpenZeppelin 5's `IERC20Errors`, so reverts decode
to named errors) and works with any token, DevToken included. `WalletToken` adds the wallet
token's own functions (fee quote, external payments, withdrawal requests, issuer top-ups,
compliance's flags and holds, and `held_payment`, which tells a payer its payment was held); its
ABI is loaded by name from the contract artifacts, and `ContractUnavailable` says so when that
artifact is not shipped.

Writes go through the owning `Wallet`, so token payments pass the same spending policy as coin
payments: the policy sees the token as the asset and the recipient as the counterparty.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi import decode
from eth_utils import event_signature_to_log_topic, to_checksum_address

from client.artifacts import contract_abi, require_functions
from client.policy import Payment
from client.rpc import mapped_errors

if TYPE_CHECKING:
    from client.wallet import Submitted, Wallet


def _fn(name: str, inputs: list[tuple[str, str]], outputs: list[str], view: bool) -> dict:
    return {
        "type": "function",
        "name": name,
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [{"name": "", "type": t} for t in outputs],
        "stateMutability": "view" if view else "nonpayable",
    }


def _error(name: str, inputs: list[tuple[str, str]]) -> dict:
    return {"type": "error", "name": name, "inputs": [{"name": n, "type": t} for n, t in inputs]}


#: EIP-20 plus OpenZeppelin 5's IERC20Errors (what OZ tokens revert with).
ERC20_ABI: list[dict[str, Any]] = [
    _fn("name", [], ["string"], True),
    _fn("symbol", [], ["string"], True),
    _fn("decimals", [], ["uint8"], True),
    _fn("totalSupply", [], ["uint256"], True),
    _fn("balanceOf", [("account", "address")], ["uint256"], True),
    _fn("allowance", [("owner", "address"), ("spender", "address")], ["uint256"], True),
    _fn("transfer", [("to", "address"), ("value", "uint256")], ["bool"], False),
    _fn("approve", [("spender", "address"), ("value", "uint256")], ["bool"], False),
    _fn(
        "transferFrom",
        [("from", "address"), ("to", "address"), ("value", "uint256")],
        ["bool"],
        False,
    ),
    {
        "type": "event",
        "name": "Transfer",
        "anonymous": False,
        "inputs": [
            {"name": "from", "type": "address", "indexed": True},
            {"name": "to", "type": "address", "indexed": True},
            {"name": "value", "type": "uint256", "indexed": False},
        ],
    },
    _error(
        "ERC20InsufficientBalance",
        [("sender", "address"), ("balance", "uint256"), ("needed", "uint256")],
    ),
    _error("ERC20InvalidSender", [("sender", "address")]),
    _error("ERC20InvalidReceiver", [("receiver", "address")]),
    _error(
        "ERC20InsufficientAllowance",
        [("spender", "address"), ("allowance", "uint256"), ("needed", "uint256")],
    ),
    _error("ERC20InvalidApprover", [("approver", "address")]),
    _error("ERC20InvalidSpender", [("spender", "address")]),
]


class ContractBinding:
    """A contract at an address, read through web3 and written through a wallet."""

    def __init__(self, wallet: Wallet, address: str, abi: list[dict[str, Any]]) -> None:
        self.wallet = wallet
        self.address = to_checksum_address(address)
        self.abi = abi
        self.contract = wallet.w3.eth.contract(address=self.address, abi=abi)

    def call(self, function: str, *args: Any) -> Any:
        """A view call, reverts decoded against this contract's ABI."""
        with mapped_errors(self.abi):
            return self.contract.functions[function](*args).call({"from": self.wallet.address})

    def transact(
        self,
        function: str,
        *args: Any,
        payment: Payment,
        value: int = 0,
        totp: str | None = None,
        wait: bool = True,
        timeout: float = 30.0,
        on_wait: Callable[[float], None] | None = None,
    ) -> Submitted:
        """Call `function` in a signed transaction from the wallet, judged by the policy as
        `payment` (the value the call moves and to whom)."""
        data = bytes.fromhex(self.contract.encode_abi(function, args=list(args))[2:])
        return self.wallet.send(
            self.address,
            value,
            data,
            payment=payment,
            totp=totp,
            abi=self.abi,
            wait=wait,
            timeout=timeout,
            on_wait=on_wait,
        )


class Erc20(ContractBinding):
    """Any ERC-20 token."""

    def __init__(
        self, wallet: Wallet, address: str, abi: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(wallet, address, abi or ERC20_ABI)
        self._decimals: int | None = None

    def name(self) -> str:
        return str(self.call("name"))

    def symbol(self) -> str:
        return str(self.call("symbol"))

    def decimals(self) -> int:
        if self._decimals is None:
            self._decimals = int(self.call("decimals"))
        return self._decimals

    def balance_of(self, owner: str) -> int:
        return int(self.call("balanceOf", to_checksum_address(owner)))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self.call("allowance", to_checksum_address(owner), to_checksum_address(spender)))

    def transfer(self, to: str, amount: int, **options: Any) -> Submitted:
        """Pay `amount` base units to `to` (policy: this token, this recipient, this amount)."""
        to = to_checksum_address(to)
        return self.transact(
            "transfer", to, amount, payment=Payment(self.address, to, amount), **options
        )

    def approve(self, spender: str, amount: int, **options: Any) -> Submitted:
        """Allow `spender` (e.g. an escrow) to take up to `amount`; judged as paying it."""
        spender = to_checksum_address(spender)
        return self.transact(
            "approve", spender, amount, payment=Payment(self.address, spender, amount), **options
        )


class FeeKind(enum.IntEnum):
    """How a wallet-token payment is declared (`WalletToken.Kind`): internal payments are free,
    external and cross-border ones pay the fee schedule's fee."""

    INTERNAL = 0
    EXTERNAL = 1
    CROSS_BORDER = 2


NO_REF = b"\x00" * 32


class WithdrawalStatus(enum.IntEnum):
    """`WalletToken.WithdrawalStatus`: where a withdrawal request stands."""

    NONE = 0
    PENDING = 1
    BURNED = 2
    REJECTED = 3


class WalletToken(Erc20):
    """The bank's wallet token (2 decimals, fees, KYC limits), from its `WalletToken` artifact.

    Each helper checks that the loaded ABI has the function it calls, so a contract change
    fails with a message naming the function instead of a web3 lookup error. Top-ups have no
    customer-side call: the issuer mints (`mint`) once the card payment has cleared.
    """

    ARTIFACT = "WalletToken"

    def __init__(self, wallet: Wallet, address: str) -> None:
        super().__init__(wallet, address, contract_abi(self.ARTIFACT))

    def quote_fee(self, to: str, amount: int, kind: FeeKind = FeeKind.INTERNAL) -> int:
        """The fee a payment of `amount` from this wallet to `to` would pay, read before paying."""
        require_functions(self.ARTIFACT, self.abi, "quoteFee")
        return int(
            self.call("quoteFee", self.wallet.address, to_checksum_address(to), amount, int(kind))
        )

    def transfer_external(
        self, to: str, amount: int, kind: FeeKind = FeeKind.EXTERNAL, **options: Any
    ) -> Submitted:
        """Pay `to` declaring the payment external or cross-border (the fee is added on top;
        the policy judges the amount plus the quoted fee)."""
        require_functions(self.ARTIFACT, self.abi, "transferExternal")
        to = to_checksum_address(to)
        total = amount + self.quote_fee(to, amount, kind)
        return self.transact(
            "transferExternal",
            to,
            amount,
            int(kind),
            payment=Payment(self.address, to, total),
            **options,
        )

    def request_withdrawal(self, amount: int, ref: bytes = NO_REF, **options: Any) -> Submitted:
        """Ask the issuer to burn `amount` and pay it out to the bank account; `ref` is the
        bank's 32-byte reference for the payout."""
        require_functions(self.ARTIFACT, self.abi, "requestWithdrawal")
        return self.transact(
            "requestWithdrawal",
            amount,
            ref,
            payment=Payment(self.address, self.address, amount),
            **options,
        )

    def mint(self, to: str, amount: int, ref: bytes = NO_REF, **options: Any) -> Submitted:
        """Issuer only: credit a top-up of `amount` to `to` (`ref`: the card payment's id)."""
        require_functions(self.ARTIFACT, self.abi, "mint")
        to = to_checksum_address(to)
        return self.transact(
            "mint", to, amount, ref, payment=Payment(self.address, to, amount), **options
        )

    def topped_up(self, ref: bytes) -> bool:
        """Whether a top-up with this reference was already minted (the token credits once)."""
        require_functions(self.ARTIFACT, self.abi, "toppedUp")
        return bool(self.call("toppedUp", ref))

    def withdrawal(self, withdrawal_id: int) -> tuple[str, int, WithdrawalStatus]:
        """(holder, amount, status) of a withdrawal request; `ExecutionReverted` if unknown."""
        require_functions(self.ARTIFACT, self.abi, "withdrawal")
        holder, amount, status = self.call("withdrawal", withdrawal_id)
        return to_checksum_address(holder), int(amount), WithdrawalStatus(status)

    def burn_withdrawal(self, withdrawal_id: int, **options: Any) -> Submitted:
        """Issuer only: burn a pending withdrawal's locked funds once the payout was made."""
        require_functions(self.ARTIFACT, self.abi, "burnWithdrawal")
        return self.transact(
            "burnWithdrawal", withdrawal_id, payment=Payment(self.address, self.address, 0),
            **options,
        )  # fmt: skip

    def reject_withdrawal(self, withdrawal_id: int, reason: bytes, **options: Any) -> Submitted:
        """Issuer only: give a pending withdrawal's funds back to the holder (`reason`: 32
        bytes, e.g. a short ASCII code right-padded with zeros)."""
        require_functions(self.ARTIFACT, self.abi, "rejectWithdrawal")
        return self.transact(
            "rejectWithdrawal", withdrawal_id, reason,
            payment=Payment(self.address, self.address, 0), **options,
        )  # fmt: skip

    # --- compliance: flags and holds --------------------------------------------------------

    def flag(self, account: str, reason: bytes = NO_REF, **options: Any) -> Submitted:
        """Compliance only: hold every payment from or to `account` for review."""
        return self._compliance("flag", to_checksum_address(account), reason, **options)

    def unflag(self, account: str, **options: Any) -> Submitted:
        return self._compliance("unflag", to_checksum_address(account), **options)

    def release_hold(self, hold_id: int, **options: Any) -> Submitted:
        """Compliance only: pay a held payment to its payee (with its fee and points)."""
        return self._compliance("releaseHold", hold_id, **options)

    def reject_hold(self, hold_id: int, reason: bytes = NO_REF, **options: Any) -> Submitted:
        """Compliance only: refuse a held payment; its payer gets the amount and fee back."""
        return self._compliance("rejectHold", hold_id, reason, **options)

    def cancel_hold(self, hold_id: int, **options: Any) -> Submitted:
        """The payer takes back a held payment once its review window is over."""
        require_functions(self.ARTIFACT, self.abi, "cancelHold")
        return self.transact(
            "cancelHold", hold_id, payment=Payment(self.address, self.wallet.address, 0), **options
        )

    def is_flagged(self, account: str) -> bool:
        require_functions(self.ARTIFACT, self.abi, "isFlagged")
        return bool(self.call("isFlagged", to_checksum_address(account)))

    def hold(self, hold_id: int) -> Hold:
        """One held payment as it stands (reverts `UnknownHold` for an id never used)."""
        require_functions(self.ARTIFACT, self.abi, "hold")
        f, amount, to, fee, kind, reasons, status, deadline = self.call("hold", hold_id)
        return Hold(
            hold_id,
            to_checksum_address(f),
            to_checksum_address(to),
            amount,
            fee,
            FeeKind(kind),
            reasons,
            HoldStatus(status),
            deadline,
        )

    def holds(self, account: str, from_block: int = 0) -> list[Hold]:
        """Every payment from or to `account` that was held, as it stands now (found through
        the `PaymentHeld` events: the contract keeps no per-account list)."""
        topic = "0x" + HELD_TOPIC.hex()
        who = "0x" + bytes.fromhex(to_checksum_address(account)[2:]).rjust(32, b"\0").hex()
        ids: set[int] = set()
        for topics in ([topic, None, who], [topic, None, None, who]):
            logs = self.wallet.rpc(
                "eth_getLogs",
                {"address": self.address, "fromBlock": hex(from_block), "topics": topics},
            )
            ids.update(int(log["topics"][1], 16) for log in logs)
        return [self.hold(i) for i in sorted(ids)]

    def _compliance(self, function: str, *args: Any, **options: Any) -> Submitted:
        require_functions(self.ARTIFACT, self.abi, function)
        return self.transact(
            function, *args, payment=Payment(self.address, self.address, 0), **options
        )


class HoldStatus(enum.IntEnum):
    """`WalletToken.HoldStatus`."""

    NONE = 0
    HELD = 1
    RELEASED = 2
    REJECTED = 3
    CANCELLED = 4


#: `PaymentHeld.reasons` bits.
HELD_OVER_THRESHOLD, HELD_PAYER_FLAGGED, HELD_PAYEE_FLAGGED = 1, 2, 4
HELD_TOPIC = event_signature_to_log_topic(
    "PaymentHeld(uint256,address,address,uint256,uint8,uint8)"
)


@dataclass(frozen=True)
class Hold:
    """A payment WalletToken held for review; `deadline`: when its payer may cancel it."""

    hold_id: int
    payer: str
    payee: str
    amount: int
    fee: int
    kind: FeeKind
    reasons: int
    status: HoldStatus
    deadline: int

    def reason_text(self) -> str:
        return hold_reasons(self.reasons)


def hold_reasons(bits: int) -> str:
    """`PaymentHeld.reasons` in words."""
    names = (
        (HELD_OVER_THRESHOLD, "over the review threshold"),
        (HELD_PAYER_FLAGGED, "payer flagged"),
        (HELD_PAYEE_FLAGGED, "payee flagged"),
    )
    return ", ".join(name for bit, name in names if bits & bit) or "none"


def held_payment(receipt: dict[str, Any]) -> tuple[int, int] | None:
    """(hold id, reasons) if the transaction of this raw receipt had a payment held."""
    for log in receipt.get("logs", []):
        topics = log.get("topics", [])
        if topics and bytes.fromhex(topics[0][2:]) == HELD_TOPIC and len(topics) == 4:
            _amount, _kind, reasons = decode(
                ["uint256", "uint8", "uint8"], bytes.fromhex(log["data"][2:])
            )
            return int(topics[1], 16), int(reasons)
    return None
