"""The risk rules over the seeded synthetic workload (`bank.risk.workload`): every rule catches
the episodes of its own kind and raises nothing on the normal population; the same seed gives
the same workload; the rules file is validated (one-line errors, unknown keys refused), and the
CLI says so with exit code 2. The engine is the one the monitor and screening run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bank.risk.config import DEFAULT_PATH, ConfigError, load
from bank.risk.rules import RULES, Payment, Scorer
from bank.risk.watchlist import entry
from bank.risk.workload import Generator, evaluate
from tests.conftest import REPO


@pytest.fixture(scope="module")
def figures() -> dict:
    workload = Generator(seed=7, customers=60, merchants=12, days=220, episodes=6).build()
    return evaluate(load(), workload)


@pytest.mark.parametrize("rule", RULES)
def test_rule_catches_its_pattern_and_spares_the_normal_population(
    figures: dict, rule: str
) -> None:
    figure = figures[rule]
    assert figure.episodes == 6
    assert figure.caught >= 5, f"{rule} caught {figure.caught} of 6"
    assert figure.on_normal == 0, f"{rule} fired {figure.on_normal} times on normal payments"
    assert figure.alerts >= figure.caught


def test_the_workload_is_seeded() -> None:
    first = Generator(seed=3, customers=10, merchants=4, days=40, episodes=1).build()
    again = Generator(seed=3, customers=10, merchants=4, days=40, episodes=1).build()
    other = Generator(seed=4, customers=10, merchants=4, days=40, episodes=1).build()
    assert first.payments == again.payments and first.watched == again.watched
    assert first.payments != other.payments


def test_reasons_say_why_and_assess_remembers_nothing() -> None:
    config = load()
    scorer = Scorer(config)
    payer, shop = "0x" + "11" * 20, "0x" + "22" * 20
    for day in range(6):
        scorer.observe(Payment(payer, shop, 20_00, 1_000_000 + day * 86_400))
    big = Payment(payer, "0x" + "33" * 20, 5000_00, 1_000_000 + 7 * 86_400)
    first = scorer.assess(big)
    assert scorer.assess(big) == first  # screening leaves no trace
    assert first.rules == {"amount_vs_history", "new_counterparty"}
    assert first.score == 80
    detail = {r.rule: r.detail for r in first.reasons}
    assert "250.0x the payer's median" in detail["amount_vs_history"]


def test_watch_list_entries_are_salted_hashes() -> None:
    address = "0x" + "ab" * 20
    assert entry("salt-one-0000000000", address) == entry("salt-one-0000000000", address.upper())
    assert entry("salt-one-0000000000", address) != entry("salt-two-0000000000", address)
    assert address[2:] not in entry("salt-one-0000000000", address)


def test_bad_rules_files_are_refused(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text()
    cases = {
        "unknown.toml": (text.replace("[rules.velocity]", "[rules.velocity]\nmax_cnt = 3"),
                         "rules.velocity.max_cnt: Extra inputs are not permitted"),
        "negative.toml": (text.replace("max_count = 10", "max_count = -1"),
                          "rules.velocity.max_count: Input should be greater than 0"),
        "order.toml": (text.replace("deny_score = 80", "deny_score = 30"),
                       "hold_score must not exceed deny_score"),
        "broken.toml": ("version = ", "not TOML"),
    }  # fmt: skip
    for name, (body, message) in cases.items():
        path = tmp_path / name
        path.write_text(body)
        with pytest.raises(ConfigError, match=message.split(":")[-1].strip()) as raised:
            load(path)
        assert "\n" not in str(raised.value)
    result = subprocess.run(
        [sys.executable, "-m", "tally_cli", "bank", "risk", "check-config", "--config",
         str(tmp_path / "unknown.toml")],
        capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "max_cnt" in result.stderr
