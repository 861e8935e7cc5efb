"""The `tally` command: the node's commands, and the wallet and the auditor from the SDK.

The only package that sees both `node` and `client`, so neither has to import the other:
`node.cli` gives `dev`, `run`, `init` and `localnet`; `tally_cli.genesis` gives `genesis`;
`tally_cli.keys` gives `tally keys` (node keys, through `node.keys`); `client.cli` gives `tally
wallet`, `client.audit_cli` gives `tally audit` and `bank.cli` gives `tally bank`. The client
and bank groups are imported only when one of them runs (or shows its help): the SDK pulls in
web3, eth-account and, for the auditor, py-evm, which `tally --help` and the node commands do
without.

Errors are one line on stderr, whatever the command: a bad command line is `error: <what>
(see 'tally ... --help')` with exit code 2, and each command maps its own failures to the
exit codes its help lists.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer import main as typer_main

# typer vendors click and exports none of its exceptions but BadParameter; the classes are
# needed to print a refused command line as one line instead of click's usage block.
from typer._click import Context, HelpFormatter
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from node import cli as node_cli
from tally_cli.genesis import genesis_app
from tally_cli.keys import keys_app

#: The client's command groups: (module, Typer app, the summary `tally --help` shows without
#: importing the module; a test holds it equal to the app's own help).
CLIENT_GROUPS: dict[str, tuple[str, str, str]] = {
    "wallet": ("client.cli", "wallet_app", "Keys, balances, payments, payment requests."),
    "audit": ("client.audit_cli", "audit_app", "Check a chain from outside, over JSON-RPC."),
    "bank": ("bank.cli", "bank_app", "The bank's gateway: card top-ups and withdrawals."),
}


class TallyGroup(TyperGroup):
    """The `tally` group: the node's commands as given, the client's groups loaded on use."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *CLIENT_GROUPS]

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        if cmd_name not in CLIENT_GROUPS:
            return super().get_command(ctx, cmd_name)
        module, attribute, _ = CLIENT_GROUPS[cmd_name]
        return typer_main.get_command(getattr(importlib.import_module(module), attribute))

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """As click lists commands, but the client groups by their summary, not imported."""
        width = max(len(name) for name in self.list_commands(ctx))
        limit = formatter.width - 6 - width
        rows = [
            (name, command.get_short_help_str(limit))
            for name, command in self.commands.items()
            if not command.hidden
        ]
        rows += [(name, summary) for name, (_, _, summary) in CLIENT_GROUPS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=TallyGroup,
    help="Tally: a permissioned EVM chain for a bank's digital wallet.",
    epilog="Each command's --help lists its options and exit codes.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings=node_cli.CONTEXT,
)
app.add_typer(node_cli.app)
app.add_typer(genesis_app, name="genesis")
app.add_typer(keys_app, name="keys")


def _error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


def main(args: Sequence[str] | None = None) -> NoReturn:
    """Run `tally` (the console script); every refusal is one line and an exit code."""
    command = typer_main.get_command(app)
    try:
        result = command.main(args=args, prog_name="tally", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _error(f"{exc.format_message()}{hint}")
        sys.exit(exc.exit_code)
    except ClickException as exc:
        _error(exc.format_message())
        sys.exit(exc.exit_code)
    except typer.Abort:
        _error("aborted")
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
