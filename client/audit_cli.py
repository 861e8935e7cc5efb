"""`tally audit`: check a Tally chain from the outside, over JSON-RPC only.

    tally audit verify --rpc http://127.0.0.1:8545 [--from N --to M] [--reexecute] [--genesis F]

`--rpc`, `--rpc-timeout` and the TLS options (`--ca-bundle`, `--client-cert`, `--client-key`,
as `tally wallet` takes them) go before `verify` or after it. Only typer is imported at module
level: py-evm, which the checks need, is loaded when `verify` runs, not for `--help`.

Exit codes: 0 every check passed; 1 at least one failed (each listed with its block and
check); 2 bad usage (unknown option, a malformed number, no such --genesis file); 5 the node
could not be read (unreachable, timed out, not JSON-RPC); 7 bad request: an empty range (--from
after --to), a range past the head, an --rpc that is not an http(s) URL, or a genesis document
that cannot be read, or a CA bundle, client certificate or key that cannot be used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from client.cli import (
    DEFAULT_RPC_URL,
    TLS_OPTIONS,
    BadRequest,
    SharedOption,
    checked_url,
    client_tls,
    fail,
    group_callback,
    takes_shared_options,
)
from client.errors import NodeError, VerificationError

if TYPE_CHECKING:
    from rich.progress import Progress

    from client.audit import AuditReport
    from client.tls import ClientTls

EXIT_OK, EXIT_FAILED, EXIT_NODE, EXIT_REQUEST = 0, 1, 5, 7

AUDIT_OPTIONS = (
    SharedOption("rpc", str, DEFAULT_RPC_URL, "The node's JSON-RPC URL.", "TALLY_RPC_URL"),
    SharedOption(
        "rpc_timeout", float, 120.0, "Seconds to wait for each node answer.", "TALLY_RPC_TIMEOUT"
    ),
    *TLS_OPTIONS,
)


@dataclass
class AuditSettings:
    """The node to audit (from the group, replaced by any given after `verify`)."""

    rpc: str
    rpc_timeout: float
    ca_bundle: Path | None
    client_cert: Path | None
    client_key: Path | None

    def check(self) -> ClientTls | None:
        """The TLS settings, once every setting is checked (`BadRequest`)."""
        checked_url(self.rpc)
        if self.rpc_timeout <= 0:
            raise BadRequest(f"--rpc-timeout must be positive, not {self.rpc_timeout:g}")
        return client_tls(self.ca_bundle, self.client_cert, self.client_key)


AUDIT_EXIT_CODES = """\b
Exit codes: 0 all checks passed; 1 a check failed; 2 bad usage;
5 node unreachable or timed out; 7 bad request (empty range, range past the
head, --rpc not an http(s) URL, unreadable genesis or TLS file)."""

audit_app = typer.Typer(
    help="Check a chain from outside, over JSON-RPC.",
    epilog=AUDIT_EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
audit_app.callback()(group_callback(AUDIT_OPTIONS, AuditSettings))
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def verify(
    ctx: typer.Context,
    first: Annotated[int, typer.Option("--from", min=0, help="First block to check.")] = 0,
    last: Annotated[
        int | None, typer.Option("--to", min=0, help="Last block (default: the head).")
    ] = None,
    reexecute: Annotated[
        bool, typer.Option(help="Replay every block with py-evm from the genesis state.")
    ] = False,
    genesis: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Genesis JSON to trust, not the node's."),
    ] = None,
) -> None:
    """Verify blocks FROM..TO: links, hashes, commit seals, proposer, roots.

    With --reexecute also the state. Blocks before FROM are only linked, hashed and tallied
    for validator votes (and replayed with --reexecute), since the range depends on them."""
    from client.audit import RpcSource, verify_chain

    settings: AuditSettings = ctx.obj
    try:
        tls = settings.check()
    except BadRequest as exc:
        fail(EXIT_REQUEST, str(exc))
    if last is not None and first > last:
        fail(EXIT_REQUEST, f"--from {first} is after --to {last}")
    document = _genesis(genesis)
    source = RpcSource(settings.rpc, timeout=settings.rpc_timeout, tls=tls)
    try:
        total = (last if last is not None else source.head()) + 1
        with _progress() as bar:
            task = bar.add_task("verifying", total=total)
            report = verify_chain(
                source,
                first=first,
                last=last,
                reexecute=reexecute,
                genesis=document,
                progress=lambda count: bar.advance(task, count),
            )
    except NodeError as exc:
        fail(EXIT_NODE, f"cannot read the chain: {exc}")
    except (VerificationError, ValueError) as exc:
        fail(EXIT_REQUEST, f"cannot verify: {exc}")
    finally:
        source.close()
    _show(report, reexecute)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


audit_app.command(epilog=AUDIT_EXIT_CODES)(takes_shared_options(AUDIT_OPTIONS)(verify))


def _genesis(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        fail(EXIT_REQUEST, f"cannot read {path}: {exc}")


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # a log or a pipe gets the result, not the bar's remains
    )


def _show(report: AuditReport, reexecute: bool) -> None:
    replayed = f", {report.reexecuted} re-executed" if reexecute else ""
    out.print(
        f"blocks {report.first}..{report.last}: {report.checked} checked{replayed} "
        f"in {report.seconds:.1f}s; genesis 0x{report.genesis_hash.hex()}"
    )
    if report.ok:
        out.print("[green]all checks passed[/]")
        return
    for failure in report.failures:
        detail = escape(failure.detail)
        out.print(f"[red]FAIL[/] block {failure.block} {failure.check}: {detail}")
    out.print(f"[red]{len(report.failures)} failed checks[/]")
