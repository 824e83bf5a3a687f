"""The limiter: reserves a request's estimated use against every rule that applies, and settles
to the actual use once the answer is in.

One limiter per gateway process, owned by the app: its counters outlive reloads. Each runtime's
``Admit`` stage brings the policy (rules and budgets) of its own config, so a reload applies new
limits at once to the counts so far.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from warden.errors import ConfigError, RateLimited, Unavailable
from warden.limits.counters import Counters, CountersUnavailable, RateCharge, SpendCharge, Verdict
from warden.limits.memory import MemoryCounters
from warden.limits.rules import MINUTE_S, BudgetCheck, Policy, RateCheck, Who
from warden.limits.settings import Limits

log = logging.getLogger("warden.limits")
KEEP_SPEND_S = 86400.0  # a spend counter is kept this long after its period ends
MAX_BUDGET_SERIES = 1000  # budget gauges kept for /metrics; past it the oldest are dropped
_LOG_EVERY_S = 10.0


@dataclass
class LimitStats:
    """Counts behind the limiter's metrics (read by ``warden.limits.metrics``)."""

    rejections: dict[tuple[str, str], int] = field(default_factory=dict)  # (scope, kind)
    backend_errors: dict[str, int] = field(default_factory=dict)  # outcome: allowed|refused|settle
    unpriced: dict[str, int] = field(default_factory=dict)  # model
    budgets: dict[tuple[str, str, str], tuple[float, float]] = field(default_factory=dict)
    """(scope, subject, period) -> (USD used, USD allowed), as last seen."""

    def count(self, table: dict[str, int], label: str) -> None:
        table[label] = table.get(label, 0) + 1

    def saw_budget(self, check: BudgetCheck, used: float) -> None:
        label = (check.scope, check.subject, check.period)
        self.budgets.pop(label, None)  # re-insert: the dict stays in order of last use
        self.budgets[label] = (used, check.usd)
        if len(self.budgets) > MAX_BUDGET_SERIES:
            del self.budgets[next(iter(self.budgets))]


@dataclass(frozen=True, slots=True)
class Reservation:
    """What one request holds until it settles."""

    counters: Counters | None  # None: nothing to settle
    tokens: list[RateCheck]
    budgets: list[BudgetCheck]
    reserved_tokens: int
    reserved_usd: float


NOTHING = Reservation(None, [], [], 0, 0.0)


class Limiter:
    """Reserves and settles requests on the counters a policy names; keeps the counts in
    memory (``memory``) and the Redis clients, one per server and prefix."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.memory = MemoryCounters(clock)
        self.stats = LimitStats()
        self._wall = wall
        self._shared: dict[tuple[str, str, float], Counters] = {}
        self._logged_at = 0.0
        self._unlogged = 0
        self._unpriced_logged: set[str] = set()

    def counters(self, settings: Limits) -> Counters:
        """The counters the settings name: in memory, or one Redis client per server (made
        here, connected at first use); ConfigError when the redis package is missing."""
        if settings.redis_url is None:
            return self.memory
        where = (settings.redis_url, settings.key_prefix, settings.redis_timeout_s)
        found = self._shared.get(where)
        if found is None:
            try:
                from warden.limits.redis import RedisCounters  # the redis extra, only when used
            except ImportError:
                raise ConfigError("limits.redis_url is set but the redis package is not "
                                  "installed: pip install 'warden[redis]'") from None
            found = self._shared[where] = RedisCounters(*where)
        return found

    async def reserve(self, policy: Policy, who: Who, tokens: int, usd: float) -> Reservation:
        """Charge one request, ``tokens`` and ``usd`` to every rule of ``policy`` that applies;
        raises RateLimited when one has no room, Unavailable when the counters cannot be
        reached and the policy says to refuse then."""
        rates = policy.rate_checks(who)
        budgets = policy.budget_checks(who, self._wall()) if policy.has_budgets else []
        if not rates and not budgets:
            return NOTHING
        counters = self.counters(policy.settings)
        rate_charges = [RateCharge(c.counter, c.limit, MINUTE_S,
                                   1 if c.kind == "requests" else tokens) for c in rates]
        try:
            verdict = await counters.reserve(rate_charges, self._spends(budgets, usd))
        except CountersUnavailable as exc:
            return self._unavailable(policy.settings, exc)
        for check, used in zip(budgets, verdict.spent, strict=True):
            self.stats.saw_budget(check, used)
        if not verdict.allowed:
            raise self._refusal(verdict, rates, budgets, who, tokens, usd)
        return Reservation(counters, [c for c in rates if c.kind == "tokens"], budgets,
                           tokens, usd)

    async def settle(self, held: Reservation, tokens: int, usd: float | None,
                     model: str) -> None:
        """Correct a reservation to what the request used: ``usd`` None is an unknown price,
        counted as 0 (and in ``warden_budget_unpriced_requests_total``). Never raises."""
        if held.counters is None:
            return
        if usd is None:
            if held.budgets:
                self._unpriced(model)
            usd = 0.0
        rates = [RateCharge(c.counter, c.limit, MINUTE_S, tokens - held.reserved_tokens)
                 for c in held.tokens if tokens != held.reserved_tokens]
        spends = self._spends(held.budgets, usd - held.reserved_usd) \
            if usd != held.reserved_usd else []
        if not rates and not spends:
            return
        try:
            spent = await held.counters.settle(rates, spends)
        except CountersUnavailable as exc:
            self.stats.count(self.stats.backend_errors, "settle")
            self._log(f"limits: a settlement was lost: {exc}")
            return
        for check, used in zip(held.budgets if spends else [], spent, strict=True):
            self.stats.saw_budget(check, used)

    async def aclose(self) -> None:
        for counters in self._shared.values():
            await counters.aclose()
        self._shared.clear()

    def _spends(self, budgets: list[BudgetCheck], usd: float) -> list[SpendCharge]:
        now = self._wall()
        return [SpendCharge(b.counter, b.usd, usd, max(1.0, b.ends_at - now) + KEEP_SPEND_S)
                for b in budgets]

    def _unavailable(self, settings: Limits, exc: CountersUnavailable) -> Reservation:
        if settings.on_redis_error == "allow":
            self.stats.count(self.stats.backend_errors, "allowed")
            self._log(f"limits: {exc}; allowing requests unlimited "
                      "(limits.on_redis_error: allow)")
            return NOTHING
        self.stats.count(self.stats.backend_errors, "refused")
        self._log(f"limits: {exc}; refusing requests (limits.on_redis_error: refuse)")
        raise Unavailable("Rate limits cannot be checked right now (their Redis server cannot "
                          "be reached), so the gateway refuses requests; try again shortly.",
                          code="limits_unavailable", retry_after=1.0)

    def _refusal(self, verdict: Verdict, rates: list[RateCheck], budgets: list[BudgetCheck],
                 who: Who, tokens: int, usd: float) -> RateLimited:
        if verdict.refused < len(rates):
            rate = rates[verdict.refused]
            self._reject(rate.scope, rate.kind)
            return rate_refusal(rate, who, tokens, verdict.retry_after_s)
        j = verdict.refused - len(rates)
        budget = budgets[j]
        self._reject(budget.scope, "budget")
        return budget_refusal(budget, who, verdict.spent[j], usd, self._wall())

    def _reject(self, scope: str, kind: str) -> None:
        label = (scope, kind)
        self.stats.rejections[label] = self.stats.rejections.get(label, 0) + 1

    def _unpriced(self, model: str) -> None:
        self.stats.count(self.stats.unpriced, model)
        if model not in self._unpriced_logged and len(self._unpriced_logged) < 1000:
            self._unpriced_logged.add(model)
            log.warning("budgets: model '%s' has no known price, so its spend counts 0 against "
                        "budgets; set price: on its deployments", model)

    def _log(self, line: str) -> None:
        # At most one line per interval while the backend is down, with the count of the rest.
        now = time.monotonic()
        if now - self._logged_at < _LOG_EVERY_S:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more since the last line)" if self._unlogged else ""
        log.error("%s%s", line, more)
        self._logged_at, self._unlogged = now, 0


def _whom(scope: str, who: Who) -> str:
    first = scope.partition("+")[0]
    name = who.key if first == "key" else who.team if first == "team" else who.model
    if scope.endswith("+model"):
        return f"{first} '{name}' on model '{who.model}'"
    return f"{first} '{name}'"


def rate_refusal(rate: RateCheck, who: Who, tokens: int, wait_s: float) -> RateLimited:
    whom = _whom(rate.scope, who)
    if rate.kind == "tokens" and tokens > rate.limit:
        return RateLimited(
            f"Request too large for {whom}: it may use about {tokens} tokens (prompt estimate "
            f"plus max_tokens), more than the limit of {rate.limit} tokens per minute "
            f"({rate.where}); lower max_tokens or shorten the prompt.",
            retry_after=MINUTE_S)
    what = f"{rate.limit} requests per minute" if rate.kind == "requests" else \
        f"{rate.limit} tokens per minute; this request may use about {tokens} tokens"
    return RateLimited(f"Rate limit reached for {whom}: {what} ({rate.where}). "
                       f"Try again in {max(wait_s, 0.1):.1f} s.", retry_after=wait_s)


def budget_refusal(budget: BudgetCheck, who: Who, spent: float, usd: float,
                   now: float) -> RateLimited:
    ends = dt.datetime.fromtimestamp(budget.ends_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    wait = max(1.0, budget.ends_at - now)
    return RateLimited(
        f"Budget exceeded for {_whom(budget.scope, who)}: {_usd(budget.usd)} USD per calendar "
        f"{budget.period} (UTC, {budget.where}); {_usd(spent)} USD spent, and this request may "
        f"cost up to {_usd(usd)} USD. It resets at {ends}.",
        code="budget_exceeded", retry_after=wait)


def _usd(value: float) -> str:
    return f"{value:.2f}" if value >= 1 or value == 0 else f"{value:.6f}".rstrip("0")
