"""Time ranges and numbers of the query API: ``range=1h`` (the dashboard's picker) or explicit
``since`` and ``until`` (unix seconds), and the one parser of numeric query parameters.

A number that is not finite (``nan``, ``inf``) or outside what its parameter means is a 400
naming the parameter: it must never reach the arithmetic of the stores."""

from __future__ import annotations

import math
from typing import Any

from warden.errors import InvalidRequest

RANGES: dict[str, float] = {"15m": 900.0, "1h": 3600.0, "6h": 21600.0, "24h": 86400.0,
                            "7d": 7 * 86400.0, "30d": 30 * 86400.0}
"""The ranges of the dashboard's picker, in seconds."""

LATEST_TIME = 253402300799.0
"""The last second of the year 9999, the latest ``since`` or ``until`` taken; the earliest
is 0 (1970). Records cannot lie outside, and the stores' hour arithmetic stays in range."""

MAX_BUCKET_S = 366 * 86400.0
"""The widest time bucket of an aggregate, a year; the narrowest is a second."""


def range_seconds(name: str | None, default: str = "1h") -> tuple[str, float]:
    """The name and length of a range (``default`` when none is given)."""
    name = name or default
    seconds = RANGES.get(name)
    if seconds is None:
        raise InvalidRequest(f"range must be one of {', '.join(RANGES)}; got {name!r}",
                             param="range")
    return name, seconds


def number(params: Any, name: str, low: float = -math.inf, high: float = math.inf,
           what: str = "a number") -> float | None:
    """The query parameter ``name`` as a finite number from ``low`` to ``high``; None when
    absent or empty. ``what`` says in the error what the parameter holds."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidRequest(f"'{name}' must be {what}; got {raw!r}", param=name)
    if not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be {what} from {low:g} to {high:g}; got {raw!r}",
                             param=name)
    return value


def integer(params: Any, name: str, default: int, low: int, high: int) -> int:
    """The query parameter ``name`` as a whole number from ``low`` to ``high``; ``default``
    when absent or empty."""
    value = number(params, name, low, high, "a whole number")
    if value is None:
        return default
    if not value.is_integer():
        raise InvalidRequest(f"'{name}' must be a whole number from {low} to {high}; got "
                             f"{params.get(name)!r}", param=name)
    return int(value)


def timestamp(params: Any, name: str) -> float | None:
    """The query parameter ``name`` as unix seconds, 0 to LATEST_TIME; None when absent."""
    return number(params, name, 0.0, LATEST_TIME, "unix seconds")


def window(params: Any, now: float, default: str = "1h") -> tuple[float, float]:
    """``(since, until)`` of the query parameters: ``until`` (default now) and ``since``, or
    else the ``range`` before ``until``."""
    until = timestamp(params, "until")
    until = now if until is None else until
    since = timestamp(params, "since")
    if since is None:
        since = until - range_seconds(params.get("range"), default)[1]
    elif params.get("range"):
        raise InvalidRequest("give either range or since, not both", param="range")
    if not since < until:
        raise InvalidRequest("since must be before until", param="since")
    return since, until
