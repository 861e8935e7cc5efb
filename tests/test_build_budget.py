"""The proposer's execution budget shrinks while heights near the round timeout."""

from __future__ import annotations

import pytest

from node.consensus.build_budget import BuildBudget


def test_the_budget_starts_at_its_share_and_stays_there_when_heights_are_quick() -> None:
    budget = BuildBudget(block_period=1.0, round_timeout=2.0, share=0.5)
    assert budget.seconds == 0.5
    budget.observe(0.8, 0)
    assert budget.seconds == 0.5


@pytest.mark.parametrize(("decided_in", "round_number"), [(1.7, 0), (0.9, 1)])
def test_a_slow_height_or_a_round_change_shrinks_it(decided_in: float, round_number: int) -> None:
    budget = BuildBudget(block_period=1.0, round_timeout=2.0, share=0.5)
    budget.observe(decided_in, round_number)
    assert budget.seconds < 0.5


def test_it_never_leaves_its_bounds_and_recovers() -> None:
    budget = BuildBudget(block_period=1.0, round_timeout=2.0, share=0.5)
    for _ in range(50):
        budget.observe(5.0, 2)
    assert budget.seconds == pytest.approx(0.15)
    budget.observe(1.4, 0)  # neither slow nor quick: unchanged
    assert budget.seconds == pytest.approx(0.15)
    for _ in range(50):
        budget.observe(0.5, 0)
    assert budget.seconds == 0.5
