"""The guard scanners take time in proportion to the text: a prompt as large as the body limit,
made of one short piece repeated (the shape that makes a backtracking pattern or a quadratic scan
blow up), is answered within a bound that a linear scan meets many times over, on SQLite and
PostgreSQL."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import BODY_LIMIT, EXAMPLES, Gate, shorten
from tests.fuzz.strategies import encode

SCAN_S = 2.0
"""The most one request of about BODY_LIMIT bytes may take through the guarded model (a linear
scan of 64 KiB takes well under a tenth of that)."""

PIECES = ["sk-", "A1", "AKIA", "eyJ", "ghp_", "-----BEGIN ", "x@y.", "@", ".", "a.", "1234 ",
          "+1 ", "(", "<", "&#", "\u200b", "\u202e", "ignore ", "=", "/", ":", "_", "-", " ",
          "a", "0"]
units = st.lists(st.sampled_from(PIECES), min_size=1, max_size=3).map("".join) | st.text(
    st.sampled_from("aA0 -_.@:/=+<>&#%\\\"'\u200b"), min_size=1, max_size=5)


def test_scanners_stay_linear_on_repeated_pieces(gate: Gate) -> None:
    # No shrinking: each slow example costs seconds, and the first one found is already small.
    @settings(max_examples=max(10, EXAMPLES // 4), deadline=None, derandomize=True,
              database=None, suppress_health_check=[HealthCheck.too_slow],
              phases=[Phase.explicit, Phase.reuse, Phase.generate])
    @given(unit=units, where=st.sampled_from(["user", "system", "assistant"]))
    def repeated(unit: str, where: str) -> None:
        budget = BODY_LIMIT - 200
        text = unit * max(1, budget // len(unit.encode()))
        data = encode({"model": "guarded", "messages": [{"role": where, "content": text},
                                                         {"role": "user", "content": "hi"}]})
        started = time.monotonic()
        ex = gate.send("POST", "/v1/chat/completions",
                       f"{len(data)} bytes of {unit!r} repeated ({shorten(data, 120)})", data,
                       {"content-type": "application/json"}, upstream=True)
        took = time.monotonic() - started
        assert took < SCAN_S, (f"{took:.1f} s (more than {SCAN_S} s) for {len(data)} bytes of "
                               f"{unit!r} repeated, as the {where} message\n{ex.describe()}")

    repeated()
    gate.settle()
