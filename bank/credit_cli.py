"""`tally bank credit`: record or revoke a customer's consent and run a credit evaluation,
through the gateway's `/credit` routes with `TALLY_BANK_API_KEY` (a credit officer's key, or
the customer's own for consent).

Exit codes as `tally bank` (0 ok, 2 bad usage, 6 gateway unreachable or refusing), plus 7: no
consent is recorded for the customer, so no evaluation was made.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Annotated, Any, NoReturn

import typer

EXIT_CODES = """\b
Exit codes: 0 ok; 1 unexpected error; 2 bad usage; 6 gateway unreachable
or refusing; 7 no consent recorded for the customer (nothing evaluated)."""
credit_app = typer.Typer(
    help="Credit evaluation: consent and the scorecard (through the gateway).",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
NO_CONSENT = 7

AccountOption = Annotated[str, typer.Option(help="The customer's wallet address.")]
GatewayOption = Annotated[
    str, typer.Option("--gateway", envvar="TALLY_BANK_GATEWAY_URL", help="Gateway URL.")
]


def fail(code: int, message: str) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


def call(method: str, gateway: str, path: str, body: Any = None) -> Any:
    """One request to the gateway; the JSON answer, or exit 2 / 6 / 7 with one line."""
    import httpx

    key = os.environ.get("TALLY_BANK_API_KEY")
    if not key:
        fail(2, "TALLY_BANK_API_KEY is not set")
    try:
        response = httpx.request(
            method,
            gateway.rstrip("/") + path,
            json=body,
            headers={"authorization": f"Bearer {key}"},
            timeout=120,
        )
    except httpx.HTTPError as exc:
        fail(6, f"gateway at {gateway}: {exc}")
    if response.status_code == 204:
        return None
    try:
        answer = response.json()
    except ValueError:
        answer = {"detail": response.text[:200]}
    if response.status_code >= 400:
        detail = answer.get("detail") if isinstance(answer, dict) else answer
        code = NO_CONSENT if response.status_code == 403 and "consent" in str(detail) else 6
        fail(code, f"gateway refused: HTTP {response.status_code} {detail}")
    return answer


def checked(account: str) -> str:
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", account):
        fail(2, f"--account {account!r} is not an address")
    return account


@credit_app.command(epilog=EXIT_CODES)
def consent(
    account: AccountOption,
    source: Annotated[str, typer.Option(help="Where consent was given (no personal data).")],
    gateway: GatewayOption = "http://127.0.0.1:8600",
) -> None:
    """Record the customer's consent to credit evaluation."""
    answer = call("PUT", gateway, f"/credit/consents/{checked(account)}", {"source": source})
    print(json.dumps(answer))


@credit_app.command(epilog=EXIT_CODES)
def revoke(account: AccountOption, gateway: GatewayOption = "http://127.0.0.1:8600") -> None:
    """Revoke the customer's consent (evaluations stop)."""
    call("DELETE", gateway, f"/credit/consents/{checked(account)}")
    print("consent revoked")


@credit_app.command(epilog=EXIT_CODES)
def evaluate(
    account: AccountOption,
    gateway: GatewayOption = "http://127.0.0.1:8600",
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result.")] = False,
    as_of: Annotated[
        int | None, typer.Option(min=0, help="As of this time (Unix seconds; default now).")
    ] = None,
) -> None:
    """Evaluate a consenting customer: the score, each factor's points, the reasons."""
    query = "" if as_of is None else f"?as_of={as_of}"
    result = call("GET", gateway, f"/credit/evaluations/{checked(account)}{query}")
    if as_json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['account']}  score {result['score']}/{result['max_score']}  "
          f"model {result['model_version']}")  # fmt: skip
    for factor in result["factors"]:
        reason = factor["reason"] or ""
        print(f"  {factor['factor']:<20} {factor['points']:>4}/{factor['max_points']:<4} {reason}")
