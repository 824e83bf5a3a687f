"""Time ranges of the aggregate endpoints: ``range=1h`` (the dashboard's picker) or explicit
``since`` and ``until`` (unix seconds)."""

from __future__ import annotations

from typing import Any

from warden.errors import InvalidRequest

RANGES: dict[str, float] = {"15m": 900.0, "1h": 3600.0, "6h": 21600.0, "24h": 86400.0,
                            "7d": 7 * 86400.0, "30d": 30 * 86400.0}
"""The ranges of the dashboard's picker, in seconds."""


def range_seconds(name: str | None, default: str = "1h") -> tuple[str, float]:
    """The name and length of a range (``default`` when none is given)."""
    name = name or default
    seconds = RANGES.get(name)
    if seconds is None:
        raise InvalidRequest(f"range must be one of {', '.join(RANGES)}; got {name!r}",
                             param="range")
    return name, seconds


def number(params: Any, name: str) -> float | None:
    """The query parameter ``name`` as a number; None when absent or empty."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be a number (unix seconds or seconds); got {raw!r}",
                             param=name) from None


def window(params: Any, now: float, default: str = "1h") -> tuple[float, float]:
    """``(since, until)`` of the query parameters: ``until`` (default now) and ``since``, or
    else the ``range`` before ``until``."""
    until = number(params, "until")
    until = now if until is None else until
    since = number(params, "since")
    if since is None:
        since = until - range_seconds(params.get("range"), default)[1]
    elif params.get("range"):
        raise InvalidRequest("give either range or since, not both", param="range")
    if not since < until:
        raise InvalidRequest("since must be before until", param="since")
    return since, until
