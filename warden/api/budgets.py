"""``GET /api/budgets``: each budget of the config, with how much of it each key or team has
used in the current period (a budget that no one has spent on yet: one row, subject None).

Spend is read from the store (the recorded cost of the period's requests, so every replica and a
restart agree); ``counted_usd`` is what this process's limiter last saw on the budget's counter
(it includes reservations of requests still running), or None when it has not seen one. A key
that reads only its team's records sees only its team's spend."""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from warden.api.admin import authorize
from warden.api.responses import JSON, error_response
from warden.errors import WardenError
from warden.limits.limiter import LimitStats
from warden.limits.rules import period_bounds
from warden.limits.settings import Budget
from warden.runtime import RuntimeHolder
from warden.store.base import RequestFilter, Store

_GLOB = frozenset("*?[")


class BudgetsApi:
    def __init__(self, holder: RuntimeHolder, store: Store, limits: LimitStats,
                 clock: Callable[[], float] = time.time) -> None:
        self._holder = holder
        self._store = store
        self._limits = limits
        self._clock = clock

    def routes(self) -> list[Route]:
        return [Route("/api/budgets", self.budgets, methods=["GET"])]

    async def budgets(self, request: Request) -> Response:
        try:
            who = authorize(self._holder, request, "read")
            budgets = self._holder.current.config.budgets
            rows = await asyncio.to_thread(self.usage, budgets, self._clock(), who.team_scope)
        except WardenError as exc:
            return error_response(exc)
        return JSON({"data": rows})

    def usage(self, budgets: list[Budget], now: float, team: str | None) -> list[dict[str, Any]]:
        """One row per budget and subject (key or team) with spend in the period; a budget
        that names one subject has its row even without spend, and one without any spend a
        row of subject None. Blocking."""
        out: list[dict[str, Any]] = []
        spent: dict[tuple[str, str], dict[str, float]] = {}
        for i, budget in enumerate(budgets):
            start, end = period_bounds(budget.period, now)
            found = spent.get((budget.scope, budget.period))
            if found is None:
                where = RequestFilter(since=start.timestamp(), until=max(now, start.timestamp() + 1),
                                      team=team)
                rows = self._store.summary(where, "key_id" if budget.scope == "key" else "team",
                                           percentiles=False)
                found = spent[(budget.scope, budget.period)] = {
                    row.group: row.cost_usd or 0.0 for row in rows if row.group is not None}
            used = {s: usd for s, usd in found.items() if fnmatch.fnmatchcase(s, budget.match)}
            if budget.scope == "team" and team is not None:
                used = {s: usd for s, usd in used.items() if s == team}
            if not used and budget.scope == "team" and team is not None:
                used = {team: 0.0} if fnmatch.fnmatchcase(team, budget.match) else {}
            elif not used and not _GLOB & set(budget.match) and team is None:
                used = {budget.match: 0.0}
            rows_of: list[tuple[str | None, float]] = sorted(
                used.items(), key=lambda item: (-item[1], item[0])) or [(None, 0.0)]
            for subject, usd in rows_of:
                counted = None if subject is None else self._limits.budgets.get(
                    (budget.scope, subject, budget.period))
                out.append({
                    "budget": f"budgets[{i}]", "scope": budget.scope, "match": budget.match,
                    "subject": subject, "period": budget.period,
                    "period_start": start.timestamp(), "period_end": end.timestamp(),
                    "usd": budget.usd, "used_usd": usd, "used_share": usd / budget.usd,
                    "counted_usd": None if counted is None else counted[0],
                })
        return out
