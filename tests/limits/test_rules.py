"""Which counters a request is charged on, calendar periods, and the limits config."""

from __future__ import annotations

import datetime as dt

import pytest

from warden.config import parse_config
from warden.errors import ConfigError
from warden.limits.rules import Policy, Who, period_bounds
from warden.limits.settings import Budget, LimitRule, Limits


def policy(*rules: LimitRule, budgets: tuple[Budget, ...] = ()) -> Policy:
    return Policy(Limits(rules=list(rules)), list(budgets))


def ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_every_matching_rule_applies_each_subject_with_its_own_counter() -> None:
    p = policy(LimitRule(scope="key", rpm=10, tpm=1000),
               LimitRule(scope="key", match="batch-*", rpm=2),
               LimitRule(scope="team", match="search", tpm=500),
               LimitRule(scope="model", match="gpt-4*", rpm=30),
               LimitRule(scope="key+model", match="*/gpt-4o", rpm=5))
    checks = p.rate_checks(Who(key="batch-1", team="search", model="gpt-4o"))
    assert [(c.counter, c.kind, c.limit, c.where) for c in checks] == [
        ("rpm|key|*|batch-1", "requests", 10, "limits.rules[0]"),
        ("tpm|key|*|batch-1", "tokens", 1000, "limits.rules[0]"),
        ("rpm|key|batch-*|batch-1", "requests", 2, "limits.rules[1]"),
        ("tpm|team|search|search", "tokens", 500, "limits.rules[2]"),
        ("rpm|model|gpt-4*|gpt-4o", "requests", 30, "limits.rules[3]"),
        ("rpm|key+model|*/gpt-4o|batch-1/gpt-4o", "requests", 5, "limits.rules[4]"),
    ]
    other = p.rate_checks(Who(key="app", team=None, model="claude"))
    assert [c.counter for c in other] == ["rpm|key|*|app", "tpm|key|*|app"]


def test_without_a_key_only_model_rules_apply() -> None:
    p = policy(LimitRule(scope="key", rpm=1), LimitRule(scope="team", rpm=1),
               LimitRule(scope="team+model", rpm=1), LimitRule(scope="model", rpm=1))
    assert [c.scope for c in p.rate_checks(Who(key=None, team=None, model="m"))] == ["model"]


def test_budgets_count_per_calendar_period_and_the_same_budget_twice_shares_a_counter() -> None:
    p = policy(budgets=(Budget(scope="team", usd=50), Budget(scope="team", usd=20),
                        Budget(scope="key", match="a*", usd=1, period="day")))
    checks = p.budget_checks(Who(key="app", team="search", model="m"), ts("2025-06-14T15:00:00"))
    assert [(c.counter, c.usd, c.ends_at) for c in checks] == [
        ("usd|team|*|month|2025-06-01|search", 20, ts("2025-07-01T00:00:00")),
        ("usd|key|a*|day|2025-06-14|app", 1, ts("2025-06-15T00:00:00")),
    ]
    assert p.budget_checks(Who(key="x", team=None, model="m"), ts("2025-06-14T00:00:00")) == []


@pytest.mark.parametrize(("period", "now", "start", "end"), [
    ("day", "2025-06-14T23:59:59", "2025-06-14", "2025-06-15"),
    ("week", "2025-06-14T12:00:00", "2025-06-09", "2025-06-16"),  # a Saturday: from Monday
    ("week", "2025-06-16T00:00:00", "2025-06-16", "2025-06-23"),
    ("month", "2025-12-31T23:00:00", "2025-12-01", "2026-01-01"),
    ("month", "2024-02-29T10:00:00", "2024-02-01", "2024-03-01"),
])
def test_periods_are_utc_calendar_periods(period: str, now: str, start: str, end: str) -> None:
    got = period_bounds(period, ts(now))  # type: ignore[arg-type]
    assert (got[0].isoformat(), got[1].isoformat()) == (f"{start}T00:00:00+00:00",
                                                        f"{end}T00:00:00+00:00")


def test_the_config_refuses_a_rule_without_a_limit_or_written_twice() -> None:
    with pytest.raises(ConfigError, match=r"limits.rules\[0\].*sets no limit"):
        parse_config({"limits": {"rules": [{"scope": "key"}]}})
    with pytest.raises(ConfigError, match=r"rules\[1\]: a rule for key '\*' appears twice"):
        parse_config({"limits": {"rules": [{"scope": "key", "rpm": 1},
                                           {"scope": "key", "tpm": 1}]}})
    with pytest.raises(ConfigError, match="scope"):
        parse_config({"budgets": [{"scope": "model", "usd": 1}]})


def test_an_empty_redis_url_means_in_process() -> None:
    config = parse_config({"limits": {"redis_url": "${WARDEN_REDIS_URL:-}"}}, env={})
    assert config.limits.redis_url is None
