"""The aggregate endpoints the dashboard reads (/api/summary, /api/findings,
/api/findings/requests, /api/budgets, /api/overview) through real HTTP, over records of the last
40 days written to the gateway's store beforehand: every number equals the same number computed
from the records themselves."""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import GatewayThread
from tests.store.factory import make_record
from tests.store.test_summary import expected
from tests.ui.http import call
from warden.observe.record import Finding, Record
from warden.store import open_store

ADMIN = "aggregates-admin-01"
RED_VIEWER = "aggregates-viewer-1"
APP = "aggregates-app-0001"
NOW = time.time()
DAY = 86400.0
FINDINGS = [
    [], [], [],
    [Finding("pii", "EMAIL_ADDRESS", "redact", 1.0, "input", 3, 9, 0)],
    [Finding("injection", "jailbreak", "block", 0.93, "input")],
    [Finding("pii", "CREDIT_CARD", "pseudonymize", 1.0, "input", 0, 16, 0),
     Finding("secrets", "aws_key", "redact", 1.0, "output", 5, 25, 0)],
    [Finding("toxicity", "insult", "flag", 0.7, "output")],
]


def records() -> list[Record]:
    rng = random.Random(11)
    out = []
    for i in range(1500):
        findings = rng.choice(FINDINGS)
        status = "blocked" if any(f.action == "block" for f in findings) else \
            rng.choices(("ok", "error"), (0.9, 0.1))[0]
        team = rng.choice(("red", "blue", None))
        out.append(make_record(
            i, started_at=NOW - 40 * DAY * rng.random() ** 2, model=rng.choice(("gpt", "claude")),
            deployment=rng.choice(("d1", "d2")), key_id=f"{team or 'none'}-{rng.randint(1, 2)}",
            team=team, status=status,
            http_status={"ok": 200, "error": rng.choice((502, 503, 429)), "blocked": 400}[status],
            latency_s=rng.lognormvariate(-1, 1), ttft_s=rng.random() if rng.random() < .5 else None,
            input_tokens=rng.randint(1, 900), output_tokens=rng.randint(0, 400),
            cost_usd=None if rng.random() < 0.1 else rng.random() / 50,
            cache=rng.choice(("hit", "miss", "bypass")), findings=findings))
    return out


RECORDS = records()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    folder: Path = tmp_path_factory.mktemp("aggregates")
    store = open_store(f"sqlite:///{folder / 'data' / 'warden.db'}")
    try:
        store.write(RECORDS, [])
    finally:
        store.close()
    with GatewayThread({
        "admin_key": ADMIN, "server": {"data_dir": str(folder / "data")},
        "keys": [{"key": RED_VIEWER, "name": "red-viewer", "role": "viewer", "team": "red"},
                 {"key": APP, "name": "app"}],
        "budgets": [{"scope": "team", "match": "*", "usd": 2.0, "period": "month"},
                    {"scope": "key", "match": "red-1", "usd": 0.5, "period": "day"},
                    {"scope": "key", "match": "nobody", "usd": 1.0, "period": "week"}],
        "models": [{"name": "gpt", "deployments": [{"id": "d1", "provider": "fake"}]}],
        "store": {"retention_days": None},
    }) as g:
        yield g


def get(gw: GatewayThread, path: str, token: str = ADMIN) -> Any:
    answer = call(gw.url, "GET", path, token=token)
    assert answer.status == 200, answer.text
    return answer.json()


def agree(rows: list[dict[str, Any]], want: dict[str | None, dict[str, Any]]) -> None:
    assert {r["group"] for r in rows} == set(want)
    for row in rows:
        for name, value in want[row["group"]].items():
            if value is None or row[name] is None:
                assert row[name] == value, name
            else:
                assert row[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize("group_by", [None, "model", "key_id", "team"])
@pytest.mark.parametrize("range_name", ["24h", "7d", "30d"])
def test_summary_agrees_with_the_records(gw: GatewayThread, range_name: str,
                                         group_by: str | None) -> None:
    path = f"/api/summary?range={range_name}" + (f"&group_by={group_by}" if group_by else "")
    for _ in range(2):  # computed, then from what was kept
        body = get(gw, path)
        agree(body["data"], expected(RECORDS, body["since"], body["until"], group_by))
        assert body["until"] - body["since"] == {"24h": 1, "7d": 7, "30d": 30}[range_name] * DAY


def test_summary_without_percentiles_and_with_filters(gw: GatewayThread) -> None:
    body = get(gw, "/api/summary?range=30d&group_by=deployment&percentiles=false&model=gpt")
    want = expected([r for r in RECORDS if r.model == "gpt"], body["since"], body["until"],
                    "deployment")
    for row in body["data"]:
        assert row["latency_p50"] is None and row["latency_p99"] is None
        assert row["count"] == want[row["group"]]["count"]
        assert row["cost_usd"] == pytest.approx(want[row["group"]]["cost_usd"])
    since, until = NOW - 20 * DAY, NOW - 10 * DAY
    body = get(gw, f"/api/summary?since={since}&until={until}&status=error")
    agree(body["data"], expected([r for r in RECORDS if r.status == "error"], since, until))


def test_a_team_viewer_gets_its_team_only(gw: GatewayThread) -> None:
    body = get(gw, "/api/summary?range=30d&group_by=team", token=RED_VIEWER)
    red = [r for r in RECORDS if r.team == "red"]
    agree(body["data"], expected(red, body["since"], body["until"], "team"))
    assert call(gw.url, "GET", "/api/summary?team=blue", token=RED_VIEWER).status == 403
    counts = get(gw, "/api/findings?range=30d&bucket=86400", token=RED_VIEWER)
    assert sum(c["count"] for c in counts["data"]) == sum(
        len(r.findings) for r in red if counts["since"] <= r.started_at < counts["until"])


def test_finding_counts_agree_with_the_records(gw: GatewayThread) -> None:
    body = get(gw, "/api/findings?range=7d&bucket=3600")
    assert body["bucket_s"] == 3600
    want: Counter[tuple[Any, ...]] = Counter()
    for r in RECORDS:
        if body["since"] <= r.started_at < body["until"]:
            for f in r.findings:
                want[(math.floor(r.started_at / 3600) * 3600, f.scanner, f.type, f.action,
                      f.where)] += 1
    assert Counter({(c["bucket_start"], c["scanner"], c["type"], c["action"], c["where"]):
                    c["count"] for c in body["data"]}) == want
    assert get(gw, "/api/findings?range=30d")["bucket_s"] == 6 * 3600  # about 120 buckets


@pytest.mark.parametrize("actions", [["block"], ["redact", "pseudonymize"], ["flag"]])
def test_the_newest_guarded_requests(gw: GatewayThread, actions: list[str]) -> None:
    query = "&".join(f"action={a}" for a in actions)
    body = get(gw, f"/api/findings/requests?{query}&range=30d&limit=7")
    since = NOW - 30 * DAY
    want = sorted((r for r in RECORDS if r.started_at >= since
                   and any(f.action in actions for f in r.findings)),
                  key=lambda r: r.started_at, reverse=True)[:7]
    assert [r["request_id"] for r in body["data"]] == [r.request_id for r in want]
    assert all(r["findings"] for r in body["data"])


def test_budgets_show_the_spend_of_their_period(gw: GatewayThread) -> None:
    rows = get(gw, "/api/budgets")["data"]
    now = dt.datetime.now(dt.UTC)
    month = dt.datetime(now.year, now.month, 1, tzinfo=dt.UTC).timestamp()
    day = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC).timestamp()
    spent: Counter[str] = Counter()
    for r in RECORDS:
        if r.team and r.started_at >= month and r.cost_usd is not None:
            spent[r.team] += r.cost_usd
    teams = {row["subject"]: row for row in rows if row["budget"] == "budgets[0]"}
    assert set(teams) == {r.team for r in RECORDS if r.team and r.started_at >= month}
    for team, row in teams.items():
        assert row["used_usd"] == pytest.approx(spent[team])
        assert row["used_share"] == pytest.approx(spent[team] / 2.0)
        assert (row["period"], row["period_start"], row["usd"]) == ("month", month, 2.0)
    (red1,) = [row for row in rows if row["budget"] == "budgets[1]"]
    assert red1["subject"] == "red-1" and red1["period_start"] == day
    assert red1["used_usd"] == pytest.approx(sum(
        r.cost_usd or 0 for r in RECORDS if r.key_id == "red-1" and r.started_at >= day))
    (nobody,) = [row for row in rows if row["budget"] == "budgets[2]"]
    assert (nobody["subject"], nobody["used_usd"]) == ("nobody", 0.0)
    # A team's viewer: its team's spend only.
    scoped = get(gw, "/api/budgets", token=RED_VIEWER)["data"]
    assert {row["subject"] for row in scoped if row["budget"] == "budgets[0]"} == {"red"}


def test_the_overview_snapshot_agrees_with_the_records(gw: GatewayThread) -> None:
    body = get(gw, "/api/overview?range=7d")
    since, until = body["since"], body["until"]
    (want,) = expected(RECORDS, since, until).values()
    tiles = body["tiles"]
    for name in ("latency_p50", "latency_p95", "latency_p99", "ttft_p50", "requests_per_s",
                 "cost_usd", "blocked", "cache_hits"):
        assert tiles[name] == pytest.approx(want[name]), name
    assert tiles["requests"] == want["count"]
    assert tiles["error_rate"] == pytest.approx(want["errors"] / want["count"])
    assert tiles["availability"] == pytest.approx(1 - want["server_errors"] / want["count"])
    assert tiles["guard_actions"] == sum(len(r.findings) for r in RECORDS
                                         if since <= r.started_at < until)
    series = body["series"]
    first = math.floor(since / 3600) * 3600
    assert series["t"][0] == first and len(series["t"]) == math.ceil((until - first) / 3600)
    assert sum(series["requests"]) == sum(1 for r in RECORDS if first <= r.started_at < until)
    models = {row["group"]: row["requests"] for row in body["breakdowns"]["model"]}
    assert models == {g: w["count"] for g, w in expected(RECORDS, since, until, "model").items()}


@pytest.mark.parametrize(("path", "param"), [
    ("/api/summary?range=2h", "range"), ("/api/summary?group_by=end_user", "group_by"),
    ("/api/summary?percentiles=maybe", "percentiles"), ("/api/summary?range=1h&since=5", "range"),
    ("/api/summary?since=10&until=5", "since"), ("/api/findings?bucket=x", "bucket"),
    ("/api/findings?range=30d&bucket=60", "bucket"), ("/api/findings/requests?action=nuke", "action"),
    ("/api/findings/requests?limit=0", "limit"),
    # Numbers that are not finite, or past what the stores' arithmetic holds.
    ("/api/requests?limit=nan", "limit"), ("/api/requests?limit=inf", "limit"),
    ("/api/requests?limit=2.5", "limit"), ("/api/requests?since=nan", "since"),
    ("/api/requests?until=1e308", "until"), ("/api/summary?since=-inf", "since"),
    ("/api/summary?since=-1e308", "since"), ("/api/summary?until=1e308", "until"),
    ("/api/summary?since=1e308&until=inf", "until"), ("/api/findings?bucket=nan", "bucket"),
    ("/api/findings?bucket=inf", "bucket"), ("/api/findings?bucket=-5", "bucket"),
    ("/api/findings?since=-1e308", "since"), ("/api/findings/requests?limit=%C2%B2", "limit"),
    ("/api/findings/requests?limit=nan", "limit"), ("/api/stats?bucket=nan", "bucket"),
    ("/api/stats?bucket=1e-300", "bucket"), ("/api/stats?since=-inf", "since")])
def test_bad_parameters_are_named(gw: GatewayThread, path: str, param: str) -> None:
    answer = call(gw.url, "GET", path, token=ADMIN)
    assert answer.status == 400
    assert answer.json()["error"]["param"] == param


@pytest.mark.parametrize("path", ["/api/summary", "/api/findings", "/api/findings/requests",
                                  "/api/budgets", "/api/overview"])
def test_the_aggregates_need_a_key_that_may_read(gw: GatewayThread, path: str) -> None:
    assert call(gw.url, "GET", path).status == 401
    assert call(gw.url, "GET", path, token=APP).status == 403
    assert call(gw.url, "GET", path, token=RED_VIEWER).status == 200


def test_the_request_table_takes_a_range_by_the_gateway_s_clock(gw: GatewayThread) -> None:
    before = time.time()
    body = get(gw, "/api/requests?range=24h&limit=1000&model=gpt")
    after = time.time()
    ids = {r["request_id"] for r in body["data"]}
    assert {r.request_id for r in RECORDS if r.model == "gpt" and r.started_at >= after - DAY} \
        <= ids <= {r.request_id for r in RECORDS if r.model == "gpt" and r.started_at >= before - DAY}
    assert call(gw.url, "GET", "/api/requests?range=2d", token=ADMIN).json()["error"]["param"] \
        == "range"
