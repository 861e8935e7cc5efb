"""`tally audit`: check a Tally chain from the outside, over JSON-RPC only.

    tally audit verify --rpc http://127.0.0.1:8545 [--from N --to M] [--reexecute] [--genesis F]

Exit codes: 0 every check passed, 1 at least one failed (each listed with its block and check),
5 the node could not be read, 7 bad arguments or an unreadable genesis document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from client.audit import AuditReport, RpcSource, verify_chain
from client.errors import NodeError, VerificationError
from client.rpc import DEFAULT_RPC_URL

EXIT_OK, EXIT_FAILED, EXIT_NODE, EXIT_REQUEST = 0, 1, 5, 7

audit_app = typer.Typer(
    help="Independent checks of the chain: seals, hashes, roots, re-execution.",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@audit_app.command()
def verify(
    rpc: Annotated[
        str, typer.Option(envvar="TALLY_RPC_URL", help="The node's JSON-RPC URL.")
    ] = DEFAULT_RPC_URL,
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
    """Verify blocks FROM..TO: links, hashes, commit seals, proposer, roots; with --reexecute
    also the state. Blocks before FROM are only linked, hashed and tallied for validator votes
    (and replayed with --reexecute), since the range depends on them."""
    document = _genesis(genesis)
    source = RpcSource(rpc)
    try:
        end = last if last is not None else source.head()
        with _progress() as bar:
            task = bar.add_task("verifying", total=end + 1)
            report = verify_chain(
                source,
                first=first,
                last=end,
                reexecute=reexecute,
                genesis=document,
                progress=lambda count: bar.advance(task, count),
            )
    except NodeError as exc:
        err.print(f"[red]cannot read the chain:[/] {exc}")
        raise typer.Exit(EXIT_NODE) from exc
    except (VerificationError, ValueError) as exc:
        err.print(f"[red]cannot verify:[/] {exc}")
        raise typer.Exit(EXIT_REQUEST) from exc
    finally:
        source.close()
    _show(report, reexecute)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


def _genesis(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        err.print(f"[red]cannot read {path}:[/] {exc}")
        raise typer.Exit(EXIT_REQUEST) from exc


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
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
        out.print(f"[red]FAIL[/] block {failure.block} {failure.check}: {failure.detail}")
    out.print(f"[red]{len(report.failures)} failed checks[/]")
