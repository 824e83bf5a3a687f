"""What the scanner tests share: the public data sets in ../shared/data, reading them, and the
median time of one scan."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from warden.guard.base import ScanContext, Scanner

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"the shared data sets are not at {DATA}")


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def p50_us(scanner: Scanner, text: str, runs: int = 2000) -> float:
    """The median time of scanning ``text`` as a prompt, in microseconds."""
    ctx = ScanContext(where="input")
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        scanner.scan(text, ctx)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6
