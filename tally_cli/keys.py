"""`tally keys`: node keys made inside a PKCS#11 token or an encrypted keystore file.

An institution runs `tally keys new` on its own machine, keeps the key where it was born, and
hands the other institutions only what `new` and `show` print: the address (for the validator
and node lists) and the public key (what the p2p handshake proves). The stores are
`tally_common.keystore`'s, opened through `node.keys` as `tally run` opens them, so a key made
here is the key the node signs with.

PINs and passwords come from a file (`--pkcs11-pin-file`, `--password-file`) or the
environment (`TALLY_PKCS11_PIN`, `TALLY_NODE_KEY_PASSWORD`), never from a flag value, which
`ps` shows to every user. Only typer is imported until a command runs.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from node.cli import (
    CONTEXT,
    EXIT_KEYSTORE,
    EXIT_REQUEST,
    EXIT_USAGE,
    PASSWORD_ENV,
    PIN_ENV,
    fail,
    read_secret,
)

if TYPE_CHECKING:
    from node.keys import NodeKeySource
    from node.signer import PublicKeyStore

KEYS_EXIT_CODES = """\b
Exit codes: 0 ok; 2 bad usage (no token label, no PIN or password given);
4 key store (wrong PIN or password, no such token, module or key, label
taken); 7 bad request (an invalid label)."""


class Store(StrEnum):
    pkcs11 = "pkcs11"
    file = "file"


StoreOption = Annotated[Store, typer.Option(help="Where node keys live: a token or files.")]
Label = Annotated[str, typer.Argument(help="The key's label (file: DIR/LABEL.json).")]
Module = Annotated[str, typer.Option(help="PKCS#11 module.")]
Token = Annotated[str | None, typer.Option(help="Label of the token (pkcs11).")]
PinFile = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, help=f"File holding the PIN (else ${PIN_ENV})."),
]
Directory = Annotated[Path, typer.Option("--dir", file_okay=False, help="Keystore files (file).")]
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        exists=True, dir_okay=False, help=f"File holding the password (else ${PASSWORD_ENV})."
    ),
]
ScryptN = Annotated[int | None, typer.Option(hidden=True, envvar="TALLY_SCRYPT_N")]

keys_app = typer.Typer(
    help="Node keys in a PKCS#11 token or an encrypted file.",
    epilog=KEYS_EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)


def _source(
    store: Store,
    label: str,
    module: str,
    token: str | None,
    pin_file: Path | None,
    directory: Path,
    password_file: Path | None,
    scrypt_n: int | None = None,
) -> NodeKeySource:
    """The store's settings as `tally run` takes them, with the secret it needs."""
    from node.keys import NodeKeySource
    from tally_common.keystore.base import check_label

    try:
        check_label(label)
    except ValueError as exc:
        fail(EXIT_REQUEST, str(exc))
    if store is Store.pkcs11:
        pin = read_secret(pin_file, PIN_ENV, "--pkcs11-pin-file")
        return NodeKeySource("pkcs11", label, module, token, pin=pin)
    password = read_secret(password_file, PASSWORD_ENV, "--password-file")
    return NodeKeySource(
        "file", key_file=directory / f"{label}.json", password=password, scrypt_n=scrypt_n
    )


@contextmanager
def _opened(source: NodeKeySource) -> Iterator[PublicKeyStore]:
    """The store, closed afterwards; its refusals are one line and the documented exit code."""
    from node.keys import NodeKeyUsage, open_key_store
    from tally_common.keystore.errors import KeyStoreError

    try:
        store = open_key_store(source)
    except NodeKeyUsage as exc:
        fail(EXIT_USAGE, str(exc))
    try:
        yield store
    except KeyStoreError as exc:
        fail(EXIT_KEYSTORE, str(exc))
    finally:
        close: Callable[[], None] | None = getattr(store, "close", None)
        if close is not None:
            close()


def _identity(store: PublicKeyStore, source: NodeKeySource) -> list[str]:
    """The lines that identify a node key, and the `tally run` options that use it."""
    from node.signer import NodeIdentity

    identity = NodeIdentity.of(store.public_key(source.key_label))
    if source.store == "pkcs11":
        options = (
            f"--node-key-store pkcs11 --pkcs11-token {shlex.quote(source.pkcs11_token or '')} "
            f"--node-key-label {source.label}"
        )
    else:
        options = f"--node-key-store file --node-key-file {shlex.quote(str(source.key_file))}"
    return [
        f"  address     {identity.address}",
        f"  public key  {identity.public_key}",
        f"  tally run   {options}",
    ]


def _where(source: NodeKeySource) -> str:
    if source.store == "pkcs11":
        return f"PKCS#11 token {source.pkcs11_token!r}"
    return f"keystore file {source.key_file}"


@keys_app.command(epilog=KEYS_EXIT_CODES)
def new(
    label: Label = "node",
    store: StoreOption = Store.pkcs11,
    pkcs11_module: Module = "/usr/lib/softhsm/libsofthsm2.so",
    pkcs11_token: Token = None,
    pkcs11_pin_file: PinFile = None,
    directory: Directory = Path(".tally/keys"),
    password_file: PasswordFile = None,
    scrypt_n: ScryptN = None,
) -> None:
    """Create a node key inside the store; print its address and public key."""
    source = _source(
        store, label, pkcs11_module, pkcs11_token, pkcs11_pin_file, directory, password_file,
        scrypt_n,
    )  # fmt: skip
    with _opened(source) as opened:
        opened.create(source.key_label)
        lines = _identity(opened, source)
    typer.echo(f"created node key {label!r} in {_where(source)}")
    typer.echo("\n".join(lines))


@keys_app.command(epilog=KEYS_EXIT_CODES)
def show(
    label: Label = "node",
    store: StoreOption = Store.pkcs11,
    pkcs11_module: Module = "/usr/lib/softhsm/libsofthsm2.so",
    pkcs11_token: Token = None,
    pkcs11_pin_file: PinFile = None,
    directory: Directory = Path(".tally/keys"),
    password_file: PasswordFile = None,
) -> None:
    """Print a node key's address and public key (a file key needs its password)."""
    source = _source(
        store, label, pkcs11_module, pkcs11_token, pkcs11_pin_file, directory, password_file
    )
    with _opened(source) as opened:
        lines = _identity(opened, source)
    typer.echo(f"node key {label!r} in {_where(source)}")
    typer.echo("\n".join(lines))


@keys_app.command("list", epilog=KEYS_EXIT_CODES)
def list_keys(
    store: StoreOption = Store.pkcs11,
    pkcs11_module: Module = "/usr/lib/softhsm/libsofthsm2.so",
    pkcs11_token: Token = None,
    pkcs11_pin_file: PinFile = None,
    directory: Directory = Path(".tally/keys"),
) -> None:
    """List the keys in a token or a directory: label and address (files: no password)."""
    from node.keys import file_store

    source = _source(store, "node", pkcs11_module, pkcs11_token, pkcs11_pin_file, directory, None)
    if store is Store.file:  # the files carry their address in clear
        keys = file_store(source).list()
    else:
        with _opened(source) as opened:
            keys = opened.list()
    for key in keys:
        typer.echo(f"{key.label}  {key.address}")
    if not keys:
        where = f"PKCS#11 token {pkcs11_token!r}" if store is Store.pkcs11 else str(directory)
        typer.echo(f"no keys in {where}")
