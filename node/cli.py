"""The node's commands of `tally`: `dev`, `run`, `init` and `localnet`.

`tally_cli` mounts them beside `tally wallet` and `tally audit`; `python -m node.cli` runs them
on their own, as the tests, `node.localnet` and the benchmarks do. Only typer is imported at
module level: `tally --help` must not pay for py-evm, uvicorn and LevelDB, so each command
imports what it needs when it runs.

A failure to start is one line on stderr and an exit code, never a traceback (a node that
crashes after it came up keeps its traceback: that is a bug to report). Exit codes, the same
numbers `tally wallet` and `tally audit` use where they overlap:

    0   done; `dev` and `run`: stopped cleanly by Ctrl-C or SIGTERM
    2   bad usage: unknown command or option, a missing or malformed value, or a listener
        setting the node cannot use (`--rpc-api`, `--cors-domains`, `--admin-host`...), or
        node key options that do not fit together (a token without a PIN...)
    4   `dev` and `run`: the node key's store refused (wrong PIN or password, no such token,
        module or key)
    5   `localnet up`: a node it started is not answering (its node.log says why)
    7   bad request: a genesis or network file that cannot be used, a datadir that holds
        another chain, an output file that cannot be written, no network in --dir, a TLS
        certificate, key, key password or client CA that cannot be used, a plaintext node
        key on a chain that is not a dev chain (see --insecure-plaintext-key); `run`: a
        genesis of a chain other than 1337 that enforces no permissioning or gives a
        well-known dev key a role or funds (see --allow-unpermissioned, --allow-dev-keys)
    10  cannot start: a port is taken or not permitted, or another process uses the datadir
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from node.genesis.kept_report import KeptReport
    from node.keys import NodeKeySource
    from node.service import Node, NodeConfig
    from node.tls import TlsSettings

EXIT_USAGE, EXIT_KEYSTORE, EXIT_NODE, EXIT_REQUEST, EXIT_UNAVAILABLE = 2, 4, 5, 7, 10
DEV_CHAIN = 1337  # node.chain.genesis.DEV_CHAIN_ID, which `tally --help` must not import

#: `-h` as well as `--help`, on every command.
CONTEXT = {"help_option_names": ["-h", "--help"]}

SERVE_EXIT_CODES = """\b
Exit codes: 0 stopped cleanly (Ctrl-C, SIGTERM); 2 bad usage, or an option
value the node cannot use; 4 the node key's store refused (wrong PIN or
password, no such token or key); 7 unusable genesis, network or TLS file, a
datadir holding another chain, a plaintext node key on a non-dev chain, or
(run) a non-dev genesis without permissioning or granting a dev key; 10 a
port is taken, or another process uses the datadir."""

# Options `dev` and `run` share. Their defaults are `NodeConfig`'s, written out here because
# the modules that define them load what `tally --help` must not; a test keeps them equal.
# Lists are comma-separated.
Host = Annotated[str, typer.Option(help="Interface to listen on.")]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error.")]
MaxLogRange = Annotated[int, typer.Option(min=1, help="Most blocks one eth_getLogs spans.")]
RpcApi = Annotated[str, typer.Option(help="Namespaces the public JSON-RPC port serves.")]
Vhosts = Annotated[str, typer.Option(help="Host names it answers besides IPs (*: any).")]
CorsDomains = Annotated[str, typer.Option(help="Web origins that may call it (*: any).")]
ExplorerConnect = Annotated[
    str, typer.Option(help="Origins the explorer may also fetch from (the bank gateway's).")
]
AdminHost = Annotated[str, typer.Option(help="The admin listener's address (loopback only).")]
AdminPort = Annotated[
    int, typer.Option(min=0, help="Admin JSON-RPC (every method, bearer token); 0: none.")
]
RpcEvmTimeout = Annotated[
    float, typer.Option(min=0.1, help="Seconds one eth_call or eth_estimateGas may run.")
]
RpcGasCap = Annotated[int, typer.Option(min=21_000, help="Most gas one eth_call may use.")]
RpcFilterTimeout = Annotated[float, typer.Option(min=1, help="Seconds a filter lives unpolled.")]
WsMaxConnections = Annotated[
    int, typer.Option(min=1, help="WebSocket connections open at once (then close 1013).")
]
WsMaxPerAddress = Annotated[
    int, typer.Option(min=1, help="WebSocket connections one client address may hold.")
]
TxpoolJournal = Annotated[bool, typer.Option(help="Keep pending transactions across restarts.")]
TxpoolWorkers = Annotated[
    int | None,
    typer.Option(
        min=0,
        show_default=False,
        help="Processes decoding batched raw transactions and recovering their senders "
        "[default: cores - 1, at most 4; 0: on the event loop].",
    ),
]
DbCacheMib = Annotated[
    int | None,
    typer.Option(
        min=8,
        show_default=False,
        help="LevelDB's block cache in MiB, most of a long-running node's memory once full "
        "[default: 256].",
    ),
]
DbOpenFiles = Annotated[
    int | None,
    typer.Option(
        min=74,  # LevelDB raises anything less to 64 tables and the 10 files it keeps itself
        show_default=False,
        help="Files LevelDB keeps open: its tables, memory-mapped, are the rest of the memory "
        "that grows with the store [default: 1000].",
    ),
]
ApiSwitch = Annotated[bool, typer.Option(help="Serve the REST API (/api/v1, /docs, /explorer/).")]
ApiRateLimit = Annotated[str, typer.Option(help="REST requests allowed per caller.")]
ApiAddressRateLimit = Annotated[str, typer.Option(help="REST requests allowed per address.")]
ApiAuthFailureLimit = Annotated[
    str, typer.Option(help="Failed authentications per address before 429.")
]
ApiTrustedProxies = Annotated[
    str, typer.Option(help="Proxies (IPs, CIDRs) whose X-Forwarded-For counts.")
]
ApiSiweDomain = Annotated[
    str | None, typer.Option(help="Sign-in-with-Ethereum domain (default: host:port).")
]
ApiMaxChallenges = Annotated[int, typer.Option(min=1, help="Sign-in challenges open at once.")]
ApiWebhookHosts = Annotated[
    str, typer.Option(help="Stream webhook hosts allowed (names, IPs, CIDRs); empty: public only.")
]
ApiSessionTtl = Annotated[
    int, typer.Option(min=0, help="Seconds a sign-in-with-Ethereum token lives.")
]
ApiChallengeTtl = Annotated[
    int, typer.Option(min=0, help="Seconds a sign-in challenge waits for its signature.")
]
TlsCert = Annotated[
    Path | None, typer.Option(help="PEM certificate: JSON-RPC, WebSocket, REST over TLS.")
]
TlsKey = Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")]
TlsKeyPasswordFile = Annotated[
    Path | None, typer.Option(help="File whose first line is --tls-key's password.")
]
TlsClientCa = Annotated[
    Path | None, typer.Option(help="PEM CA: clients must present a certificate it signed.")
]

# Where the node key lives (`node.keys`); secrets come from a file or the environment only.
PIN_ENV, PASSWORD_ENV = "TALLY_PKCS11_PIN", "TALLY_NODE_KEY_PASSWORD"


class KeyStoreKind(StrEnum):
    plaintext = "plaintext"
    file = "file"
    pkcs11 = "pkcs11"


NodeKeyStore = Annotated[
    KeyStoreKind, typer.Option(help="Node key: <datadir>/nodekey, an encrypted file, a token.")
]
Pkcs11Module = Annotated[str, typer.Option(help="PKCS#11 module (pkcs11 node key).")]
Pkcs11Token = Annotated[str | None, typer.Option(help="Label of the token holding the key.")]
NodeKeyLabel = Annotated[str, typer.Option(help="Label of the node key in the token.")]
Pkcs11PinFile = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, help=f"File holding the PIN (else ${PIN_ENV})."),
]
NodeKeyFile = Annotated[
    Path | None, typer.Option(dir_okay=False, help="Encrypted keystore LABEL.json (file key).")
]
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        exists=True, dir_okay=False, help=f"File holding its password (else ${PASSWORD_ENV})."
    ),
]
InsecurePlaintextKey = Annotated[
    bool,
    typer.Option("--insecure-plaintext-key", help="Allow a plaintext node key on a real chain."),
]

app = typer.Typer(
    help="Run a Tally node, write a genesis, run a local network.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings=CONTEXT,
)


def fail(code: int, message: str) -> NoReturn:
    """One line on stderr and the documented exit code: all a script or a newcomer needs."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def read_secret(path: Path | None, env: str, option: str) -> str | None:
    """A PIN or password from its file (one trailing newline dropped) or else from `env`;
    never from a flag value, which `ps` shows to every user."""
    if path is None:
        return os.environ.get(env)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(EXIT_USAGE, f"cannot read {option} {path}: {exc}")
    return text.removesuffix("\n").removesuffix("\r")


def node_key_source(
    store: KeyStoreKind,
    pkcs11_module: str,
    pkcs11_token: str | None,
    node_key_label: str,
    pkcs11_pin_file: Path | None,
    node_key_file: Path | None,
    password_file: Path | None,
    insecure_plaintext_key: bool,
) -> NodeKeySource:
    """The node key options of `dev` and `run`, with the secret the chosen store needs."""
    from node.keys import NodeKeySource

    return NodeKeySource(
        store=store.value,
        label=node_key_label,
        pkcs11_module=pkcs11_module,
        pkcs11_token=pkcs11_token,
        pin=read_secret(pkcs11_pin_file, PIN_ENV, "--pkcs11-pin-file")
        if store is KeyStoreKind.pkcs11
        else None,
        key_file=node_key_file,
        password=read_secret(password_file, PASSWORD_ENV, "--password-file")
        if store is KeyStoreKind.file
        else None,
        insecure_plaintext=insecure_plaintext_key,
    )


def _logging(level: str) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        fail(EXIT_USAGE, f"--log-level {level!r} is not one of debug, info, warning, error")
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# --- serving -----------------------------------------------------------------------------------


def _check_ports(config: NodeConfig) -> None:
    """Refuse a taken port before the datadir is created or touched.

    `Node.run` binds for real; a port taken between this probe and that bind fails there,
    with the system's message and the same exit code.
    """
    listeners = {
        "--rpc-port": (config.host, config.rpc_port),
        "--ws-port": (config.host, config.ws_port),
    }
    if config.network is not None:
        listeners["--p2p-port"] = (config.host, config.p2p_port)
    if config.admin_port is not None:
        listeners["--admin-port"] = (config.admin_host, config.admin_port)
    for option, (host, port) in listeners.items():
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except socket.gaierror as exc:  # a host name that does not resolve: bad usage
                fail(EXIT_USAGE, f"cannot resolve the host {host!r} ({option}): {exc.strerror}")
            except OSError as exc:
                hint = " (another node? pick a free port)" if exc.errno == errno.EADDRINUSE else ""
                fail(
                    EXIT_UNAVAILABLE,
                    f"cannot listen on {host}:{port} ({option}): {exc.strerror}{hint}",
                )


def _cannot_start(exc: OSError, config: NodeConfig) -> str:
    import plyvel

    if isinstance(exc, plyvel.IOError) and "lock" in str(exc).lower():
        return f"another process is using the datadir {config.datadir} (its LevelDB is locked)"
    return f"cannot start: {exc}"


YOUNG_COLLECTION_THRESHOLD = 10_000
"""Allocations between two collections of the youngest generation (CPython's default: 700)."""


def _tune_collector() -> None:
    """Collect cycles less often than CPython's defaults, which suit short scripts.

    A node under load allocates tens of thousands of container objects a block (decoded
    transactions, trie nodes, receipts), almost all freed by reference counting. At 700 the
    collector ran several hundred times a run and visited each survivor again in the older
    generations: on four validators at an offered 400 ERC-20 tx/s, 0.24-0.37 s of CPU per
    validator a run (3-4 %), 0.08-0.15 s at 10,000. Cyclic garbage is rare here (a few
    hundred objects a run), so waiting longer to find it costs no memory that shows.
    """
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 10, 10)


def _event_loop(main: Coroutine[Any, Any, None]) -> None:
    _tune_collector()
    try:
        import uvloop
    except ImportError:
        import asyncio

        asyncio.run(main)
    else:
        uvloop.run(main)


def _serve(
    config: NodeConfig,
    announce: Callable[[Node], str],
    opened: Callable[[], None] | None = None,
) -> None:
    """Start a node, print `announce(node)` once every listener is bound, run until stopped.

    Failures before that are one line and an exit code (see the module docstring). `opened`
    runs once the node has opened its datadir and found its chain there, before it serves.
    """
    from node.chain.genesis import GenesisError
    from node.keys import NodeKeyUsage, PlaintextKeyRefused
    from node.p2p.network import NetworkConfigError
    from node.rpc.errors import ListenerConfigError
    from node.service import Node
    from node.tls import TlsConfigError
    from tally_common.keystore.errors import KeyStoreError

    _check_ports(config)
    ready = False
    node: Node | None = None

    def on_ready() -> None:
        nonlocal ready
        ready = True
        assert node is not None
        typer.echo(announce(node))

    try:
        node = Node(config)
        if opened is not None:
            opened()
        _event_loop(node.run(on_ready))
    except (ListenerConfigError, NodeKeyUsage) as exc:  # option values the node cannot use
        if ready:
            raise
        fail(EXIT_USAGE, str(exc))
    except KeyStoreError as exc:
        if ready:
            raise
        fail(EXIT_KEYSTORE, f"node key: {exc}")
    except (GenesisError, NetworkConfigError, PlaintextKeyRefused, TlsConfigError) as exc:
        if ready:
            raise
        fail(EXIT_REQUEST, str(exc))
    except OSError as exc:
        if ready:
            raise
        fail(EXIT_UNAVAILABLE, _cannot_start(exc, config))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _endpoints(node: Node) -> list[str]:
    """The lines every started node prints: where to reach it and where its data is."""
    from node.api.credentials import BOOTSTRAP_FILE

    config = node.config
    secure = "s" if config.tls is not None else ""
    http = f"http{secure}://{_url_host(config.host)}:{config.rpc_port}"
    ws = f"ws{secure}://{_url_host(config.host)}:{config.ws_port}"
    rows = [("JSON-RPC", http), ("WebSocket", ws)]
    if config.tls is not None and config.tls.client_ca is not None:
        rows.append(("Client certs", f"required, signed by {config.tls.client_ca}"))
    if config.api:
        admin_key = config.datadir / BOOTSTRAP_FILE
        rows += [
            ("REST API", f"{http}/api/v1"),
            ("OpenAPI docs", f"{http}/docs"),
            ("Explorer", f"{http}/explorer/"),
            (
                "Admin API key",
                str(admin_key) if admin_key.exists() else "removed (written on first start only)",
            ),
        ]
    else:
        rows.append(("REST API", "off (--no-api)"))
    if config.admin_port is not None:
        from node.rpc.admin import TOKEN_FILE

        admin = f"http://{_url_host(config.admin_host)}:{config.admin_port}"
        rows.append(("Admin JSON-RPC", f"{admin} (token: {config.datadir / TOKEN_FILE})"))
    if node.p2p is not None:
        rows.append(("p2p", f"{config.host}:{node.p2p.listen_port}"))
    rows += [("Chain id", str(node.chain.chain_id)), ("Datadir", str(config.datadir))]
    return [f"  {name:<14} {value}" for name, value in rows]


def _dev_banner(node: Node) -> str:
    """What `tally dev` prints once it listens: endpoints, then the accounts and their keys."""
    from node.chain.genesis import DEV_BALANCE_WEI, DEV_MNEMONIC, dev_accounts
    from node.domain.contracts import DEV_ROLES

    accounts = dev_accounts()
    rules = (
        "on: only accounts with a role may transact"
        if node.config.dev_permissioned
        else "off: any key may transact (see --permissioned)"
    )
    lines = ["Tally dev chain is up", "", *_endpoints(node), f"  {'Permissioning':<14} {rules}"]
    lines += [
        "",
        f"Accounts ({DEV_BALANCE_WEI // 10**18:,} ETH each at genesis)",
        *(
            f"  ({index}) {account.address}  {role.name.lower()}, KYC tier {tier}"
            for index, (account, (role, tier)) in enumerate(zip(accounts, DEV_ROLES, strict=True))
        ),
        "  Accounts 0-2 form the 2-of-3 admin group; account 0 collects the fees.",
        "",
        "Private keys, from the mnemonic",
        f"  {DEV_MNEMONIC}",
        *(f"  ({index}) 0x{bytes(account.key).hex()}" for index, account in enumerate(accounts)),
        "",
        "Ctrl-C stops the chain; `tally dev` again carries on from its last block.",
    ]
    return "\n".join(lines)


def _node_banner(node: Node) -> str:
    """What `tally run` prints once it listens."""
    role = "validator" if node.is_validator else "member"
    return "\n".join([f"Tally node is up: {role} 0x{node.address.hex()}", *_endpoints(node)])


def listener_settings(
    *,
    max_log_range: int,
    rpc_api: str,
    vhosts: str,
    cors_domains: str,
    explorer_connect: str,
    admin_host: str,
    admin_port: int,
    rpc_evm_timeout: float,
    rpc_gas_cap: int,
    rpc_filter_timeout: float,
    ws_max_connections: int,
    ws_max_per_address: int,
    txpool_journal: bool,
    txpool_workers: int | None,
    db_cache_mib: int | None,
    db_open_files: int | None,
    api: bool,
    api_rate_limit: str,
    api_address_rate_limit: str,
    api_auth_failure_limit: str,
    api_trusted_proxies: str,
    api_siwe_domain: str | None,
    api_max_challenges: int,
    api_webhook_hosts: str,
    api_session_ttl: int,
    api_challenge_ttl: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_key_password_file: Path | None,
    tls_client_ca: Path | None,
) -> dict[str, Any]:
    """The `NodeConfig` fields of the options `dev` and `run` share; the node checks them
    (`ListenerConfigError`) before its datadir is touched."""
    from node.rpc.browser import split_list

    return {
        "max_log_range": max_log_range,
        "rpc_api": split_list(rpc_api),
        "vhosts": split_list(vhosts),
        "cors_domains": split_list(cors_domains),
        "explorer_connect": split_list(explorer_connect),
        "admin_host": admin_host,
        "admin_port": admin_port or None,
        "rpc_evm_timeout": rpc_evm_timeout,
        "rpc_gas_cap": rpc_gas_cap,
        "rpc_filter_timeout": rpc_filter_timeout,
        "ws_max_connections": ws_max_connections,
        "ws_max_per_address": ws_max_per_address,
        "txpool_journal": txpool_journal,
        "txpool_workers": txpool_workers,
        "db_cache_mib": db_cache_mib,
        "db_open_files": db_open_files,
        "api": api,
        "api_rate_limit": api_rate_limit,
        "api_address_rate_limit": api_address_rate_limit,
        "api_auth_failure_limit": api_auth_failure_limit,
        "api_trusted_proxies": split_list(api_trusted_proxies),
        "api_siwe_domain": api_siwe_domain,
        "api_max_challenges": api_max_challenges,
        "api_webhook_hosts": split_list(api_webhook_hosts),
        "api_session_ttl": api_session_ttl,
        "api_challenge_ttl": api_challenge_ttl,
        "tls": _tls(tls_cert, tls_key, tls_key_password_file, tls_client_ca),
    }


def _tls(
    cert: Path | None, key: Path | None, password_file: Path | None, client_ca: Path | None
) -> TlsSettings | None:
    """`TlsSettings` from the --tls-* options, None without them. The files are read when the
    node starts (`node.tls`); here only their combination is checked."""
    if cert is None:
        given = [
            option
            for option, value in (
                ("--tls-key", key),
                ("--tls-key-password-file", password_file),
                ("--tls-client-ca", client_ca),
            )
            if value is not None
        ]
        if given:
            fail(EXIT_USAGE, f"{given[0]} needs --tls-cert")
        return None
    if key is None:
        fail(EXIT_USAGE, "--tls-cert needs --tls-key (the certificate's private key)")
    from node.tls import TlsSettings

    return TlsSettings(cert, key, password_file, client_ca)


@app.command(epilog=SERVE_EXIT_CODES)
def dev(
    datadir: Path = typer.Option(Path(".tally/dev"), help="Where the chain's LevelDB lives."),
    rpc_port: int = typer.Option(8545, help="JSON-RPC over HTTP, REST API, explorer."),
    ws_port: int = typer.Option(8546, help="JSON-RPC over WebSocket."),
    block_period: int = typer.Option(1, min=1, help="Seconds between blocks (when txs wait)."),
    host: Host = "127.0.0.1",
    max_log_range: MaxLogRange = 10_000,
    permissioned: bool = typer.Option(
        False, help="Enforce AccountRules and NodeRules (only the dev accounts may transact)."
    ),
    rpc_api: RpcApi = "eth,net,web3,qbft,tally,debug,trace",
    vhosts: Vhosts = "localhost",
    cors_domains: CorsDomains = "",
    explorer_connect: ExplorerConnect = "",
    admin_host: AdminHost = "127.0.0.1",
    admin_port: AdminPort = 8551,
    rpc_evm_timeout: RpcEvmTimeout = 5.0,
    rpc_gas_cap: RpcGasCap = 50_000_000,
    rpc_filter_timeout: RpcFilterTimeout = 300.0,
    ws_max_connections: WsMaxConnections = 1000,
    ws_max_per_address: WsMaxPerAddress = 100,
    txpool_journal: TxpoolJournal = True,
    txpool_workers: TxpoolWorkers = None,
    db_cache_mib: DbCacheMib = None,
    db_open_files: DbOpenFiles = None,
    api: ApiSwitch = True,
    api_rate_limit: ApiRateLimit = "50/second;1000/minute",
    api_address_rate_limit: ApiAddressRateLimit = "100/second;3000/minute",
    api_auth_failure_limit: ApiAuthFailureLimit = "10/minute",
    api_trusted_proxies: ApiTrustedProxies = "",
    api_siwe_domain: ApiSiweDomain = None,
    api_max_challenges: ApiMaxChallenges = 10_000,
    api_webhook_hosts: ApiWebhookHosts = "",
    api_session_ttl: ApiSessionTtl = 900,
    api_challenge_ttl: ApiChallengeTtl = 300,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    tls_key_password_file: TlsKeyPasswordFile = None,
    tls_client_ca: TlsClientCa = None,
    node_key_store: NodeKeyStore = KeyStoreKind.plaintext,
    pkcs11_module: Pkcs11Module = "/usr/lib/softhsm/libsofthsm2.so",
    pkcs11_token: Pkcs11Token = None,
    node_key_label: NodeKeyLabel = "node",
    pkcs11_pin_file: Pkcs11PinFile = None,
    node_key_file: NodeKeyFile = None,
    password_file: PasswordFile = None,
    insecure_plaintext_key: InsecurePlaintextKey = False,
    log_level: LogLevel = "info",
) -> None:
    """A one-validator dev chain with the ten well-known dev accounts.

    The accounts are funded and hold the bank's roles; the endpoints, accounts and keys are
    printed once the node listens."""
    from node.service import NodeConfig

    _logging(log_level)
    _serve(
        NodeConfig(
            datadir=datadir,
            dev_block_period=block_period,
            dev_permissioned=permissioned,
            host=host,
            rpc_port=rpc_port,
            ws_port=ws_port,
            **listener_settings(
                max_log_range=max_log_range,
                rpc_api=rpc_api,
                vhosts=vhosts,
                cors_domains=cors_domains,
                explorer_connect=explorer_connect,
                admin_host=admin_host,
                admin_port=admin_port,
                rpc_evm_timeout=rpc_evm_timeout,
                rpc_gas_cap=rpc_gas_cap,
                rpc_filter_timeout=rpc_filter_timeout,
                ws_max_connections=ws_max_connections,
                ws_max_per_address=ws_max_per_address,
                txpool_journal=txpool_journal,
                txpool_workers=txpool_workers,
                db_cache_mib=db_cache_mib,
                db_open_files=db_open_files,
                api=api,
                api_rate_limit=api_rate_limit,
                api_address_rate_limit=api_address_rate_limit,
                api_auth_failure_limit=api_auth_failure_limit,
                api_trusted_proxies=api_trusted_proxies,
                api_siwe_domain=api_siwe_domain,
                api_max_challenges=api_max_challenges,
                api_webhook_hosts=api_webhook_hosts,
                api_session_ttl=api_session_ttl,
                api_challenge_ttl=api_challenge_ttl,
                tls_cert=tls_cert,
                tls_key=tls_key,
                tls_key_password_file=tls_key_password_file,
                tls_client_ca=tls_client_ca,
            ),
            node_key=node_key_source(
                node_key_store,
                pkcs11_module,
                pkcs11_token,
                node_key_label,
                pkcs11_pin_file,
                node_key_file,
                password_file,
                insecure_plaintext_key,
            ),
        ),
        _dev_banner,
    )


@app.command(epilog=SERVE_EXIT_CODES)
def run(
    genesis: Path = typer.Option(..., exists=True, dir_okay=False, help="The genesis JSON."),
    datadir: Path = typer.Option(..., help="Where this node's key and LevelDB live."),
    network: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="network.json: static peers, allowed nodes."
    ),
    rpc_port: int = typer.Option(8545, help="JSON-RPC over HTTP, REST API, explorer."),
    ws_port: int = typer.Option(8546, help="JSON-RPC over WebSocket."),
    p2p_port: int = typer.Option(30303, help="Node-to-node links (with --network)."),
    host: Host = "127.0.0.1",
    max_log_range: MaxLogRange = 10_000,
    rpc_api: RpcApi = "eth,net,web3,qbft,tally,debug,trace",
    vhosts: Vhosts = "localhost",
    cors_domains: CorsDomains = "",
    explorer_connect: ExplorerConnect = "",
    admin_host: AdminHost = "127.0.0.1",
    admin_port: AdminPort = 8551,
    rpc_evm_timeout: RpcEvmTimeout = 5.0,
    rpc_gas_cap: RpcGasCap = 50_000_000,
    rpc_filter_timeout: RpcFilterTimeout = 300.0,
    ws_max_connections: WsMaxConnections = 1000,
    ws_max_per_address: WsMaxPerAddress = 100,
    txpool_journal: TxpoolJournal = True,
    txpool_workers: TxpoolWorkers = None,
    db_cache_mib: DbCacheMib = None,
    db_open_files: DbOpenFiles = None,
    api: ApiSwitch = True,
    api_rate_limit: ApiRateLimit = "50/second;1000/minute",
    api_address_rate_limit: ApiAddressRateLimit = "100/second;3000/minute",
    api_auth_failure_limit: ApiAuthFailureLimit = "10/minute",
    api_trusted_proxies: ApiTrustedProxies = "",
    api_siwe_domain: ApiSiweDomain = None,
    api_max_challenges: ApiMaxChallenges = 10_000,
    api_webhook_hosts: ApiWebhookHosts = "",
    api_session_ttl: ApiSessionTtl = 900,
    api_challenge_ttl: ApiChallengeTtl = 300,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    tls_key_password_file: TlsKeyPasswordFile = None,
    tls_client_ca: TlsClientCa = None,
    allow_dev_keys: bool = typer.Option(
        False, help="Run a non-dev genesis that funds or empowers a public dev key."
    ),
    allow_unpermissioned: bool = typer.Option(
        False, help="Run a non-dev genesis that enforces no permissioning."
    ),
    node_key_store: NodeKeyStore = KeyStoreKind.plaintext,
    pkcs11_module: Pkcs11Module = "/usr/lib/softhsm/libsofthsm2.so",
    pkcs11_token: Pkcs11Token = None,
    node_key_label: NodeKeyLabel = "node",
    pkcs11_pin_file: Pkcs11PinFile = None,
    node_key_file: NodeKeyFile = None,
    password_file: PasswordFile = None,
    insecure_plaintext_key: InsecurePlaintextKey = False,
    log_level: LogLevel = "info",
) -> None:
    """Run a node of the network described by GENESIS.

    On any chain but the dev chain (1337) the genesis must enforce permissioning and give
    the well-known dev keys nothing, unless the --allow-* options say otherwise."""
    from node.chain.genesis import GenesisError
    from node.chain.genesis_file import GenesisFile
    from node.genesis.kept_report import KeptReport
    from node.p2p.network import NetworkConfig, NetworkConfigError
    from node.service import NodeConfig

    _logging(log_level)
    try:  # read before the datadir is touched, so an unusable file changes nothing
        source = GenesisFile.read(genesis)
        if network is not None:
            NetworkConfig.load(network)
        kept = KeptReport(datadir, source)
        refusal = _real_network_refusal(kept, allow_dev_keys, allow_unpermissioned)
    except (OSError, GenesisError, NetworkConfigError) as exc:
        fail(EXIT_REQUEST, str(exc))
    if refusal is not None:
        fail(EXIT_REQUEST, refusal)
    _serve(
        NodeConfig(
            datadir=datadir,
            genesis=source,
            network=network,
            host=host,
            rpc_port=rpc_port,
            ws_port=ws_port,
            p2p_port=p2p_port,
            **listener_settings(
                max_log_range=max_log_range,
                rpc_api=rpc_api,
                vhosts=vhosts,
                cors_domains=cors_domains,
                explorer_connect=explorer_connect,
                admin_host=admin_host,
                admin_port=admin_port,
                rpc_evm_timeout=rpc_evm_timeout,
                rpc_gas_cap=rpc_gas_cap,
                rpc_filter_timeout=rpc_filter_timeout,
                ws_max_connections=ws_max_connections,
                ws_max_per_address=ws_max_per_address,
                txpool_journal=txpool_journal,
                txpool_workers=txpool_workers,
                db_cache_mib=db_cache_mib,
                db_open_files=db_open_files,
                api=api,
                api_rate_limit=api_rate_limit,
                api_address_rate_limit=api_address_rate_limit,
                api_auth_failure_limit=api_auth_failure_limit,
                api_trusted_proxies=api_trusted_proxies,
                api_siwe_domain=api_siwe_domain,
                api_max_challenges=api_max_challenges,
                api_webhook_hosts=api_webhook_hosts,
                api_session_ttl=api_session_ttl,
                api_challenge_ttl=api_challenge_ttl,
                tls_cert=tls_cert,
                tls_key=tls_key,
                tls_key_password_file=tls_key_password_file,
                tls_client_ca=tls_client_ca,
            ),
            node_key=node_key_source(
                node_key_store,
                pkcs11_module,
                pkcs11_token,
                node_key_label,
                pkcs11_pin_file,
                node_key_file,
                password_file,
                insecure_plaintext_key,
            ),
        ),
        _node_banner,
        kept.keep,
    )


def _real_network_refusal(
    kept: KeptReport, allow_dev_keys: bool, allow_unpermissioned: bool
) -> str | None:
    """Why `run` declines GENESIS (a non-dev chain open to all, or granting dev keys), or None.

    Decided on every start with its flags; what block 0 grants the dev keys comes from what
    the datadir keeps for this genesis file, and is inspected only when there is none (block 0
    built in memory, which the node then writes rather than building it again)."""
    from node.genesis.devkeys import grants_refusal, unpermissioned_refusal

    if kept.source.genesis.chain_id == DEV_CHAIN:
        return None  # the dev chain is meant for the dev keys: nothing to inspect
    refusal = None if allow_unpermissioned else unpermissioned_refusal(kept.source.genesis)
    if refusal is None and not allow_dev_keys:
        refusal = grants_refusal(kept.dev_key_grants())
    return refusal


@app.command(
    epilog="\b\nExit codes: 0 written; 2 bad usage; 4 the node key's store refused;\n"
    "7 invalid genesis settings, or an --out that cannot be written (nothing is\n"
    "written then)."
)
def init(
    out: Path = typer.Option(Path("genesis.json"), help="Where to write the genesis JSON."),
    datadir: Path = typer.Option(Path(".tally/node"), help="The validator's node key is here."),
    block_period: int = typer.Option(1, min=1, help="Seconds between blocks."),
    gas_limit: int = typer.Option(60_000_000, help="Block gas limit."),
    node_key_store: NodeKeyStore = KeyStoreKind.plaintext,
    pkcs11_module: Pkcs11Module = "/usr/lib/softhsm/libsofthsm2.so",
    pkcs11_token: Pkcs11Token = None,
    node_key_label: NodeKeyLabel = "node",
    pkcs11_pin_file: Pkcs11PinFile = None,
    node_key_file: NodeKeyFile = None,
    password_file: PasswordFile = None,
) -> None:
    """Write a dev-chain genesis (1337) whose validator is this datadir's node key.

    Like `tally dev`'s: the public dev keys are funded and hold the bank's roles. A real
    network's genesis comes from `tally genesis build`."""
    from node.chain.genesis import Genesis, GenesisError, dev_genesis
    from node.keys import NodeKeyUsage, load_node_signer
    from tally_common.keystore.errors import KeyStoreError

    # Checked with a stand-in validator before the node key or the output exists, so bad
    # input changes nothing.
    draft = Genesis(
        chain_id=DEV_CHAIN,
        validators=(bytes(20),),
        alloc={},
        gas_limit=gas_limit,
        block_period_seconds=block_period,
    )
    try:
        draft.check()
    except GenesisError as exc:
        fail(EXIT_REQUEST, str(exc))
    if not out.parent.is_dir():
        fail(EXIT_REQUEST, f"cannot write {out}: {out.parent} is not a directory")
    source = node_key_source(
        node_key_store, pkcs11_module, pkcs11_token, node_key_label, pkcs11_pin_file,
        node_key_file, password_file, insecure_plaintext_key=True,
    )  # fmt: skip
    try:
        key = load_node_signer(source, datadir)
    except NodeKeyUsage as exc:
        fail(EXIT_USAGE, str(exc))
    except KeyStoreError as exc:
        fail(EXIT_KEYSTORE, f"node key: {exc}")
    except OSError as exc:
        fail(EXIT_REQUEST, f"cannot write the node key: {exc}")
    try:
        address = key.public_key.to_canonical_address()
        base = dev_genesis(address, block_period=block_period)
        genesis = replace(base, gas_limit=gas_limit)
        out.write_text(genesis.dated_now().dumps())
    except OSError as exc:
        fail(EXIT_REQUEST, f"cannot write the genesis or the node key: {exc}")
    typer.echo(f"wrote {out} (dev chain 1337, validator 0x{address.hex()})")


LOCALNET_EXIT_CODES = """\b
Exit codes: 0 done; 2 bad usage; 5 a node did not come up (see its node.log);
7 no network in --dir, or --dir cannot be used."""

localnet_app = typer.Typer(
    help="A local network of node processes on loopback ports.",
    epilog=LOCALNET_EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)
app.add_typer(localnet_app, name="localnet")

_BANK_KEYS = (
    "bank keys (admin-1..3 in a 2-of-3 group, issuer, compliance, auditor, fee-collector): "
    "{directory}/bank-keys/*.key; description: {directory}/network.toml"
)

LocalnetDir = Annotated[
    Path, typer.Option("--dir", file_okay=False, help="Keys, genesis, logs, datadirs.")
]


def _existing_network(directory: Path) -> None:
    from node import localnet

    if not (directory / localnet.STATE_FILE).is_file():
        fail(
            EXIT_REQUEST,
            f"no local network in {directory} (`tally localnet up --dir {directory}` makes one)",
        )


@localnet_app.command("up", epilog=LOCALNET_EXIT_CODES)
def localnet_up(
    directory: LocalnetDir = Path(".tally/localnet"),
    validators: int = typer.Option(4, min=1, help="How many nodes validate (new network)."),
    members: int = typer.Option(0, min=0, help="How many nodes only follow (new network)."),
    block_period: int = typer.Option(1, min=1, help="Seconds between blocks (new network)."),
    permissioned: bool = typer.Option(
        False, help="Enforce AccountRules and NodeRules; generated bank keys (new network)."
    ),
    tls: bool = typer.Option(False, help="TLS on client ports, with a generated CA (new network)."),
) -> None:
    """Create the network (first time) and start every node not running."""
    from node import localnet

    try:
        launched = localnet.launch(
            directory, validators, members, block_period, permissioned, tls=tls
        )
    except OSError as exc:
        fail(EXIT_REQUEST, f"cannot use {directory}: {exc}")
    for line in launched.lines():
        typer.echo(line)
    if launched.created and permissioned:
        typer.echo(_BANK_KEYS.format(directory=directory))
    silent = [
        node.name
        for node in launched.nodes
        if node.name in launched.started and localnet.rpc(node, "eth_chainId") is None
    ]
    if silent:
        fail(EXIT_NODE, f"not answering: {', '.join(silent)} (see their node.log in {directory})")


@localnet_app.command("init", epilog=LOCALNET_EXIT_CODES)
def localnet_init(
    directory: LocalnetDir = Path(".tally/localnet"),
    validators: int = typer.Option(4, min=1, help="How many nodes validate."),
    members: int = typer.Option(0, min=0, help="How many nodes only follow."),
    block_period: int = typer.Option(1, min=1, help="Seconds between blocks."),
    containers: bool = typer.Option(False, help="Nodes reached by name on standard ports."),
    permissioned: bool = typer.Option(
        False, help="Enforce AccountRules and NodeRules; generated bank keys."
    ),
) -> None:
    """Write keys, genesis and network.json only (what docker-compose's init step runs)."""
    from node import localnet

    if (directory / localnet.GENESIS_FILE).exists():
        typer.echo(f"{directory} already holds a network; keeping it")
        return
    try:
        nodes = localnet.create(
            directory,
            validators,
            members,
            block_period,
            containers=containers,
            permissioned=permissioned,
        )
    except OSError as exc:
        fail(EXIT_REQUEST, f"cannot use {directory}: {exc}")
    for node in nodes:
        typer.echo(f"{node.name}  {'validator' if node.validator else 'member'}  {node.address}")
    if permissioned:
        typer.echo(_BANK_KEYS.format(directory=directory))


@localnet_app.command("status", epilog=LOCALNET_EXIT_CODES)
def localnet_status(directory: LocalnetDir = Path(".tally/localnet")) -> None:
    """Liveness, height and peers of every node."""
    from node import localnet

    _existing_network(directory)
    for row in localnet.status(directory):
        typer.echo(row.line())


@localnet_app.command("down", epilog=LOCALNET_EXIT_CODES)
def localnet_down(directory: LocalnetDir = Path(".tally/localnet")) -> None:
    """Stop every node of the network (data is kept)."""
    from node import localnet

    _existing_network(directory)
    localnet.down(directory)
    typer.echo("stopped")


if __name__ == "__main__":
    app()
