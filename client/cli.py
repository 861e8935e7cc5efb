"""`tally wallet`: keys, balances, payments and payment requests from the command line.

Every secret and setting can come from an option or an environment variable, so scripts never
put a PIN on a command line that `ps` shows: `TALLY_KEYSTORE` (file|pkcs11),
`TALLY_KEYSTORE_DIR`, `TALLY_KEYSTORE_PASSWORD`, `TALLY_PKCS11_MODULE`, `TALLY_PKCS11_TOKEN`,
`TALLY_PKCS11_PIN`, `TALLY_WALLET_KEY`, `TALLY_RPC_URL`, `TALLY_RPC_TIMEOUT`, `TALLY_POLICY` (a
policy JSON file, see `client.policy.SpendingPolicy.load`), `TALLY_CA_BUNDLE`,
`TALLY_CLIENT_CERT`, `TALLY_CLIENT_KEY` (an https node's CA, mutual TLS: `client.tls`). A secret
that is not given is prompted for, hidden; a command that only reads addresses from the file
store asks for no password (the files carry the address in clear). The options go before the
command name or after it (`tally wallet balance --rpc URL`); given after it, they win.

Amounts are in the unit `balance` prints: whole ether (or whole tokens, by the token's
`decimals()`), e.g. `1.5`; `--raw` takes base units (wei) instead. Payment request URIs carry
base units, as EIP-681 says.

Only typer and the error classes are imported at module level, so `tally wallet --help` does
not load web3, eth-account or the key stores; the commands import what they use.

Exit codes, which scripts can rely on:

    0  success
    1  declined at the confirmation prompt, or an unexpected error (a bug: please report it)
    2  bad usage (unknown command or option, a missing or malformed value)
    3  refused by the spending policy (limit, allowlist, second factor, PIN lockout)
    4  key store error (wrong PIN or password, key not found, token or module missing)
    5  node: unreachable, timed out, not JSON-RPC, or it refused the request (a call reverted)
    6  not final before --timeout (the transaction may still land)
    7  bad request: an invalid address, amount, URL, private key or payment request, a
       request for another chain, the faucet on a chain that is not a dev chain, or a CA
       bundle, client certificate or key that cannot be used
    8  the transaction was mined but reverted
    9  a contract the command needs is not available
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import string
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from eth_typing import ChecksumAddress
from rich.console import Console
from rich.table import Column, Table

from client.errors import (
    ContractUnavailable,
    FinalityTimeout,
    NodeError,
    PaymentRequestError,
    PolicyViolation,
    TallyClientError,
    TransactionFailed,
)
from tally_common.keystore.errors import KeyStoreError

if TYPE_CHECKING:
    from eth_keys.datatypes import Signature
    from web3 import Web3

    from client.policy import SpendingPolicy
    from client.tls import ClientTls
    from client.wallet import Submitted, Wallet
    from tally_common.keystore import KeyInfo, KeyStore

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

WALLET_EXIT_CODES = """\b
Exit codes: 0 ok; 1 declined; 2 bad usage; 3 refused by the spending policy;
4 key store; 5 node unreachable, timed out or refusing; 6 not final before
--timeout; 7 bad request (address, amount, URL, key, payment request, chain);
8 reverted on chain; 9 contract unavailable."""

#: Copies of `client.rpc.DEFAULT_RPC_URL` and `tally_common.keystore.SOFTHSM2_MODULE`, whose modules
#: import web3 and the key stores, which help must not wait for; a test keeps them equal.
DEFAULT_RPC_URL = "http://127.0.0.1:8545"
SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

#: The dev chain's id, and its account 0 (anvil's and Hardhat's first account from the
#: well-known mnemonic) that `fund` pays from. The key is public, so it protects nothing on any
#: chain: `fund` refuses every chain id but the dev chain's, so a slip cannot spend it elsewhere.
DEV_CHAIN_ID = 1337
DEV_FAUCET_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


class BadRequest(Exception):
    """A value the parser took but the command cannot use (an address, an amount, a URL, a
    private key): exit 7, before the key store or the node is asked anything."""


def fail(code: int, message: str) -> NoReturn:
    """One line on stderr and the documented exit code."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


# --- options shared by a group's commands -------------------------------------------------------


@dataclass(frozen=True)
class SharedOption:
    """An option of a command group that its commands also take after their own name.

    The group's callback reads it with its environment variable and default; each command takes
    it again with neither, so a value given after the command name wins and an absent one
    leaves the group's (`tally wallet --rpc URL balance` and `tally wallet balance --rpc URL`).
    """

    name: str
    kind: Any
    default: Any
    help: str
    envvar: str | None = None
    hidden: bool = False
    late: bool = True
    existing_file: bool = False

    def _option(self, **settings: Any) -> Any:
        if self.existing_file:
            settings |= {"exists": True, "dir_okay": False}
        flag = "--" + self.name.replace("_", "-")
        return typer.Option(flag, help=self.help, hidden=self.hidden, **settings)

    def group_parameter(self) -> inspect.Parameter:
        option = self._option(envvar=self.envvar)
        return inspect.Parameter(
            self.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=self.default,
            annotation=Annotated[self.kind, option],
        )

    def command_parameter(self) -> inspect.Parameter:
        option = self._option(show_default=False)
        return inspect.Parameter(
            self.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[self.kind | None, option],
        )


def group_callback(
    options: Sequence[SharedOption], settings: Callable[..., object]
) -> Callable[..., None]:
    """A group callback taking `options`, which leaves `settings(**values)` in `ctx.obj`."""

    def callback(ctx: typer.Context, **values: Any) -> None:
        ctx.obj = settings(**values)

    context = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    parameters = [context, *(option.group_parameter() for option in options)]
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return callback


def takes_shared_options(options: Sequence[SharedOption]) -> Callable[[F], F]:
    """Let a command (whose first parameter is `ctx`) take the group's `options` too; a value
    given to the command replaces the group's in `ctx.obj` before the command runs."""
    late = [option for option in options if option.late]

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)

        @functools.wraps(command)
        def run(ctx: typer.Context, *args: Any, **kwargs: Any) -> Any:
            for option in late:
                value = kwargs.pop(option.name)
                if value is not None:
                    setattr(ctx.obj, option.name, value)
            return command(ctx, *args, **kwargs)

        parameters = [*signature.parameters.values(), *(o.command_parameter() for o in late)]
        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


# --- settings --------------------------------------------------------------------------------

#: How `tally wallet` and `tally audit` reach a node serving TLS (`client.tls`).
TLS_OPTIONS = (
    SharedOption(
        "ca_bundle", Path | None, None, "CA certificates (PEM) to trust.", "TALLY_CA_BUNDLE"
    ),
    SharedOption(
        "client_cert", Path | None, None, "Client certificate (PEM) for mTLS.", "TALLY_CLIENT_CERT"
    ),
    SharedOption("client_key", Path | None, None, "Its private key (PEM).", "TALLY_CLIENT_KEY"),
)


def client_tls(
    ca_bundle: Path | None, client_cert: Path | None, client_key: Path | None
) -> ClientTls | None:
    """The TLS settings the options name, their files checked (`BadRequest`); None: none."""
    from client.tls import ClientTls, ClientTlsError

    if ca_bundle is None and client_cert is None and client_key is None:
        return None
    if (client_cert is None) != (client_key is None):
        raise BadRequest("--client-cert and --client-key go together")
    tls = ClientTls(ca_bundle, client_cert, client_key)
    try:
        tls.ssl_context()
    except ClientTlsError as exc:
        raise BadRequest(str(exc)) from exc
    return tls


class Backend(StrEnum):
    """Where keys live."""

    file = "file"
    pkcs11 = "pkcs11"


WALLET_OPTIONS = (
    SharedOption("keystore", Backend, Backend.file, "Key store.", "TALLY_KEYSTORE"),
    SharedOption(
        "keystore_dir",
        Path,
        Path.home() / ".tally" / "keystore",
        "File key store directory.",
        "TALLY_KEYSTORE_DIR",
    ),
    SharedOption(
        "password",
        str | None,
        None,
        "File key store password (else prompted).",
        "TALLY_KEYSTORE_PASSWORD",
    ),
    SharedOption("pkcs11_module", str, SOFTHSM2_MODULE, "PKCS#11 module.", "TALLY_PKCS11_MODULE"),
    SharedOption("pkcs11_token", str, "tally", "PKCS#11 token label.", "TALLY_PKCS11_TOKEN"),
    SharedOption(
        "pkcs11_pin", str | None, None, "Token user PIN (else prompted).", "TALLY_PKCS11_PIN"
    ),
    SharedOption("key", str, "default", "Label of the key to use.", "TALLY_WALLET_KEY"),
    SharedOption("rpc", str, DEFAULT_RPC_URL, "Node JSON-RPC URL.", "TALLY_RPC_URL"),
    SharedOption(
        "rpc_timeout", float, 30.0, "Seconds to wait for each node answer.", "TALLY_RPC_TIMEOUT"
    ),
    SharedOption(
        "policy",
        Path | None,
        None,
        "Spending policy JSON file.",
        "TALLY_POLICY",
        existing_file=True,
    ),
    SharedOption(
        "scrypt_n",
        int | None,
        None,
        "scrypt cost of new file keys.",
        "TALLY_SCRYPT_N",
        hidden=True,
        late=False,
    ),
    *TLS_OPTIONS,
)


def checked_url(url: str) -> str:
    """The node URL, if it is one the wallet can use (HTTP JSON-RPC)."""
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise BadRequest(f"--rpc {url!r} is not an http:// or https:// URL")
    return url


def checked_label(label: str) -> str:
    from tally_common.keystore.base import check_label

    try:
        return check_label(label)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc


@dataclass
class Settings:
    """The wallet options (from the group, replaced by any given after the command name)."""

    keystore: Backend
    keystore_dir: Path
    password: str | None
    pkcs11_module: str
    pkcs11_token: str
    pkcs11_pin: str | None
    key: str
    rpc: str
    rpc_timeout: float
    policy: Path | None
    scrypt_n: int | None
    ca_bundle: Path | None
    client_cert: Path | None
    client_key: Path | None

    def check(self) -> None:
        """Refuse unusable settings before anything is asked of the key store or the node."""
        checked_url(self.rpc)
        checked_label(self.key)
        if self.rpc_timeout <= 0:
            raise BadRequest(f"--rpc-timeout must be positive, not {self.rpc_timeout:g}")
        self.tls()

    def tls(self) -> ClientTls | None:
        return client_tls(self.ca_bundle, self.client_cert, self.client_key)

    def policy_or_none(self) -> SpendingPolicy | None:
        from client.policy import SpendingPolicy

        if self.policy is None:
            return None
        try:
            return SpendingPolicy.load(self.policy)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise BadRequest(f"cannot read the policy file {self.policy}: {exc}") from exc

    def file_password(self) -> str:
        if self.password is not None:
            return self.password
        return str(typer.prompt("Keystore password", hide_input=True))

    def store(self, *, signing: bool = True) -> KeyStore:
        """The configured key store, asking for its secret if none was given.

        A file store that only reads addresses needs no password: Web3 Secret Storage files
        carry the address in clear, so none is asked for (a token always needs its PIN).
        """
        from tally_common.keystore import FileKeyStore, Pkcs11KeyStore
        from tally_common.keystore.file import STANDARD_SCRYPT_N

        policy = self.policy_or_none()
        guard = policy.pin_guard() if policy else None
        if self.keystore is Backend.pkcs11:
            pin = self.pkcs11_pin
            if pin is None:
                pin = typer.prompt("Token PIN", hide_input=True)
            return Pkcs11KeyStore(self.pkcs11_token, pin, self.pkcs11_module, guard=guard)
        password = self.file_password() if signing else self.password or ""
        scrypt_n = self.scrypt_n or STANDARD_SCRYPT_N
        return FileKeyStore(self.keystore_dir, password, scrypt_n, guard=guard)

    def connection(self) -> Web3:
        from client.rpc import connect

        return connect(self.rpc, timeout=self.rpc_timeout, tls=self.tls())

    def wallet(self, *, signing: bool = True) -> Wallet:
        from client.wallet import Wallet

        return Wallet(
            self.store(signing=signing), self.key, self.connection(), self.policy_or_none()
        )


wallet_app = typer.Typer(
    help="Keys, balances, payments, payment requests.",
    epilog=WALLET_EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
wallet_app.callback()(group_callback(WALLET_OPTIONS, Settings))


def transport_failure(exc: BaseException) -> str | None:
    """Why no JSON-RPC answer came, for the HTTP transport's own errors (requests' under
    web3.py); None for anything else."""
    import requests

    if isinstance(exc, json.JSONDecodeError):
        return "the answer is not JSON-RPC"
    if isinstance(exc, requests.Timeout):
        return "timed out (see --rpc-timeout)"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason} (not a JSON-RPC endpoint?)"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS: {tls_failure(str(exc))} (see --ca-bundle, --client-cert)"
    if isinstance(exc, requests.RequestException):
        reason = re.search(r"\[Errno -?\d+\] ([^'\")]+)|Error\(\d+, '([^']+)'\)", str(exc))
        return (reason.group(1) or reason.group(2)).strip() if reason else type(exc).__name__
    return None


def tls_failure(text: str) -> str:
    """OpenSSL's reason in an error's text ("certificate verify failed: ..."), else the text."""
    for pattern in (r"\[SSL: \w+\] ([^'\"(]+?) \(_ssl", r"SSL\w*Error\(\d+, '([^'\"(]+?) \(_ssl"):
        reason = re.search(pattern, text)
        if reason:
            return reason.group(1)
    return text


def exits(command: F) -> F:
    """Run a command whose first parameter is `ctx`: SDK errors, bad values and an
    unreachable node become one line on stderr and the documented exit code."""

    @functools.wraps(command)
    def run(ctx: typer.Context, *args: Any, **kwargs: Any) -> Any:
        try:
            ctx.obj.check()
            return command(ctx, *args, **kwargs)
        except (TallyClientError, KeyStoreError, PaymentRequestError) as exc:
            fail(next(code for cls, code in EXIT_CODES if isinstance(exc, cls)), str(exc))
        except BadRequest as exc:
            fail(EXIT_REQUEST, str(exc))
        except (OSError, json.JSONDecodeError) as exc:
            reason = transport_failure(exc)
            if reason is None:
                raise
            fail(EXIT_NODE, f"no answer from the node at {ctx.obj.rpc}: {reason}")

    return run  # type: ignore[return-value]


def wallet_command(name: str | None = None) -> Callable[[F], F]:
    """Register a `tally wallet` command: it takes the wallet options after its name too, and
    fails as `exits` says."""

    def register(command: F) -> F:
        wallet_app.command(name, epilog=WALLET_EXIT_CODES)(
            takes_shared_options(WALLET_OPTIONS)(exits(command))
        )
        return command

    return register


# --- values ----------------------------------------------------------------------------------


def checked_address(value: str, what: str) -> str:
    """A checksummed address, or `BadRequest` saying what is wrong with `value`."""
    from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

    if not is_hex_address(value):
        raise BadRequest(f"{what} {value!r} is not an address (0x and 40 hex digits)")
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise BadRequest(f"{what} {value} has a wrong EIP-55 checksum (a typo?)")
    return str(to_checksum_address(value))


def parse_amount(amount: str) -> Decimal:
    """A finite, non-negative number as typed (scaled to base units later)."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise BadRequest(f"amount {amount!r} is not a non-negative number")
    return value


def to_base_units(amount: str, decimals: int, raw: bool) -> int:
    value = parse_amount(amount)
    scaled = value if raw else value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        unit = "base unit" if raw else f"10^-{decimals}"
        raise BadRequest(
            f"amount {amount} is not a whole number of base units (smallest: 1 {unit})"
        )
    return int(scaled)


def show_amount(base_units: int, decimals: int, symbol: str) -> str:
    value = Decimal(base_units).scaleb(-decimals)
    text = format(value.normalize(), "f") if value else "0"
    return f"{text} {symbol}"


def asset_units(wallet: Wallet, token: str | None) -> tuple[int, str]:
    from client.policy import NATIVE

    if token is None:
        return 18, NATIVE
    erc20 = wallet.token(token)
    return erc20.decimals(), erc20.symbol()


def parse_private_key(text: str) -> bytes:
    """32 bytes of secp256k1 private key from hex; the text is never repeated in errors."""
    from eth_keys.constants import SECPK1_N

    body = text.strip()
    body = body[2:] if body[:2].lower() == "0x" else body
    if len(body) != 64 or not all(c in string.hexdigits for c in body):
        raise BadRequest("not a private key: expected 64 hex digits (32 bytes), 0x optional")
    secret = bytes.fromhex(body)
    if not 0 < int.from_bytes(secret, "big") < SECPK1_N:
        raise BadRequest("not a private key: outside the secp256k1 range")
    return secret


def read_private_key(key_file: Path | None, key_env: str | None) -> bytes:
    """The key to import from a file, an environment variable, or stdin (a hidden prompt on a
    terminal): never from the command line, which `ps` shows to every user."""
    if key_file is not None and key_env is not None:
        raise BadRequest("give --key-file or --key-env, not both")
    if key_file is not None:
        try:
            text = key_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadRequest(f"cannot read {key_file}: {exc}") from exc
    elif key_env is not None:
        if key_env not in os.environ:
            raise BadRequest(f"the environment variable {key_env} is not set")
        text = os.environ[key_env]
    elif sys.stdin.isatty():
        text = typer.prompt("Private key", hide_input=True)
    else:
        text = sys.stdin.readline()
    return parse_private_key(text)


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
        from client.tokens import held_payment, hold_reasons

        held = held_payment(r.raw)
        if held is not None:
            hold_id, reasons = held
            out.print(f"[yellow]held for review[/] (hold {hold_id}: {hold_reasons(reasons)})")


class DevFaucet:
    """Dev account 0 as a one-key store for `fund`. Its key is public (the dev mnemonic's
    first), so holding it in memory protects nothing and costs nothing."""

    backend = "dev"
    label = "dev-account-0"

    def __init__(self) -> None:
        from eth_keys.datatypes import PrivateKey

        self._key = PrivateKey(bytes.fromhex(DEV_FAUCET_KEY[2:]))

    def list(self) -> list[KeyInfo]:
        from tally_common.keystore import KeyInfo

        return [KeyInfo(self.label, self.address(self.label), self.backend)]

    def create(self, label: str) -> KeyInfo:
        raise KeyStoreError("the dev faucet holds one well-known key and makes none")

    def address(self, label: str) -> ChecksumAddress:
        return self._key.public_key.to_checksum_address()

    def sign_digest(self, label: str, digest: bytes) -> Signature:
        return self._key.sign_msg_hash(digest)


def import_file_key(settings: Settings, label: str, secret: bytes) -> KeyInfo:
    """Write `secret` as a new Web3 Secret Storage file of the file store, as
    `FileKeyStore.create` writes a generated one (same KDF, mode 0600, atomic rename)."""
    from eth_account import Account

    from tally_common.keystore import FileKeyStore, KeyInfo
    from tally_common.keystore.errors import KeyExists, KeyStoreUnavailable
    from tally_common.keystore.file import STANDARD_SCRYPT_N, write_atomically

    directory = settings.keystore_dir
    path = directory / f"{label}.json"
    where = FileKeyStore(directory, "").where
    if path.exists():
        raise KeyExists(label, where)
    password = settings.file_password()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise KeyStoreUnavailable(f"cannot create {directory}: {exc}") from exc
    scrypt_n = settings.scrypt_n or STANDARD_SCRYPT_N
    keyfile = Account.encrypt(secret, password, kdf="scrypt", iterations=scrypt_n)
    try:
        write_atomically(path, json.dumps(keyfile).encode())
    except OSError as exc:
        raise KeyStoreUnavailable(f"cannot write {path}: {exc}") from exc
    return KeyInfo(label, Account.from_key(secret).address, "file")


# --- commands --------------------------------------------------------------------------------

Amount = Annotated[str, typer.Argument(help="In whole units, as balance prints (--raw: base).")]
Raw = Annotated[bool, typer.Option(help="AMOUNT is in base units (wei).")]
Token = Annotated[str | None, typer.Option(help="ERC-20 address (default: the coin).")]
Totp = Annotated[str | None, typer.Option(help="Authenticator code, for large payments.")]
Timeout = Annotated[float, typer.Option(help="Seconds to wait for finality.")]


@wallet_command()
def new(
    ctx: typer.Context,
    label: Annotated[str | None, typer.Argument(help="Key label (default: --key).")] = None,
) -> None:
    """Create a key inside the key store and print its address."""
    settings: Settings = ctx.obj
    info = settings.store().create(checked_label(label or settings.key))
    out.print(f"created {info.backend} key [bold]{info.label}[/]  {info.address}")


@wallet_command("import")
def import_key(
    ctx: typer.Context,
    label: Annotated[str | None, typer.Argument(help="Key label (default: --key).")] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Read the private key from this file."),
    ] = None,
    key_env: Annotated[
        str | None, typer.Option(help="Read it from this environment variable.")
    ] = None,
) -> None:
    """Import a private key into the file key store.

    Prints its address. The key (64 hex digits) is read from stdin, --key-file or
    --key-env, never from the command line, which `ps` shows to every user. A PKCS#11 token
    keeps only keys it generated itself (`tally wallet new`)."""
    settings: Settings = ctx.obj
    name = checked_label(label or settings.key)
    if settings.keystore is Backend.pkcs11:
        raise KeyStoreError(
            "a PKCS#11 token holds only keys generated inside it (tally wallet new); "
            "import into the file store instead (--keystore file)"
        )
    info = import_file_key(settings, name, read_private_key(key_file, key_env))
    out.print(f"imported file key [bold]{info.label}[/]  {info.address}")


@wallet_command("list")
def list_keys(ctx: typer.Context) -> None:
    """List the keys in the key store (labels and addresses only)."""
    keys = ctx.obj.store(signing=False).list()
    table = Table("label", "address", "backend")
    for key in keys:
        table.add_row(key.label, key.address, key.backend)
    out.print(table if keys else "no keys")


@wallet_command()
def address(ctx: typer.Context) -> None:
    """Print the address of the selected key (--key)."""
    out.print(ctx.obj.store(signing=False).address(ctx.obj.key))


@wallet_command()
def balance(
    ctx: typer.Context,
    token: Token = None,
    raw: Annotated[bool, typer.Option(help="Print base units (wei).")] = False,
) -> None:
    """Print the balance of the selected key."""
    token = checked_address(token, "--token") if token is not None else None
    wallet = ctx.obj.wallet(signing=False)
    amount = wallet.balance(token)
    decimals, symbol = asset_units(wallet, token)
    out.print(str(amount) if raw else show_amount(amount, decimals, symbol))


@wallet_command()
def send(
    ctx: typer.Context,
    to: Annotated[str, typer.Argument(help="Recipient address.")],
    amount: Amount,
    token: Token = None,
    raw: Raw = False,
    totp: Totp = None,
    timeout: Timeout = 30.0,
    wait: Annotated[bool, typer.Option(help="Wait for finality.")] = True,
) -> None:
    """Pay a recipient and wait until the payment is final."""
    to = checked_address(to, "recipient")
    token = checked_address(token, "--token") if token is not None else None
    parse_amount(amount)
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


@wallet_command()
def request(
    ctx: typer.Context,
    amount: Amount,
    to: Annotated[str | None, typer.Option(help="Recipient (default: the selected key).")] = None,
    token: Token = None,
    raw: Raw = False,
    png: Annotated[Path | None, typer.Option(help="Also write the QR code to this PNG.")] = None,
    qr: Annotated[bool, typer.Option(help="Print the QR code in the terminal.")] = True,
) -> None:
    """Ask to be paid: print an EIP-681 payment request and its QR code.

    The URI carries base units (wei), as EIP-681 says, and is all that goes to stdout with
    --no-qr (so `URI=$(tally wallet request 1 --no-qr)` works); what it asks for, in whole
    units as `balance` prints them, goes to stderr."""
    from tally_common.eip681 import PaymentRequest

    to = checked_address(to, "--to") if to is not None else None
    token = checked_address(token, "--token") if token is not None else None
    parse_amount(amount)
    wallet = ctx.obj.wallet(signing=False)
    decimals, symbol = asset_units(wallet, token)
    units = to_base_units(amount, decimals, raw)
    payment = PaymentRequest(to or wallet.address, units, wallet.chain_id, token)
    out.print(payment.to_uri())
    shown = show_amount(units, decimals, symbol)
    err.print(f"asks for {shown} to {payment.recipient} on chain {payment.chain_id}")
    if qr:
        payment.terminal_qr(sys.stdout)
    if png is not None:
        try:
            payment.save_png(png)
        except OSError as exc:
            raise BadRequest(f"cannot write {png}: {exc.strerror or exc}") from exc
        out.print(f"QR code written to {png}")


@wallet_command()
def pay(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="An EIP-681 payment request (tally wallet request).")],
    totp: Totp = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
    timeout: Timeout = 30.0,
) -> None:
    """Pay an EIP-681 payment request (after showing what it asks for)."""
    from tally_common.eip681 import parse_payment_request

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


@wallet_command()
def fund(
    ctx: typer.Context,
    amount: Amount,
    to: Annotated[str | None, typer.Option(help="Recipient (default: the selected key).")] = None,
    raw: Raw = False,
    timeout: Timeout = 30.0,
) -> None:
    """Dev chains only: pay ether from dev account 0, a faucet.

    Pays AMOUNT to the selected key (or --to). Refused unless the node's chain id is 1337,
    the dev chain's: dev account 0's key is public, and must never be spent elsewhere."""
    from client.wallet import Wallet

    to = checked_address(to, "--to") if to is not None else None
    units = to_base_units(amount, 18, raw)
    settings: Settings = ctx.obj
    faucet = Wallet(DevFaucet(), DevFaucet.label, settings.connection())
    if faucet.chain_id != DEV_CHAIN_ID:
        raise BadRequest(
            f"the faucet only pays on a dev chain (chain id {DEV_CHAIN_ID}); "
            f"{settings.rpc} is chain {faucet.chain_id}"
        )
    recipient = to or settings.store(signing=False).address(settings.key)
    shown = show_amount(units, 18, "ETH")
    with waiting(f"funding {shown}") as on_wait:
        sent = faucet.transfer(recipient, units, timeout=timeout, on_wait=on_wait)
    out.print(f"funded {recipient} with {shown} from dev account 0 ({faucet.address})")
    report(sent)


@wallet_command()
def history(
    ctx: typer.Context,
    blocks: Annotated[int, typer.Option(min=1, help="How many recent blocks to read.")] = 256,
    raw: Annotated[bool, typer.Option(help="Print base units.")] = False,
) -> None:
    """Recent payments to and from the selected key (coin and ERC-20)."""
    from client.policy import NATIVE

    wallet = ctx.obj.wallet(signing=False)
    entries = wallet.history(lookback=blocks)
    table = Table(  # an address or a hash cut short is of no use: they wrap instead
        "block",
        "direction",
        "amount",
        Column("counterparty", overflow="fold"),
        Column("tx", overflow="fold"),
    )
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
