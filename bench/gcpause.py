"""Full garbage-collection pauses of a gateway process holding the statistics of 1,000,000 records.

    .venv/bin/python bench/gcpause.py [--records 1000000] [--collections 10] [--no-postgres]
                                      [--baseline GIT_REF]

A full (generation 2) collection stops every thread of the process, request handlers
included, for as long as it takes to walk every container object the process holds. For each
backend (the data sets of bench/query.py, filled when missing), a fresh process per case opens
the store the way ``warden serve`` does, and times ``--collections`` full collections:

* **started**: the store open, nothing read yet;
* **warmed**: after the dashboard's warm-up (the overview of 24 h, 7 and 30 days, every
  breakdown) and the statistics of 24 h and 30 days per model, deployment and key: the hour
  blocks and spans of 1,000,000 records in memory;
* **warmed, start frozen**: the same, with what existed once started frozen out of the
  collector's walks (``gc.freeze``), as ``warden serve`` does;
* with ``--baseline REF``, first **warmed** as the code of that git commit does it (checked out
  in a worktree under bench/.work/), for a side-by-side figure.

Writes bench/results/gcpause.md and bench/results/gcpause.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    PYTHON,
    ROOT,
    WORK,
    BenchError,
    machine,
    now_iso,
    run_main,
    save_results,
    sigterm_as_exit,
)
from query import dataset
from recorder import load_note, store_backends, table

from warden.store import RequestFilter, StatsQuery, open_store
from warden.ui.overview import Overview

CASES = ("started", "warmed", "warmed, start frozen")


def one_case(url: str, end: float, case: str, collections: int) -> dict[str, Any]:
    """Run in a process of its own: open, maybe freeze and warm, then time full collections."""
    store = open_store(url)
    try:
        if case == "warmed, start frozen":
            gc.collect()
            gc.freeze()
        t0 = time.perf_counter()
        if case != "started":
            Overview(store, lambda: 0, clock=lambda: end).warm()
            for group in (None, "model", "deployment", "key_id"):
                for span, bucket in ((86400, 3600), (30 * 86400, 21600)):
                    store.stats(StatsQuery(bucket_s=bucket, group_by=group,
                                           where=RequestFilter(since=end - span, until=end)))
        warm_s = time.perf_counter() - t0
        gc.collect()
        tracked = len(gc.get_objects())
        pauses = []
        for _ in range(collections):
            t = time.perf_counter()
            gc.collect()
            pauses.append(1e3 * (time.perf_counter() - t))
        return {"case": case, "warm_s": round(warm_s, 2), "tracked": tracked,
                "frozen": gc.get_freeze_count(), "p50_ms": round(statistics.median(pauses), 1),
                "max_ms": round(max(pauses), 1), "pauses_ms": [round(p, 2) for p in pauses]}
    finally:
        store.close()


def run_case(url: str, end: float, case: str, collections: int,
             code: Path | None = None) -> dict[str, Any]:
    """``one_case`` in a fresh process, importing warden from ``code`` when given."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    out = subprocess.run([str(PYTHON), __file__, "--case", case, "--url", url, "--end", str(end),
                          "--collections", str(collections)],
                         capture_output=True, text=True, timeout=1800, env=env)
    if out.returncode != 0:
        raise BenchError(f"case {case!r} failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def worktree(ref: str) -> tuple[Path, str]:
    """A checkout of ``ref`` under bench/.work/ (made once), and its short commit."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref],
                            capture_output=True, text=True)
    if commit.returncode != 0:
        raise BenchError(f"--baseline {ref}: not a commit of this repository")
    short = commit.stdout.strip()
    path = WORK / f"baseline-{short}"
    if not (path / "warden").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path),
                        short], check=True, capture_output=True)
    return path, short


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Full garbage-collection pauses over {result['records']:,} records",
        "",
        f"{result['date']} · {result['machine']['cpu_model']} · {result['machine']['cpus']} cores · "
        f"Python {result['python']}; {result['collections']} full collections per case, each "
        "case in a fresh process (bench/gcpause.py)",
        "",
    ]
    rows = []
    for backend in result["backends"]:
        for c in backend["cases"]:
            rows.append((backend["backend"], c["case"], f"{c['tracked']:,}", f"{c['frozen']:,}",
                         f"**{c['p50_ms']:.1f}**", f"{c['max_ms']:.1f}"))
    lines += [table(("backend", "case", "tracked objects", "frozen", "pause p50 ms", "max ms"),
                    rows, (False, False, True, True, True, True)), ""]
    lines += [f"Machine: {result['load']}."]
    if result.get("postgres_skipped"):
        lines += ["", f"PostgreSQL not measured: {result['postgres_skipped']}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--collections", type=int, default=10)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--baseline", metavar="GIT_REF",
                        help="also measure the warmed case with the code of this commit")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--end", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(args.url, args.end, args.case, args.collections)))
        return 0
    sigterm_as_exit()
    load_before = os.getloadavg()
    backends, skipped = store_backends(args.no_postgres)
    baseline = worktree(args.baseline) if args.baseline else None
    results = []
    for backend in backends:
        meta = dataset(backend, args.records, refill=False)
        cases = []
        runs: list[tuple[str, str, Path | None]] = [(case, case, None) for case in CASES]
        if baseline is not None:
            runs.insert(0, ("warmed", f"warmed, code of {baseline[1]}", baseline[0]))
        for case, label, code in runs:
            c = run_case(meta["url"], meta["end"], case, args.collections, code)
            c["case"] = label
            print(f"  {backend:10} {label:30} tracked {c['tracked']:>9,}  frozen {c['frozen']:>9,}"
                  f"  pause p50 {c['p50_ms']:6.1f} ms  max {c['max_ms']:6.1f} ms", flush=True)
            cases.append(c)
        results.append({"backend": backend, "cases": cases})
    result = {"date": now_iso(), "machine": machine(), "python": sys.version.split()[0],
              "records": args.records, "collections": args.collections, "backends": results,
              "postgres_skipped": skipped, "load": load_note(load_before, os.getloadavg())}
    save_results("gcpause", markdown(result), result)
    return 0


if __name__ == "__main__":
    run_main(main)
