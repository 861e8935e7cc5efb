"""`tally bank risk`: the risk service (monitor, screening, cases), watch-list entries and a
check of a rules file. Exit codes are `tally bank`'s (2 bad usage or an invalid rules file,
3 database, 4 compliance key store, 5 node)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

#: Made before `bank.cli` is imported: importing it registers this group (`tally bank risk`),
#: so a first import of this module must not find the name missing.
risk_app = typer.Typer(
    help="Risk monitoring, pre-submission screening and compliance cases.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

from bank.cli import (  # noqa: E402 - after risk_app: bank.cli adds it when imported
    DEFAULT_DATA_DIR,
    DEFAULT_KEYSTORE_DIR,
    DEV_WALLET_TOKEN,
    EXIT_CODES,
    SOFTHSM2_MODULE,
    Backend,
    DataDirOption,
    DbOption,
    HostOption,
    KeystoreDirOption,
    KeystoreOption,
    Pkcs11ModuleOption,
    Pkcs11TokenOption,
    TokenOption,
    fail,
    open_database,
    open_key_store,
)

risk_app.info.epilog = EXIT_CODES

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", envvar="TALLY_BANK_RISK_CONFIG", help="Rules file (TOML)."),
]


def load_config(path: Path | None) -> Any:
    from bank.risk.config import ConfigError, load

    try:
        return load(path)
    except ConfigError as exc:
        fail(2, str(exc))


@risk_app.command(epilog=EXIT_CODES)
def serve(
    config: ConfigOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Listen port.")] = 8610,
    rpc: Annotated[
        str, typer.Option(envvar="TALLY_RPC_URL", help="Node URL (JSON-RPC and REST).")
    ] = "http://127.0.0.1:8545",
    token: TokenOption = DEV_WALLET_TOKEN,
    from_block: Annotated[int, typer.Option(min=0, help="First block a new stream reads.")] = 0,
    keystore: KeystoreOption = Backend.file,
    keystore_dir: KeystoreDirOption = DEFAULT_KEYSTORE_DIR,
    pkcs11_module: Pkcs11ModuleOption = SOFTHSM2_MODULE,
    pkcs11_token: Pkcs11TokenOption = "tally",
    key: Annotated[
        str, typer.Option(envvar="TALLY_BANK_COMPLIANCE_KEY", help="Compliance key label.")
    ] = "compliance",
    monitor: Annotated[bool, typer.Option(help="Follow the chain (off: screening only).")] = True,
    cors_origins: Annotated[
        str, typer.Option(help="Web origins (comma-separated) that may work the case queue.")
    ] = "",
) -> None:
    """Run the risk service: the monitor, screening and the case API.

    The node's API key (admin or auditor: the stream is chain-wide) is read from
    TALLY_BANK_NODE_API_KEY."""
    import logging

    import httpx
    import uvicorn

    from bank.cors import parse_origins
    from bank.db import sessions
    from bank.risk.app import create_app
    from bank.risk.cases import Cases, Compliance
    from bank.risk.engine import Engine
    from bank.risk.monitor import Monitor
    from bank.risk.screening import Decoder
    from client.errors import TallyClientError
    from tally_common.keystore.errors import KeyStoreError

    try:
        origins = parse_origins(cors_origins)
    except ValueError as exc:
        fail(2, f"--cors-origins: {exc}")
    rules = load_config(config)
    node_key = os.environ.get("TALLY_BANK_NODE_API_KEY", "")
    if monitor and not node_key:
        fail(2, "TALLY_BANK_NODE_API_KEY (the node's admin or auditor API key) is not set")
    maker = sessions(open_database(db, data_dir))
    try:
        store = open_key_store(keystore, keystore_dir, pkcs11_module, pkcs11_token)
        compliance = Compliance(store, key, rpc, token)
        store.sign_digest(key, bytes(32))  # unlock now: a wrong secret fails here, not later
    except (TallyClientError, KeyStoreError) as exc:
        fail(4, f"compliance key: {exc}")
    try:
        if compliance.wallet.rpc("eth_getCode", compliance.token.address, "latest") in ("0x", None):
            fail(5, f"no contract at {compliance.token.address} on {rpc}")
    except TallyClientError as exc:
        fail(5, f"node at {rpc}: {exc}")
    engine = Engine(rules, maker)
    replayed = engine.load_history()
    follower = (
        Monitor(engine, rpc, node_key, compliance.token.address, {compliance.address}, from_block)
        if monitor
        else None
    )
    if follower is not None:
        try:
            follower.stream_id()  # a refused node API key fails here, with its reason
        except (RuntimeError, httpx.HTTPError) as exc:
            fail(5, f"node event stream: {exc}")
    cases = Cases(maker, compliance)
    app = create_app(engine, follower, cases, Decoder(compliance.token.address), origins)
    # Logging from here on: a refusal above is one line on stderr, not a migration's chatter.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sys.stderr.write(
        f"bank risk on http://{host}:{port} (rules {rules.version}, {replayed} payments "
        f"replayed, compliance {compliance.address})\n"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


@risk_app.command("watch-hash", epilog=EXIT_CODES)
def watch_hash(
    address: Annotated[str, typer.Argument(help="The account to watch.")],
    config: ConfigOption = None,
) -> None:
    """Print the watch-list entry of ADDRESS under the rules file's salt."""
    from bank.risk.watchlist import entry

    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
        fail(2, f"{address!r} is not an address")
    print(entry(load_config(config).rules.watchlist.salt, address))


@risk_app.command("check-config", epilog=EXIT_CODES)
def check_config(config: ConfigOption = None) -> None:
    """Validate a rules file and print its version."""
    print(f"rules {load_config(config).version}: valid")
