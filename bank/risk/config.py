"""The risk rules and their thresholds, from a versioned TOML file validated by pydantic.

Every decision is stored with the `version` of the file that made it, so a changed threshold
never rewrites the meaning of past alerts. Unknown keys are refused (a misspelt threshold
would otherwise silently keep its default). Amounts are minor units (cents), times seconds.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_PATH = Path(__file__).resolve().parent / "default.toml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(Strict):
    enabled: bool = True
    score: int = Field(ge=0, le=100, description="points this rule adds when it fires")


class Velocity(Rule):
    window_seconds: int = Field(gt=0)
    max_count: int = Field(gt=0, description="payments in the window, this one included")
    max_amount: int = Field(gt=0, description="their total in the window")


class AmountVsHistory(Rule):
    min_history: int = Field(ge=1, description="past payments needed before judging")
    multiple: float = Field(gt=1, description="times the payer's median payment")
    min_amount: int = Field(ge=0)


class NewCounterparty(Rule):
    large_amount: int = Field(gt=0, description="a first payment to a payee of at least this")


class Structuring(Rule):
    limits: list[int] = Field(min_length=1, description="limits payments are kept under")
    margin: float = Field(gt=0, lt=1, description="'just under': within this fraction below")
    window_seconds: int = Field(gt=0)
    min_count: int = Field(ge=2, description="such payments in the window, this one included")


class Dormant(Rule):
    idle_seconds: int = Field(gt=0, description="no payment out for this long")
    min_amount: int = Field(ge=0)


class FanOut(Rule):
    window_seconds: int = Field(gt=0)
    min_new_payees: int = Field(ge=2, description="first-time payees in the window")


class FanIn(Rule):
    window_seconds: int = Field(gt=0)
    min_sources: int = Field(ge=2, description="distinct payers into the account in the window")
    pass_through: float = Field(gt=0, le=1, description="share of those receipts paid on")


class Watchlist(Rule):
    salt: str = Field(min_length=16, description="the hashes' salt (hex or text)")
    hashes: list[str] = Field(default_factory=list, description="hex HMAC-SHA256 of addresses")


class Rules(Strict):
    velocity: Velocity
    amount_vs_history: AmountVsHistory
    new_counterparty: NewCounterparty
    structuring: Structuring
    dormant: Dormant
    fan_out: FanOut
    fan_in: FanIn
    watchlist: Watchlist


class Decisions(Strict):
    """What a score means: the monitor opens a case at `alert_score`; screening answers hold
    at `hold_score` and deny at `deny_score`."""

    alert_score: int = Field(ge=1, le=100)
    hold_score: int = Field(ge=1, le=100)
    deny_score: int = Field(ge=1, le=100)
    history_seconds: int = Field(gt=0, description="how far back a payer's history is kept")

    @model_validator(mode="after")
    def ordered(self) -> Decisions:
        if not self.hold_score <= self.deny_score:
            raise ValueError("hold_score must not exceed deny_score")
        return self


class RiskConfig(Strict):
    version: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")
    decisions: Decisions
    rules: Rules


class ConfigError(ValueError):
    """The rules file is missing, not TOML, or not a valid configuration (one line)."""


def load(path: Path | None = None) -> RiskConfig:
    source = path or DEFAULT_PATH
    try:
        data = tomllib.loads(source.read_text())
        return RiskConfig.model_validate(data)
    except OSError as exc:
        raise ConfigError(f"{source}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{source}: {where}: {first['msg']}") from None
