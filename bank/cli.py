"""`tally bank`: the gateway, the card-processor simulator, API keys, reconciliation,
migrations.

Settings come from options or environment variables (secrets only from the environment or a
prompt, never a command line `ps` shows): `TALLY_BANK_DB` (SQLAlchemy URL; default SQLite in
the data directory), `TALLY_BANK_DATA_DIR`, `TALLY_BANK_RAIL_URL`, `TALLY_BANK_RAIL_SECRET`,
`TALLY_RPC_URL`, `TALLY_BANK_NODE_API`, `TALLY_BANK_NODE_API_KEY` (the node API key, of the
auditor role, the gateway's withdrawal stream and credit evaluations run under),
`TALLY_BANK_TOKEN`, `TALLY_BANK_POINTS`, `TALLY_BANK_GATEWAY_URL` and `TALLY_BANK_API_KEY`
(reconcile, credit), and the issuer key's store as `tally wallet` reads it:
`TALLY_KEYSTORE` (file|pkcs11), `TALLY_KEYSTORE_DIR`, `TALLY_KEYSTORE_PASSWORD`,
`TALLY_PKCS11_MODULE`, `TALLY_PKCS11_TOKEN`, `TALLY_PKCS11_PIN`, `TALLY_BANK_ISSUER_KEY`.

Exit codes:

    0  success (a server stopped by a signal)
    1  an unexpected error (a bug: please report it)
    2  bad usage (unknown command or option, a malformed value)
    3  the database cannot be opened or migrated
    4  the issuer's key store: wrong secret, key not found, token or module missing
    5  the node: unreachable, no WalletToken at the given address, or it refused the
       withdrawal stream (the node API key unknown or of a role that cannot subscribe)
    6  the gateway: unreachable, or it refused the request (reconcile, credit)
    7  no credit-evaluation consent is recorded for the customer (credit evaluate)
    86 a crash point was reached (TALLY_BANK_CRASH_AT, for crash tests only)
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bank.credit_cli import credit_app

EXIT_CODES = """\b
Exit codes: 0 ok; 1 unexpected error; 2 bad usage; 3 database cannot be
opened or migrated; 4 issuer key store; 5 node unreachable, no token or
withdrawal stream refused; 6 gateway unreachable or refusing; 7 no credit
consent (credit evaluate); 86 a crash point was reached (TALLY_BANK_CRASH_AT,
crash tests only)."""
DEFAULT_DATA_DIR = Path.home() / ".tally" / "bank"
DEFAULT_KEYSTORE_DIR = Path.home() / ".tally" / "keystore"
DEFAULT_RAIL_SECRET = "tally-dev-rail-secret"
#: Copies of `bank.chain.DEV_WALLET_TOKEN` and `tally_common.keystore.SOFTHSM2_MODULE`, so that
#: `tally bank --help` imports neither web3 nor the key stores (a test keeps them equal).
DEV_WALLET_TOKEN = "0x000000000000000000000000000000000000a002"
DEV_POINTS = "0x000000000000000000000000000000000000a001"
SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

bank_app = typer.Typer(
    help="The bank's gateway: card top-ups and withdrawals.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


bank_app.add_typer(credit_app, name="credit")


class Backend(StrEnum):
    file = "file"
    pkcs11 = "pkcs11"


class KeyRole(StrEnum):
    operations = "operations"
    credit_officer = "credit_officer"
    customer = "customer"
    analyst = "analyst"
    compliance = "compliance"


def fail(code: int, message: str) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


DbOption = Annotated[
    str | None, typer.Option("--db", envvar="TALLY_BANK_DB", help="SQLAlchemy URL.")
]
DataDirOption = Annotated[
    Path, typer.Option(envvar="TALLY_BANK_DATA_DIR", help="Where the SQLite default lives.")
]
HostOption = Annotated[str, typer.Option(help="Listen address.")]
TokenOption = Annotated[str, typer.Option(envvar="TALLY_BANK_TOKEN", help="WalletToken address.")]
KeystoreOption = Annotated[Backend, typer.Option(envvar="TALLY_KEYSTORE", help="Key store.")]
KeystoreDirOption = Annotated[
    Path, typer.Option(envvar="TALLY_KEYSTORE_DIR", help="File key store directory.")
]
Pkcs11ModuleOption = Annotated[
    str, typer.Option(envvar="TALLY_PKCS11_MODULE", help="PKCS#11 module.")
]
Pkcs11TokenOption = Annotated[
    str, typer.Option(envvar="TALLY_PKCS11_TOKEN", help="PKCS#11 token label.")
]


def open_key_store(backend: Backend, directory: Path, module: str, token_label: str) -> Any:
    """The key store a service signs with; its secret only from the environment or a prompt.

    Opening it may raise the key stores' own errors: the caller names the key it wanted."""
    from client import FileKeyStore, Pkcs11KeyStore

    if backend is Backend.pkcs11:
        pin = os.environ.get("TALLY_PKCS11_PIN") or typer.prompt("Token PIN", hide_input=True)
        return Pkcs11KeyStore(token_label, pin, module)
    password = os.environ.get("TALLY_KEYSTORE_PASSWORD") or typer.prompt(
        "Keystore password", hide_input=True
    )
    return FileKeyStore(directory, password)


def open_database(db: str | None, data_dir: Path) -> Any:
    """An engine at Alembic's head (exit 3 if the database refuses)."""
    from sqlalchemy.exc import SQLAlchemyError

    from bank.db import make_engine, sqlite_url, upgrade

    try:
        engine = make_engine(db or sqlite_url(data_dir))
        upgrade(engine)
    except (SQLAlchemyError, OSError) as exc:
        fail(3, f"cannot open or migrate the database: {str(exc).splitlines()[0]}")
    return engine


@bank_app.command(epilog=EXIT_CODES)
def gateway(
    db: DbOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Listen port.")] = 8600,
    rpc: Annotated[
        str, typer.Option(envvar="TALLY_RPC_URL", help="Node JSON-RPC URL.")
    ] = "http://127.0.0.1:8545",
    token: TokenOption = DEV_WALLET_TOKEN,
    node_api: Annotated[
        str | None,
        typer.Option(envvar="TALLY_BANK_NODE_API", help="Node REST base URL (default: --rpc)."),
    ] = None,
    rail_url: Annotated[
        str, typer.Option(envvar="TALLY_BANK_RAIL_URL", help="Card rail (simulator) URL.")
    ] = "http://127.0.0.1:8700",
    rail_timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per rail call.")] = 5.0,
    currency: Annotated[str, typer.Option(help="ISO 4217 code of the token's money.")] = "EUR",
    from_block: Annotated[
        int, typer.Option(min=0, help="First block a new withdrawal stream reads.")
    ] = 0,
    keystore: KeystoreOption = Backend.file,
    keystore_dir: KeystoreDirOption = DEFAULT_KEYSTORE_DIR,
    pkcs11_module: Pkcs11ModuleOption = SOFTHSM2_MODULE,
    pkcs11_token: Pkcs11TokenOption = "tally",
    key: Annotated[
        str, typer.Option(envvar="TALLY_BANK_ISSUER_KEY", help="Issuer key label.")
    ] = "issuer",
    poll: Annotated[float, typer.Option(min=0.05, help="Worker poll interval (s).")] = 0.5,
    recover_after: Annotated[
        float, typer.Option(min=0, help="Idle seconds before a top-up is resumed.")
    ] = 5.0,
    abandon_after: Annotated[
        float, typer.Option(min=0, help="Seconds before an unauthorized one is dropped.")
    ] = 600.0,
    cors_origins: Annotated[
        str, typer.Option(help="Web origins (comma-separated) that may read reconciliation.")
    ] = "",
    points: Annotated[
        str, typer.Option(envvar="TALLY_BANK_POINTS", help="Points ledger address (catalog).")
    ] = DEV_POINTS,
    credit_period: Annotated[
        int, typer.Option(min=1, help="Credit scorecard period, seconds (30 days).")
    ] = 30 * 86_400,
    credit_periods: Annotated[
        int, typer.Option(min=2, max=60, help="Periods the scorecard looks at.")
    ] = 6,
) -> None:
    """Run the gateway: card top-ups in, withdrawals out."""
    import logging

    import httpx
    import uvicorn

    from bank.catalog import Catalog
    from bank.chain import Issuer
    from bank.cors import parse_origins
    from bank.credit import Model
    from bank.credit_history import NodeHistory
    from bank.db import sessions
    from bank.gateway import Services, create_app
    from bank.outbox import Outbox
    from bank.rails.simulator import SimulatorRail
    from bank.stream import StreamRefused, WithdrawalStream
    from bank.topups import TopUps
    from bank.withdrawals import Withdrawals
    from client.errors import TallyClientError
    from client.points import Points
    from tally_common.keystore import KeyStoreError

    try:
        origins = parse_origins(cors_origins)
    except ValueError as exc:
        fail(2, f"--cors-origins: {exc}")
    node_key = os.environ.get("TALLY_BANK_NODE_API_KEY")
    if not node_key:
        fail(2, "TALLY_BANK_NODE_API_KEY (a node API key, role auditor) is not set")
    # The key store first: a wrong secret stops the gateway before it migrates or logs.
    try:
        store = open_key_store(keystore, keystore_dir, pkcs11_module, pkcs11_token)
        issuer = Issuer(store, key, rpc, token)
        store.sign_digest(key, bytes(32))  # unlock now: a wrong secret fails here, not later
    except (TallyClientError, KeyStoreError) as exc:
        fail(4, f"issuer key: {exc}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    engine = open_database(db, data_dir)
    maker = sessions(engine)
    rail_secret = os.environ.get("TALLY_BANK_RAIL_SECRET", DEFAULT_RAIL_SECRET)
    try:
        if issuer.wallet.rpc("eth_getCode", issuer.token.address, "latest") in ("0x", None):
            fail(5, f"no contract at {issuer.token.address} on {rpc}")
    except TallyClientError as exc:
        fail(5, f"node at {rpc}: {exc}")
    import threading

    wake = threading.Event()
    rail = SimulatorRail(rail_url, rail_secret, timeout=rail_timeout)
    secret = rail_secret.encode()
    topups = TopUps(maker, rail, secret, wake, abandon_after, recover_after)
    withdrawals = Withdrawals(maker, rail, currency, wake, from_block)
    stream = WithdrawalStream(node_api or rpc, node_key, issuer, withdrawals)
    try:
        stream.ensure()
    except (StreamRefused, httpx.HTTPError) as exc:
        fail(5, f"withdrawal stream on {node_api or rpc}: {exc}")
    outbox = Outbox(maker, issuer, topups, withdrawals)
    history = NodeHistory(node_api or rpc, node_key, token)
    catalog = Catalog(Points(issuer.wallet, points), history.merchant_names)
    services = Services(
        maker, rail, issuer, topups, withdrawals, stream, outbox, wake, currency, poll,
        history, Model(credit_period, credit_periods), catalog,
    )  # fmt: skip
    sys.stderr.write(f"bank gateway on http://{host}:{port} (issuer {issuer.address})\n")
    uvicorn.run(create_app(services, origins), host=host, port=port, log_level="warning")


@bank_app.command("card-simulator", epilog=EXIT_CODES)
def card_simulator(
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Listen port.")] = 8700,
    callback_url: Annotated[
        str | None, typer.Option(help="Where to send signed callbacks.")
    ] = "http://127.0.0.1:8600/rail/callbacks",
    faults: Annotated[str, typer.Option(help="Fault injection, as JSON.")] = "{}",
) -> None:
    """Run the card-processor simulator (an acquirer, for tests)."""
    import uvicorn
    from pydantic import ValidationError

    from bank.simulator import Faults, create_app

    try:
        configured = Faults.model_validate(json.loads(faults))
    except (ValueError, ValidationError) as exc:
        fail(2, f"--faults: {str(exc).splitlines()[0]}")
    secret = os.environ.get("TALLY_BANK_RAIL_SECRET", DEFAULT_RAIL_SECRET)
    sys.stderr.write(f"card simulator on http://{host}:{port}\n")
    uvicorn.run(
        create_app(secret, callback_url, configured), host=host, port=port, log_level="warning"
    )


@bank_app.command("api-key", epilog=EXIT_CODES)
def api_key(
    role: Annotated[
        KeyRole,
        typer.Option(help="operations, credit_officer, customer, analyst or compliance."),
    ],
    name: Annotated[str, typer.Option(help="Who holds it (for the records).")],
    account: Annotated[str | None, typer.Option(help="A customer's wallet address.")] = None,
    db: DbOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Make an API key and print it (only its hash is kept)."""
    import re

    from bank.auth import GatewayRole, create_key
    from bank.db import sessions

    if account is not None and not re.fullmatch(r"0x[0-9a-fA-F]{40}", account):
        fail(2, f"--account {account!r} is not an address")
    try:
        with sessions(open_database(db, data_dir))() as session:
            print(create_key(session, GatewayRole(role.value), name, account))
    except ValueError as exc:
        fail(2, str(exc))


@bank_app.command(epilog=EXIT_CODES)
def reconcile(
    day: Annotated[str, typer.Option("--date", help="UTC day, YYYY-MM-DD.")],
    gateway_url: Annotated[
        str, typer.Option("--gateway", envvar="TALLY_BANK_GATEWAY_URL", help="Gateway URL.")
    ] = "http://127.0.0.1:8600",
    out: Annotated[Path | None, typer.Option(help="Write the CSV here.")] = None,
) -> None:
    """Print the day's reconciliation report (CSV)."""
    import datetime

    import httpx

    try:
        datetime.date.fromisoformat(day)
    except ValueError:
        fail(2, f"--date {day!r} is not YYYY-MM-DD")
    key = os.environ.get("TALLY_BANK_API_KEY")
    if not key:
        fail(2, "TALLY_BANK_API_KEY (an operations key) is not set")
    try:
        response = httpx.get(
            f"{gateway_url.rstrip('/')}/reconciliation/{day}",
            params={"format": "csv"},
            headers={"authorization": f"Bearer {key}"},
            timeout=120,
        )
    except httpx.HTTPError as exc:
        fail(6, f"gateway at {gateway_url}: {exc}")
    if response.status_code != 200:
        fail(6, f"gateway refused: HTTP {response.status_code} {response.text[:200]}")
    if out is None:
        sys.stdout.write(response.text)
    else:
        out.write_text(response.text)


@bank_app.command(epilog=EXIT_CODES)
def migrate(db: DbOption = None, data_dir: DataDirOption = DEFAULT_DATA_DIR) -> None:
    """Bring the database to the latest schema."""
    open_database(db, data_dir)
    print("database at the latest schema")


def _add_risk() -> None:
    """`tally bank risk ...` (bank.risk.cli), added last: it reuses the options above."""
    from bank.risk.cli import risk_app

    bank_app.add_typer(risk_app, name="risk")


_add_risk()
