"""The dashboard's HTML: one layout (head, nav, the page's body from ``templates/``) around
each page. Pages are shells: each loads one ES module (``static/js/<page>.js``) that fetches
its data from /api and renders it; nothing is built, nothing comes from a CDN.

Templates are ``string.Template`` files (``$name`` placeholders) read once; every value put into
one is escaped here.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template

from warden.access.roles import Principal
from warden.api.ranges import RANGES

TEMPLATES = Path(__file__).parent / "templates"
SCRIPTS = Path(__file__).parent / "static" / "js"
_IMPORT = re.compile(r"^import .* from '\./([\w-]+)\.js';$", re.MULTILINE)
STATIC = "/ui/static"
NAV: tuple[tuple[str, str], ...] = (("overview", "Overview"), ("requests", "Requests"),
                                    ("models", "Models"), ("guardrails", "Guardrails"),
                                    ("costs", "Costs"), ("keys", "Keys"))
ADMIN_ONLY = frozenset({"keys"})
RANGE_LABELS = {"15m": "Last 15 minutes", "1h": "Last hour", "6h": "Last 6 hours",
                "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
SECURITY_HEADERS = {
    # Scripts and data from this origin only; uPlot sizes its elements with inline styles.
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the dashboard: its nav entry (or None), title, template and script."""

    nav: str | None
    title: str
    template: str
    script: str
    charts: bool = False


@cache
def template(name: str) -> Template:
    return Template((TEMPLATES / f"{name}.html").read_text(encoding="utf-8"))


@cache
def imports(script: str) -> tuple[str, ...]:
    """The modules ``static/js/<script>.js`` imports, directly or not (for modulepreload: the
    browser fetches them with the page instead of after it)."""
    found: list[str] = []
    todo = [script]
    while todo:
        for name in _IMPORT.findall((SCRIPTS / f"{todo.pop()}.js").read_text(encoding="utf-8")):
            if name not in found:
                found.append(name)
                todo.append(name)
    return tuple(sorted(found))


def range_select(testid: str, selected: str = "1h", label: str = "Range") -> str:
    """The range picker: a <select> of the ranges 15m ... 30d."""
    options = "".join(
        f'<option value="{name}"{" selected" if name == selected else ""}>'
        f"{RANGE_LABELS[name]}</option>" for name in RANGES)
    return (f'<label class="range">{html.escape(label)} '
            f'<select data-testid="{testid}" name="range">{options}</select></label>')


def _nav(current: str | None, who: Principal) -> str:
    links = []
    for name, label in NAV:
        if name in ADMIN_ONLY and not who.may("administer"):
            continue
        here = ' aria-current="page"' if name == current else ""
        links.append(f'<a href="/ui/{name}" data-testid="nav-{name}"{here}>{label}</a>')
    role = html.escape(f"{who.name} · {who.role}" + (f" · team {who.team}" if who.team else ""))
    return (f'<header class="top"><a class="brand" href="/ui/overview">Warden</a>'
            f'<nav>{"".join(links)}</nav><div class="who"><span>{role}</span>'
            f'<form method="post" action="/ui/logout"><button type="submit" class="link" '
            f'data-testid="logout">Log out</button></form></div></header>')


def document(title: str, body: str, script: str, *, charts: bool = False,
             header: str = "", data: Mapping[str, str] | None = None) -> str:
    """A whole HTML document. ``data`` become ``data-*`` attributes of <body>."""
    attrs = "".join(f' data-{k}="{html.escape(v)}"' for k, v in (data or {}).items())
    chart_assets = (f'<link rel="stylesheet" href="{STATIC}/vendor/uPlot.min.css">'
                    f'<script src="{STATIC}/vendor/uPlot.iife.min.js" defer></script>'
                    if charts else "")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · Warden</title>"
        f'<link rel="icon" href="{STATIC}/favicon.svg" type="image/svg+xml">'
        f'{chart_assets}<link rel="stylesheet" href="{STATIC}/css/warden.css">'
        f'<script type="module" src="{STATIC}/js/{script}.js"></script>'
        + "".join(f'<link rel="modulepreload" href="{STATIC}/js/{name}.js">'
                  for name in imports(script)) +
        f"</head><body{attrs}>{header}<main>{body}</main></body></html>"
    )


def page(spec: Page, who: Principal, values: Mapping[str, str] | None = None,
         data: Mapping[str, str] | None = None) -> str:
    """A page of the dashboard for ``who``; ``values`` fill its template's placeholders
    (already HTML), ``data`` the <body>'s data attributes."""
    body = template(spec.template).substitute(values or {})
    attrs = {"page": spec.template, "role": who.role, **(data or {})}
    return document(spec.title, body, spec.script, charts=spec.charts,
                    header=_nav(spec.nav, who), data=attrs)
