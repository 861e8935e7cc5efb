"""`tally wallet`: keys, balances, payments and payment requests from the command line.

Every secret and setting can come from an option or an environment variable, so scripts never
put a PIN on a command line that `ps` shows: `TALLY_KEYSTORE` (file|pkcs11),
`TALLY_KEYSTORE_DIR`, `TALLY_KEYSTORE_PASSWORD`, `TALLY_PKCS11_MODULE`, `TALLY_PKCS11_TOKEN`,
`TALLY_PKCS11_PIN`, `TALLY_WALLET_KEY`, `TALLY_RPC_URL`, `TALLY_POLICY` (a policy JSON file, see
`client.policy.SpendingPolicy.load`). A secret that is not given is prompted for, hidden.

Amounts are written in whole units (ether, or the token's `decimals()`), e.g. `1.5`; `--raw`
takes base units (wei) instead.

Exit codes, which scripts can rely on:

    0  success
    1  unexpected error (a bug: please report it)
    2  bad usage (unknown option, missing argument)
    3  refused by the spending policy (limit, allowlist, second factor, PIN lockout)
    4  key store error (wrong PIN or password, key not found, token or module missing)
    5  the node refused the transaction or the call reverted
    6  not final before --timeout (the transaction may still land)
    7  malformed payment request, or one for another chain
    8  the transaction was mined but reverted
    9  a contract the command needs is not available
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from client.errors import (
    ContractUnavailable,
    FinalityTimeout,
    KeyStoreError,
    NodeError,
    PaymentRequestError,
    PolicyViolation,
    TallyClientError,
    TransactionFailed,
)
from client.keystore import SOFTHSM2_MODULE, FileKeyStore, KeyStore, Pkcs11KeyStore
from client.keystore.file import STANDARD_SCRYPT_N
from client.payments import PaymentRequest, parse_payment_request
from client.policy import NATIVE, SpendingPolicy
from client.rpc import DEFAULT_RPC_URL
from client.wallet import Submitted, Wallet

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_POLICY, EXIT_KEYSTORE = 0, 1, 2, 3, 4
EXIT_NODE, EXIT_TIMEOUT, EXIT_REQUEST, EXIT_FAILED, EXIT_CONTRACT = 5, 6, 7, 8, 9

#: Most specific first: the first matching class decides the exit code.
EXIT_CODES: list[tuple[type[Exception], int]] = [
    (PolicyViolation, EXIT_POLICY),
    (KeyStoreError, EXIT_KEYSTORE),
    (FinalityTimeout, EXIT_TIMEOUT),
    (TransactionFailed, EXIT_FAILED),
    (PaymentRequestError, EXIT_REQUEST),
    (ContractUnavailable, EXIT_CONTRACT),
    (NodeError, EXIT_NODE),
    (TallyClientError, EXIT_ERROR),
]

wallet_app = typer.Typer(
    help="Keys, balances, payments and payment requests (keys never leave their store).",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    """The options shared by every command (from the group callback)."""

    keystore: str
    keystore_dir: Path
    password: str | None
    module: str
    token: str
    pin: str | None
    key: str
    rpc: str
    policy: Path | None
    scrypt_n: int

    def policy_or_none(self) -> SpendingPolicy | None:
        return SpendingPolicy.load(self.policy) if self.policy else None

    def store(self) -> KeyStore:
        """The configured key store, asking for its secret if none was given."""
        policy = self.policy_or_none()
        guard = policy.pin_guard() if policy else None
        if self.keystore == "pkcs11":
            pin = self.pin if self.pin is not None else typer.prompt("Token PIN", hide_input=True)
            return Pkcs11KeyStore(self.token, pin, self.module, guard=guard)
        if self.keystore == "file":
            password = (
                self.password
                if self.password is not None
                else typer.prompt("Keystore password", hide_input=True)
            )
            return FileKeyStore(self.keystore_dir, password, self.scrypt_n, guard=guard)
        raise typer.BadParameter(f"--keystore must be file or pkcs11, not {self.keystore!r}")

    def wallet(self) -> Wallet:
        return Wallet(self.store(), self.key, self.rpc, policy=self.policy_or_none())


@wallet_app.callback()
def settings(
    ctx: typer.Context,
    keystore: str = typer.Option("file", envvar="TALLY_KEYSTORE", help="file or pkcs11."),
    keystore_dir: Path = typer.Option(
        Path.home() / ".tally" / "keystore", envvar="TALLY_KEYSTORE_DIR", help="File keystore."
    ),
    password: str | None = typer.Option(
        None, envvar="TALLY_KEYSTORE_PASSWORD", help="File keystore password (else prompted)."
    ),
    module: str = typer.Option(SOFTHSM2_MODULE, envvar="TALLY_PKCS11_MODULE"),
    token: str = typer.Option("tally", envvar="TALLY_PKCS11_TOKEN", help="Token label."),
    pin: str | None = typer.Option(
        None, envvar="TALLY_PKCS11_PIN", help="Token user PIN (else prompted)."
    ),
    key: str = typer.Option("default", envvar="TALLY_WALLET_KEY", help="Key label."),
    rpc: str = typer.Option(DEFAULT_RPC_URL, envvar="TALLY_RPC_URL", help="Node JSON-RPC URL."),
    policy: Path | None = typer.Option(
        None, envvar="TALLY_POLICY", help="Spending policy JSON file."
    ),
    scrypt_n: int = typer.Option(
        STANDARD_SCRYPT_N, envvar="TALLY_SCRYPT_N", hidden=True, help="scrypt cost for new keys."
    ),
) -> None:
    ctx.obj = Settings(
        keystore, keystore_dir, password, module, token, pin, key, rpc, policy, scrypt_n
    )


def exits(command: F) -> F:
    """Print SDK errors as one red line and exit with the documented code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TallyClientError as exc:
            code = next(code for cls, code in EXIT_CODES if isinstance(exc, cls))
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(code) from exc

    return run  # type: ignore[return-value]


# --- amounts ---------------------------------------------------------------------------------


def to_base_units(amount: str, decimals: int, raw: bool) -> int:
    try:
        value = Decimal(amount)
    except InvalidOperation as exc:
        raise typer.BadParameter(f"{amount!r} is not a number") from exc
    scaled = value if raw else value.scaleb(decimals)
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise typer.BadParameter(f"{amount} is not a whole, non-negative number of base units")
    return int(scaled)


def show_amount(base_units: int, decimals: int, symbol: str) -> str:
    value = Decimal(base_units).scaleb(-decimals)
    text = format(value.normalize(), "f") if value else "0"
    return f"{text} {symbol}"


def asset_units(wallet: Wallet, token: str | None) -> tuple[int, str]:
    if token is None:
        return 18, NATIVE
    erc20 = wallet.token(token)
    return erc20.decimals(), erc20.symbol()


@contextmanager
def waiting(what: str) -> Iterator[Callable[[float], None]]:
    """A spinner with elapsed time while waiting for finality."""
    with err.status(f"{what}: waiting for finality") as status:

        def update(elapsed: float) -> None:
            status.update(f"{what}: waiting for finality ({elapsed:.1f}s)")

        yield update


def report(sent: Submitted) -> None:
    out.print(f"tx {sent.tx_hash}  nonce {sent.nonce}")
    if sent.receipt is not None:
        r = sent.receipt
        out.print(f"[green]final[/] in block {r.block_number} (gas used {r.gas_used})")


# --- commands --------------------------------------------------------------------------------


@wallet_app.command()
@exits
def new(
    ctx: typer.Context,
    label: str = typer.Argument(None, help="Key label (default: --key)."),
    keystore: str | None = typer.Option(None, "--keystore", help="file or pkcs11."),
) -> None:
    """Create a key inside the key store and print its address."""
    settings: Settings = ctx.obj
    if keystore is not None:
        settings.keystore = keystore
    info = settings.store().create(label or settings.key)
    out.print(f"created {info.backend} key [bold]{info.label}[/]  {info.address}")


@wallet_app.command("list")
@exits
def list_keys(ctx: typer.Context) -> None:
    """List the keys in the key store (labels and addresses only)."""
    keys = ctx.obj.store().list()
    table = Table("label", "address", "backend")
    for key in keys:
        table.add_row(key.label, key.address, key.backend)
    out.print(table if keys else "no keys")


@wallet_app.command()
@exits
def address(ctx: typer.Context) -> None:
    """Print the address of the selected key (--key)."""
    out.print(ctx.obj.store().address(ctx.obj.key))


@wallet_app.command()
@exits
def balance(
    ctx: typer.Context,
    token: str | None = typer.Option(None, help="ERC-20 address (default: the coin)."),
    raw: bool = typer.Option(False, help="Print base units."),
) -> None:
    """Print the balance of the selected key."""
    wallet = ctx.obj.wallet()
    amount = wallet.balance(token)
    decimals, symbol = asset_units(wallet, token)
    out.print(str(amount) if raw else show_amount(amount, decimals, symbol))


@wallet_app.command()
@exits
def send(
    ctx: typer.Context,
    to: str = typer.Argument(..., help="Recipient address."),
    amount: str = typer.Argument(..., help="Amount in whole units (or base units with --raw)."),
    token: str | None = typer.Option(None, help="ERC-20 address (default: the coin)."),
    raw: bool = typer.Option(False, help="AMOUNT is in base units."),
    totp: str | None = typer.Option(None, help="Authenticator code, for large payments."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for finality."),
    wait: bool = typer.Option(True, help="Wait for finality."),
) -> None:
    """Pay a recipient and wait until the payment is final."""
    wallet = ctx.obj.wallet()
    decimals, symbol = asset_units(wallet, token)
    units = to_base_units(amount, decimals, raw)
    with waiting(f"paying {show_amount(units, decimals, symbol)}") as on_wait:
        if token is None:
            sent = wallet.transfer(
                to, units, totp=totp, wait=wait, timeout=timeout, on_wait=on_wait
            )
        else:
            sent = wallet.pay_token(
                token, to, units, totp=totp, wait=wait, timeout=timeout, on_wait=on_wait
            )
    report(sent)


@wallet_app.command()
@exits
def request(
    ctx: typer.Context,
    amount: str = typer.Argument(..., help="Amount in whole units (or base units with --raw)."),
    to: str | None = typer.Option(None, help="Recipient (default: the selected key)."),
    token: str | None = typer.Option(None, help="ERC-20 address (default: the coin)."),
    raw: bool = typer.Option(False, help="AMOUNT is in base units."),
    png: Path | None = typer.Option(None, help="Also write the QR code to this PNG."),
    qr: bool = typer.Option(True, help="Print the QR code in the terminal."),
) -> None:
    """Print an EIP-681 payment request (URI and QR code) for someone to pay you."""
    wallet = ctx.obj.wallet()
    decimals, _ = asset_units(wallet, token)
    payment = PaymentRequest(
        to or wallet.address, to_base_units(amount, decimals, raw), wallet.chain_id, token
    )
    out.print(payment.to_uri())
    if qr:
        payment.terminal_qr(sys.stdout)
    if png is not None:
        payment.save_png(png)
        out.print(f"QR code written to {png}")


@wallet_app.command()
@exits
def pay(
    ctx: typer.Context,
    uri: str = typer.Argument(..., help="An EIP-681 payment request."),
    totp: str | None = typer.Option(None, help="Authenticator code, for large payments."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for finality."),
) -> None:
    """Pay an EIP-681 payment request (after showing what it asks for)."""
    payment = parse_payment_request(uri)
    wallet = ctx.obj.wallet()
    if payment.chain_id is not None and payment.chain_id != wallet.chain_id:
        raise PaymentRequestError(
            f"the request is for chain {payment.chain_id}, the node is chain {wallet.chain_id}"
        )
    decimals, symbol = asset_units(wallet, payment.token)
    shown = show_amount(payment.amount, decimals, symbol)
    out.print(f"pay [bold]{shown}[/] to {payment.recipient}")
    if not yes and not typer.confirm("Pay?"):
        raise typer.Exit(EXIT_ERROR)
    with waiting(f"paying {shown}") as on_wait:
        if payment.token is None:
            sent = wallet.transfer(
                payment.recipient, payment.amount, totp=totp, timeout=timeout, on_wait=on_wait
            )
        else:
            sent = wallet.pay_token(
                payment.token,
                payment.recipient,
                payment.amount,
                totp=totp,
                timeout=timeout,
                on_wait=on_wait,
            )
    report(sent)


@wallet_app.command()
@exits
def history(
    ctx: typer.Context,
    blocks: int = typer.Option(256, help="How many recent blocks to read."),
    raw: bool = typer.Option(False, help="Print base units."),
) -> None:
    """Payments to and from the selected key in recent blocks (coin and ERC-20)."""
    wallet = ctx.obj.wallet()
    entries = wallet.history(lookback=blocks)
    table = Table("block", "direction", "amount", "counterparty", "tx")
    units: dict[str, tuple[int, str]] = {}
    for entry in entries:
        if entry.asset not in units:
            units[entry.asset] = asset_units(wallet, None if entry.asset == NATIVE else entry.asset)
        decimals, symbol = units[entry.asset]
        amount = str(entry.amount) if raw else show_amount(entry.amount, decimals, symbol)
        table.add_row(
            str(entry.block_number), entry.direction, amount, entry.counterparty, entry.tx_hash
        )
    out.print(table if entries else f"no payments in the last {blocks} blocks")


def main() -> None:
    """Run `wallet` on its own (`python -m client.cli`)."""
    os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
    wallet_app()


if __name__ == "__main__":
    main()
