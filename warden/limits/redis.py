"""Counters in Redis, shared by every gateway replica that points at the same server.

Each call is one Lua script, so a check-and-reserve is atomic across replicas: Redis runs one
script at a time. The scripts read the clock of the Redis server (``TIME``), so replicas whose
clocks differ still drain the same levels alike. Every key shares the hash tag ``{prefix}``: on
Redis Cluster they all live in one slot, which a multi-key script needs.

    rate counter   HASH   level (units), at (ms)   expires once drained
    spend counter  STRING USD (INCRBYFLOAT)        expires a day after its period ends
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from warden.limits.counters import CountersUnavailable, RateCharge, SpendCharge, Verdict

# ARGV: the number of rate keys; per rate key: limit, period (ms), amount; per spend key: limit,
# amount, ttl (ms). KEYS: the rate keys, then the spend keys.
_COMMON = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n = tonumber(ARGV[1])
local m = #KEYS - n
local function level_of(i)
  local limit, period = tonumber(ARGV[i * 3 - 1]), tonumber(ARGV[i * 3])
  local state = redis.call('HMGET', KEYS[i], 'level', 'at')
  local level = tonumber(state[1]) or 0
  local at = tonumber(state[2]) or now
  return math.max(0, level - math.max(0, now - at) * limit / period), limit, period
end
local function put_level(i, level, limit, period)
  redis.call('HSET', KEYS[i], 'level', string.format('%.17g', level),
             'at', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(level * period / limit) + 1000)
end
local function spend_arg(j, k)
  return ARGV[1 + n * 3 + (j - 1) * 3 + k]
end
"""

RESERVE = _COMMON + """
local spent, out = {}, {}
for j = 1, m do
  spent[j] = tonumber(redis.call('GET', KEYS[n + j]) or '0')
end
local function answer(ok, refused, wait)
  out = {ok, refused, string.format('%.17g', wait)}
  for j = 1, m do out[#out + 1] = string.format('%.17g', spent[j]) end
  return out
end
local levels = {}
for i = 1, n do
  local level, limit, period = level_of(i)
  local amount = tonumber(ARGV[i * 3 + 1])
  if level + amount > limit then
    return answer(0, i - 1, (level + amount - limit) * period / limit / 1000)
  end
  levels[i] = {level + amount, limit, period}
end
for j = 1, m do
  local limit, amount = tonumber(spend_arg(j, 1)), tonumber(spend_arg(j, 2))
  if spent[j] >= limit or spent[j] + amount > limit then
    return answer(0, n + j - 1, 0)
  end
end
for i = 1, n do put_level(i, levels[i][1], levels[i][2], levels[i][3]) end
for j = 1, m do
  spent[j] = tonumber(redis.call('INCRBYFLOAT', KEYS[n + j], spend_arg(j, 2)))
  redis.call('PEXPIRE', KEYS[n + j], spend_arg(j, 3))
end
return answer(1, -1, 0)
"""

SETTLE = _COMMON + """
for i = 1, n do
  local level, limit, period = level_of(i)
  put_level(i, math.max(0, level + tonumber(ARGV[i * 3 + 1])), limit, period)
end
local out = {}
for j = 1, m do
  local usd = tonumber(redis.call('INCRBYFLOAT', KEYS[n + j], spend_arg(j, 2)))
  if usd < 0 then
    usd = 0
    redis.call('SET', KEYS[n + j], '0')
  end
  redis.call('PEXPIRE', KEYS[n + j], spend_arg(j, 3))
  out[j] = string.format('%.17g', usd)
end
return out
"""

_DOWN_FOR_S = 1.0  # after a connection failure, fail fast for this long instead of waiting again


class RedisCounters:
    """One Redis server's counters, under ``{prefix}:...`` keys."""

    def __init__(self, url: str, prefix: str, timeout_s: float) -> None:
        self.url = url
        self._prefix = "{" + prefix + "}:"
        self._timeout_s = timeout_s
        self._client: Redis | None = None
        self._down_until = 0.0

    def _scripts(self) -> Redis:
        if self._client is None:
            # No retries inside the client: a script whose answer was lost must not run twice.
            self._client = Redis.from_url(
                self.url, socket_timeout=self._timeout_s, socket_connect_timeout=self._timeout_s,
                retry=Retry(NoBackoff(), 0))
            self._reserve = self._client.register_script(RESERVE)
            self._settle = self._client.register_script(SETTLE)
        return self._client

    def _call_args(self, rates: Sequence[RateCharge],
                   spends: Sequence[SpendCharge]) -> tuple[list[str], list[str]]:
        keys = [self._prefix + r.counter for r in rates] + [self._prefix + s.counter for s in spends]
        args = [str(len(rates))]
        for r in rates:
            args += [repr(float(r.limit)), repr(r.period_s * 1000), repr(float(r.amount))]
        for s in spends:
            args += [repr(float(s.limit)), repr(float(s.amount)), str(int(s.ttl_s * 1000) + 1)]
        return keys, args

    async def _run(self, which: str, rates: Sequence[RateCharge],
                   spends: Sequence[SpendCharge]) -> Any:
        if time.monotonic() < self._down_until:
            raise CountersUnavailable(f"Redis at {self._where()} failed less than "
                                      f"{_DOWN_FOR_S:.0f} s ago")
        self._scripts()
        script = self._reserve if which == "reserve" else self._settle
        keys, args = self._call_args(rates, spends)
        try:
            return await script(keys=keys, args=args)
        except (TimeoutError, RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self._down_until = time.monotonic() + _DOWN_FOR_S
            raise CountersUnavailable(f"Redis at {self._where()} cannot be reached: {exc}") from exc
        except RedisError as exc:
            raise CountersUnavailable(f"Redis at {self._where()} refused the {which} script: "
                                      f"{exc}") from exc

    async def reserve(self, rates: Sequence[RateCharge],
                      spends: Sequence[SpendCharge]) -> Verdict:
        reply = await self._run("reserve", rates, spends)
        return Verdict(bool(int(reply[0])), int(reply[1]), float(reply[2]),
                       tuple(float(v) for v in reply[3:]))

    async def settle(self, rates: Sequence[RateCharge],
                     spends: Sequence[SpendCharge]) -> tuple[float, ...]:
        reply = await self._run("settle", rates, spends)
        return tuple(float(v) for v in reply)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _where(self) -> str:
        # The URL without its password, for messages.
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"
