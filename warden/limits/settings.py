"""The limits part of ``warden.yaml``: per-minute rate limits (``limits:``) and spend budgets
(``budgets:``).

A rule names a scope (what one counter counts: each key, each team, each model, or each key or
team on each model) and a glob on the scope's subject; every rule that matches a request applies,
and the request passes only when all of them have room.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from warden.visibility import Public, Url

RateScope = Literal["key", "team", "model", "key+model", "team+model"]
BudgetScope = Literal["key", "team"]
Period = Literal["day", "week", "month"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitRule(_Model):
    """Requests and tokens per minute for each subject of a scope."""

    scope: Public[RateScope] = Field(
        description="What one counter counts: key, team, model, key+model or team+model."
    )
    match: Public[str] = Field(
        "*", description="Glob on the subject: a key or team name, a model name, or "
        "'name/model' for the combined scopes."
    )
    rpm: Public[int | None] = Field(None, ge=1, description="Requests per minute.")
    tpm: Public[int | None] = Field(
        None, ge=1, description="Tokens (prompt and completion) per minute."
    )

    @model_validator(mode="after")
    def _has_a_limit(self) -> LimitRule:
        if self.rpm is None and self.tpm is None:
            raise ValueError(f"the rule for {self.scope} '{self.match}' sets no limit; "
                             "give it rpm, tpm or both")
        return self


class Limits(_Model):
    """Per-minute limits, and where their counters (and the budgets') are kept."""

    redis_url: Url[str | None] = Field(
        None, description="redis://host:6379/0 to share counters between replicas; unset or "
        "empty = in this process."
    )
    redis_timeout_s: Public[float] = Field(
        0.5, gt=0, description="Time limit of one Redis call (connect included)."
    )
    key_prefix: Public[str] = Field(
        "warden", min_length=1, description="Prefix (and Redis hash tag) of the counters' keys."
    )
    on_redis_error: Public[Literal["allow", "refuse"]] = Field(
        "allow", description="When Redis cannot be reached: allow the request (fail open) or "
        "refuse it with a 503 (fail closed)."
    )
    default_max_tokens: Public[int] = Field(
        1024, ge=0, description="Completion tokens assumed for a request without max_tokens."
    )
    rules: list[LimitRule] = Field(default_factory=list, description="Rate limit rules.")

    @field_validator("redis_url")
    @classmethod
    def _empty_is_unset(cls, url: str | None) -> str | None:
        return url or None

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, rules: list[LimitRule]) -> list[LimitRule]:
        seen: set[tuple[str, str]] = set()
        for i, r in enumerate(rules):
            if (r.scope, r.match) in seen:
                raise ValueError(f"rules[{i}]: a rule for {r.scope} '{r.match}' appears twice; "
                                 "merge them (one rule may set both rpm and tpm)")
            seen.add((r.scope, r.match))
        return rules


class Budget(_Model):
    """Spend in USD allowed to each subject of a scope over a calendar period (UTC)."""

    scope: Public[BudgetScope] = Field(description="Whose spend: key or team.")
    match: Public[str] = Field("*", description="Glob on the key or team name.")
    usd: Public[float] = Field(gt=0, description="USD allowed per period.")
    period: Public[Period] = Field(
        "month", description="day, week (from Monday) or month, in UTC."
    )
