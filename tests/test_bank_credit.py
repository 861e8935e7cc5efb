"""Credit evaluation end to end: a `tally dev` node, the gateway on PostgreSQL reading the
node's REST history with an auditor key, and histories made by real signed transactions.

The scorecard runs with 3-second periods (4 of them) so that a history spanning several
periods takes seconds: customer A (7) is paid by an employer (4) every round and spends a
little each time; B (8) was topped up, spends once a little and once a lot, has a payment to a
flagged account held and rejected, and is paid once at the end; C (6) is paid once, at the
end. Their factors' points and reasons differ the way the scorecard says they should. Without
consent nothing is evaluated (403, no evaluation logged), and only a credit officer evaluates.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy
from eth_typing import ChecksumAddress

from bank.credit import MODEL_VERSION, Held, History, Model, Transfer, evaluate
from client.tokens import held_payment
from tests.conftest import REPO, NodeProcess
from tests.credit_support import CreditStack, credit_stack

PERIOD, PERIODS = 3, 4
WINDOW = PERIOD * PERIODS
ISSUER, COMPLIANCE, MERCHANT, EMPLOYER, C, A, B, FLAGGED = 1, 2, 3, 4, 6, 7, 8, 9


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, shared_node: NodeProcess, dev_accounts: list
) -> Iterator[CreditStack]:
    args = ("--credit-period", str(PERIOD), "--credit-periods", str(PERIODS))
    tmp = tmp_path_factory.mktemp("credit")
    with credit_stack(tmp, shared_node, dev_accounts, args) as found:
        yield found


def head_time(stack: CreditStack) -> int:
    block = stack.wallet(A).rpc("eth_getBlockByNumber", "latest", False)
    return int(block["timestamp"], 16)


@dataclass
class Histories:
    address: dict[int, ChecksumAddress]
    a_done: int  # the head's time when A's rounds ended
    b_done: int  # the time of the block holding the last of B's and C's transactions


@pytest.fixture(scope="module")
def histories(stack: CreditStack) -> Histories:
    """Make the three histories. A's rounds run for a window and a period; B's and C's
    transactions then go out together (consecutive nonces, no waiting between them), so their
    histories sit in the last seconds whatever the machine's load."""
    token = {i: stack.token(i) for i in (ISSUER, COMPLIANCE, EMPLOYER, A, B)}
    address = {i: stack.wallet(i).address for i in (MERCHANT, C, A, B, FLAGGED)}
    issuer, employer = token[ISSUER], token[EMPLOYER]
    minted = [
        issuer.mint(to, amount, os.urandom(32), wait=False)
        for to, amount in ((employer.wallet.address, 10_000_00), (address[A], 50_00),
                           (address[B], 500_00))
    ]  # fmt: skip
    for mint in minted:
        issuer.wallet.wait_for_finality(mint.tx_hash)
    token[COMPLIANCE].flag(address[FLAGGED], b"\x01" * 32)
    start = head_time(stack)
    rounds = 0
    while head_time(stack) < start + WINDOW + PERIOD:
        paid = employer.transfer(address[A], 20_00, wait=False)
        token[A].transfer(address[MERCHANT], 5_00)
        employer.wallet.wait_for_finality(paid.tx_hash)
        rounds += 1
    assert rounds >= PERIODS
    a_done = head_time(stack)
    sent = [
        token[B].transfer(address[MERCHANT], 1_00, wait=False),
        token[B].transfer(address[FLAGGED], 10_00, wait=False),  # held: the payee is flagged
        token[B].transfer(address[MERCHANT], 300_00, wait=False),
        employer.transfer(address[B], 10_00, wait=False),
        employer.transfer(address[C], 10_00, wait=False),
    ]
    receipts = [token[B].wallet.wait_for_finality(s.tx_hash) for s in sent]
    held = held_payment(receipts[1].raw)
    assert held is not None
    token[COMPLIANCE].reject_hold(held[0], b"\x02" * 32)
    last = max(r.block_number for r in receipts)
    b_done = int(token[B].wallet.rpc("eth_getBlockByNumber", hex(last), False)["timestamp"], 16)
    return Histories(address, a_done, b_done)


def factors(result: dict[str, Any]) -> dict[str, tuple[int, str | None]]:
    return {f["factor"]: (f["points"], f["reason"]) for f in result["factors"]}


def test_the_scorecard_on_real_histories(stack: CreditStack, histories: Histories) -> None:
    officer = stack.key("credit_officer")
    results = {}
    for index in (A, B, C):
        account = histories.address[index]
        own = stack.key("customer", account)
        granted = stack.request("PUT", f"/credit/consents/{account}", own, {"source": "app"})
        assert granted.status_code == 201, granted.text
        # As each history ended (an officer may look back: the same result later on).
        as_of = histories.a_done if index == A else histories.b_done
        response = stack.request("GET", f"/credit/evaluations/{account}?as_of={as_of}", officer)
        assert response.status_code == 200, response.text
        results[index] = response.json()
    a, b, c = (factors(results[i]) for i in (A, B, C))
    for result in results.values():
        assert result["model_version"] == MODEL_VERSION
        assert result["parameters"] == {"period_seconds": PERIOD, "periods": PERIODS}
        assert result["score"] == sum(f["points"] for f in result["factors"])

    # A: paid every period, balance rising, no holds, old enough: no adverse reason but
    # (at most) its spending's variation across uneven rounds.
    assert a["income_regularity"] == (120, None)
    assert a["balance_trend"] == (100, None)
    assert a["held_payments"] == (100, None)
    assert a["account_age"] == (100, None)
    assert {r["code"] for r in results[A]["reasons"]} <= {"SPENDING_VOLATILE"}

    # B: one income, balance down, spending lumpy, a payment rejected after review.
    assert b["income_regularity"] == (30, "INCOME_IRREGULAR")
    assert b["balance_trend"] == (20, "BALANCE_DECLINING")
    assert b["spending_volatility"] == (20, "SPENDING_VOLATILE")
    assert b["held_payments"] == (0, "PAYMENT_REJECTED")
    assert b["account_age"] == (100, None)
    assert results[B]["reasons"][0]["code"] == "PAYMENT_REJECTED"  # the costliest first
    assert a["spending_volatility"][0] > b["spending_volatility"][0]

    # C: new, paid once, nothing spent.
    assert c["account_age"] == (20, "ACCOUNT_NEW")
    assert c["spending_volatility"] == (50, "SPENDING_THIN")
    assert c["income_regularity"] == (30, "INCOME_IRREGULAR")
    assert results[A]["score"] > results[C]["score"] > results[B]["score"]


def evaluations_of(stack: CreditStack, account: str) -> int:
    engine = sqlalchemy.create_engine(stack.db)
    try:
        with engine.connect() as connection:
            query = sqlalchemy.text("SELECT count(*) FROM credit_evaluations WHERE account = :a")
            return int(connection.execute(query, {"a": account.lower()}).scalar_one())
    finally:
        engine.dispose()


def test_no_consent_no_evaluation(stack: CreditStack, histories: Histories) -> None:
    account = histories.address[FLAGGED]
    officer = stack.key("credit_officer")
    refused = stack.request("GET", f"/credit/evaluations/{account}", officer)
    assert refused.status_code == 403 and "consent" in refused.json()["detail"]
    assert evaluations_of(stack, account) == 0

    # Only the customer (for their own account) or an officer records consent; only an
    # officer evaluates.
    own = stack.key("customer", account)
    other = stack.key("customer", histories.address[C])
    body = {"source": "branch form 17"}
    assert stack.request("PUT", f"/credit/consents/{account}", other, body).status_code == 403
    empty = {"source": ""}
    assert stack.request("PUT", f"/credit/consents/{account}", own, empty).status_code == 422
    assert stack.request("PUT", f"/credit/consents/{account}", officer, body).status_code == 201
    assert stack.request("PUT", f"/credit/consents/{account}", own, body).status_code == 200
    for key in (own, stack.key("operations")):
        assert stack.request("GET", f"/credit/evaluations/{account}", key).status_code == 403
    assert stack.request("GET", f"/credit/evaluations/{account}", officer).status_code == 200
    assert evaluations_of(stack, account) == 1
    future = stack.request("GET", f"/credit/evaluations/{account}?as_of={2**39}", officer)
    assert future.status_code == 400 and "after the head" in future.json()["detail"]
    assert evaluations_of(stack, account) == 1

    # Revoked: refused again, and the record says when.
    assert stack.request("DELETE", f"/credit/consents/{account}", own).status_code == 204
    assert stack.request("DELETE", f"/credit/consents/{account}", own).status_code == 404
    record = stack.request("GET", f"/credit/consents/{account}", officer).json()
    assert record["active"] is False and record["revoked_at"] is not None
    assert stack.request("GET", f"/credit/evaluations/{account}", officer).status_code == 403
    assert evaluations_of(stack, account) == 1
    bad = stack.request("GET", "/credit/evaluations/0x1234", officer)
    assert bad.status_code == 422


def cli(stack: CreditStack, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TALLY_BANK_API_KEY": key,
           "TALLY_BANK_GATEWAY_URL": stack.gateway.url}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "tally_cli", "bank", "credit", *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip


def test_the_credit_cli(stack: CreditStack, histories: Histories) -> None:
    officer = stack.key("credit_officer")
    account = histories.address[C]
    granted = cli(stack, stack.key("customer", account), "consent", "--account", account,
                  "--source", "cli")  # fmt: skip
    assert granted.returncode == 0 and '"active": true' in granted.stdout, granted.stderr
    shown = cli(stack, officer, "evaluate", "--account", account, "--as-of", str(histories.b_done))
    assert shown.returncode == 0, shown.stderr
    assert "model " + MODEL_VERSION in shown.stdout and "ACCOUNT_NEW" in shown.stdout
    unknown = "0x" + "ab" * 20
    refused = cli(stack, officer, "evaluate", "--account", unknown)
    assert refused.returncode == 7 and refused.stderr.count("\n") == 1
    assert "consent" in refused.stderr and "Traceback" not in refused.stderr
    assert cli(stack, officer, "evaluate", "--account", "nope").returncode == 2


def history(transfers: list[Transfer], holds: tuple[Held, ...] = (), balance: int = 0) -> History:
    return History("0xme", 1_000, balance, transfers, list(holds))


def test_the_scorecard_bins() -> None:
    """The bins on histories written out (period 100 s, 4 periods: window 600..1000)."""
    model = Model(100, 4)
    pay = [Transfer(t, "0xboss", "0xme", 10_00) for t in (650, 750, 850, 950)]
    spend = [Transfer(t, "0xme", "0xshop", 5_00) for t in (660, 760, 860, 960)]
    topup = Transfer(100, "0x" + "0" * 40, "0xme", 100_00)
    good = factors(evaluate(model, history([topup, *pay, *spend], balance=120_00)))
    assert good == {
        "income_regularity": (120, None), "balance_trend": (100, None),
        "spending_volatility": (100, None), "held_payments": (100, None),
        "account_age": (100, None),
    }  # fmt: skip
    # The same income in two periods, a rejected hold, a young account (first seen at 700).
    rejected = (Held(900, 10_00, "rejected"),)
    worse = factors(evaluate(model, history([*pay[2:], *spend[1:]], rejected, 1_000_00)))
    assert worse["income_regularity"] == (70, "INCOME_IRREGULAR")
    assert worse["held_payments"] == (0, "PAYMENT_REJECTED")
    assert worse["account_age"] == (60, "ACCOUNT_YOUNG")
    assert worse["balance_trend"] == (60, "BALANCE_FLAT")
    released = factors(evaluate(model, history(pay, (Held(900, 1, "released"),))))
    assert released["held_payments"] == (60, "PAYMENT_HELD")
    empty = evaluate(model, history([]))
    assert empty["score"] == 0 + 60 + 50 + 100 + 0
    assert [r["code"] for r in empty["reasons"]] == [
        "NO_INCOME", "NO_HISTORY", "SPENDING_THIN", "BALANCE_FLAT",
    ]  # fmt: skip
