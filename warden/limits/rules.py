"""The rules of one config, compiled: which counters a request is charged on.

A counter is named by what it counts, never by its limit (``rpm|key|*|alice``), so that a reload
that changes a limit keeps the count, and replicas with the same rules share their counters.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass
from typing import Literal

from warden.limits.settings import Budget, BudgetScope, Limits, Period, RateScope

RateKind = Literal["requests", "tokens"]
MINUTE_S = 60.0
_UTC = dt.UTC


@dataclass(frozen=True, slots=True)
class Who:
    """Whom a request is charged to."""

    key: str | None
    team: str | None
    model: str

    def subject(self, scope: RateScope | BudgetScope) -> str | None:
        """The name a counter of ``scope`` is kept under; None when the request has none (no
        client key, a key without a team)."""
        first = self.key if scope.startswith("key") else self.team if scope.startswith("team") \
            else self.model
        if first is None:
            return None
        return f"{first}/{self.model}" if scope.endswith("+model") else first


@dataclass(frozen=True, slots=True)
class RateCheck:
    """One per-minute counter a request is charged on."""

    counter: str
    kind: RateKind
    scope: RateScope
    subject: str
    limit: int
    where: str  # the rule's place in the config, for messages


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """One spend counter of the current period."""

    counter: str
    scope: BudgetScope
    subject: str
    usd: float
    period: Period
    ends_at: float  # unix time when the period ends
    where: str


class _Rule:
    def __init__(self, scope: RateScope | BudgetScope, match: str) -> None:
        self.scope = scope
        self.match = match
        self._pattern = None if match == "*" else re.compile(fnmatch.translate(match))

    def subject(self, who: Who) -> str | None:
        subject = who.subject(self.scope)
        if subject is None or (self._pattern is not None and not self._pattern.match(subject)):
            return None
        return subject


class Policy:
    """The limits and budgets of one config; a runtime holds one, a reload brings a new one."""

    def __init__(self, limits: Limits, budgets: list[Budget]) -> None:
        self.settings = limits
        self._rates: list[tuple[_Rule, RateScope, RateKind, int, str]] = []
        for i, r in enumerate(limits.rules):
            rule = _Rule(r.scope, r.match)
            if r.rpm is not None:
                self._rates.append((rule, r.scope, "requests", r.rpm, f"limits.rules[{i}]"))
            if r.tpm is not None:
                self._rates.append((rule, r.scope, "tokens", r.tpm, f"limits.rules[{i}]"))
        self._budgets = [(_Rule(b.scope, b.match), b, f"budgets[{i}]")
                         for i, b in enumerate(budgets)]
        self.has_budgets = bool(self._budgets)
        self.empty = not self._rates and not self._budgets

    def rate_checks(self, who: Who) -> list[RateCheck]:
        out = []
        for rule, scope, kind, limit, where in self._rates:
            subject = rule.subject(who)
            if subject is not None:
                unit = "rpm" if kind == "requests" else "tpm"
                out.append(RateCheck(f"{unit}|{scope}|{rule.match}|{subject}", kind, scope,
                                     subject, limit, where))
        return out

    def budget_checks(self, who: Who, now: float) -> list[BudgetCheck]:
        found: dict[str, BudgetCheck] = {}
        for rule, budget, where in self._budgets:
            subject = rule.subject(who)
            if subject is None:
                continue
            start, end = period_bounds(budget.period, now)
            counter = (f"usd|{budget.scope}|{rule.match}|{budget.period}|"
                       f"{start.date().isoformat()}|{subject}")
            check = BudgetCheck(counter, budget.scope, subject, budget.usd, budget.period,
                                end.timestamp(), where)
            # The same budget written twice shares one counter: the smaller amount applies.
            if counter not in found or found[counter].usd > budget.usd:
                found[counter] = check
        return list(found.values())


def period_bounds(period: Period, now: float) -> tuple[dt.datetime, dt.datetime]:
    """The UTC calendar period (start, end) that contains unix time ``now``."""
    t = dt.datetime.fromtimestamp(now, _UTC)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + dt.timedelta(days=1)
    if period == "week":
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=7)
    start = day.replace(day=1)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 \
        else start.replace(month=start.month + 1)
    return start, end
