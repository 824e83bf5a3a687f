"""Token prices and the cost of a request.

Prices come from the deployment's ``price:`` in the config, else from the table shipped with
Warden (``prices.json``, USD per million tokens), matched on the upstream model name with any
date suffix removed. Models that run on your own hardware (``local``, ``local-embedding``,
``fake``) cost nothing. Anything else has an unknown price: the cost is ``None``, never a
silent zero.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources

from warden.config import Deployment

SELF_HOSTED = frozenset({"local", "local-embedding", "fake"})
_DATE = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


@dataclass(frozen=True, slots=True)
class TokenPrice:
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        fresh = max(0, input_tokens - cached_tokens)
        return (fresh * self.input_per_mtok + cached_tokens * self.cached_input_per_mtok
                + output_tokens * self.output_per_mtok) / 1_000_000


FREE = TokenPrice(0.0, 0.0, 0.0)


class PriceTable:
    """The shipped table, loaded once per gateway."""

    def __init__(self, table: dict[str, TokenPrice] | None = None) -> None:
        self._table = table if table is not None else load_shipped()

    def lookup(self, model: str) -> TokenPrice | None:
        name = model.split("/")[-1].lower()
        while True:
            if name in self._table:
                return self._table[name]
            stripped = _DATE.sub("", name)
            if stripped == name:
                return None
            name = stripped

    def for_deployment(self, dep: Deployment, upstream_model: str) -> TokenPrice | None:
        if dep.price is not None:
            p = dep.price
            cached = p.cached_input_per_mtok
            return TokenPrice(p.input_per_mtok, p.output_per_mtok,
                              p.input_per_mtok if cached is None else cached)
        if dep.provider in SELF_HOSTED:
            return FREE
        return self.lookup(upstream_model)


def load_shipped() -> dict[str, TokenPrice]:
    raw = json.loads(resources.files("warden.observe").joinpath("prices.json").read_text())
    out: dict[str, TokenPrice] = {}
    for name, value in raw.items():
        if name.startswith("_"):
            continue
        inp, outp, cached = value
        out[name] = TokenPrice(float(inp), float(outp), float(cached))
    return out
