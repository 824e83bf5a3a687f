"""The memory benchmark: does Warden's RSS stay flat under a long run of requests?

    .venv/bin/python bench/memory.py [--requests 50000] [--concurrency 32]

Starts the fake upstream (core 0) and ``warden serve`` (core 1), sends 50,000 chat completions
from this process (core 0), alternating streamed and non-streamed, and reads the gateway's
VmRSS (/proc/PID/status) after 5,000 requests and after the last one, with samples in between.
Target: the RSS after 50,000 within 10% of the RSS after 5,000. Writes bench/results/memory.md
and bench/results/memory.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import aiohttp
from harness import (
    GATEWAY_CORE,
    LOAD_CORE,
    PROMPT,
    PUBLIC_MODEL,
    PYTHON,
    RESULTS,
    WORK,
    BenchError,
    Processes,
    check_answer,
    group_cpu_s,
    machine,
    now_iso,
    package_versions,
    require_cores,
    rss_kib,
    run_main,
    sigterm_as_exit,
    start_upstream,
    start_warden,
)

TARGET_GROWTH = 0.10
FIRST_SAMPLE = 5_000
SAMPLE_EVERY = 5_000


class Load:
    """``total`` requests over ``concurrency`` keep-alive connections; every answer checked."""

    def __init__(self, url: str, total: int, concurrency: int, pid: int) -> None:
        self.url = url
        self.total = total
        self.concurrency = concurrency
        self.pid = pid
        self.issued = 0
        self.done = 0
        self.errors = 0
        self.first_error = ""
        self.samples: list[dict[str, float]] = []
        self._t0 = 0.0
        self._bodies = {
            stream: json.dumps({"model": PUBLIC_MODEL, "stream": stream,
                                "messages": [{"role": "user", "content": PROMPT}]}).encode()
            for stream in (False, True)
        }

    def _sample(self) -> None:
        self.samples.append({"requests": self.done, "rss_kib": rss_kib(self.pid),
                             "elapsed_s": round(time.monotonic() - self._t0, 2)})

    def _finish(self, ok: bool, what: str) -> None:
        self.done += 1
        if not ok:
            self.errors += 1
            self.first_error = self.first_error or what
        if self.done == FIRST_SAMPLE or self.done % SAMPLE_EVERY == 0 or self.done == self.total:
            self._sample()

    async def _one(self, session: aiohttp.ClientSession, stream: bool) -> None:
        headers = {"content-type": "application/json"}
        try:
            async with session.post(self.url, data=self._bodies[stream], headers=headers) as resp:
                raw = await resp.read()
            if stream:
                ok = resp.status == 200 and raw.rstrip().endswith(b"data: [DONE]")
            else:
                ok = resp.status == 200 and b'"finish_reason":"stop"' in raw
            self._finish(ok, f"{resp.status} {raw[:300]!r}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._finish(False, repr(exc))

    async def _worker(self, session: aiohttp.ClientSession) -> None:
        while self.issued < self.total:
            n = self.issued
            self.issued += 1
            await self._one(session, stream=n % 2 == 1)

    async def run(self) -> float:
        self._t0 = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(*(self._worker(session) for _ in range(self.concurrency)))
        return time.monotonic() - self._t0


def markdown(result: dict[str, object]) -> str:
    samples: list[dict[str, float]] = result["samples"]  # type: ignore[assignment]
    first, last = result["rss_first_kib"], result["rss_last_kib"]
    growth = result["growth"]
    ok = abs(growth) <= TARGET_GROWTH  # type: ignore[arg-type]
    lines = [
        "# Gateway memory",
        "",
        f"{result['date']} · {result['machine']['cpu_model']} · "  # type: ignore[index]
        f"warden {result['versions']['warden']} · "  # type: ignore[index]
        f"{result['requests']:,} requests (half streamed), concurrency {result['concurrency']}, "
        f"{result['rps']:,.0f} req/s, {result['errors']} errors",
        "",
        "| after requests | VmRSS MiB | vs after 5,000 |",
        "|---:|---:|---:|",
    ]
    for s in samples:
        lines.append(f"| {int(s['requests']):,} | {s['rss_kib'] / 1024:.1f} "
                     f"| {100 * (s['rss_kib'] / first - 1):+.1f}% |")  # type: ignore[operator]
    lines += [
        "",
        f"RSS at start (after the two check requests): {result['rss_start_kib'] / 1024:.1f} MiB. "  # type: ignore[operator]
        f"After {FIRST_SAMPLE:,}: {first / 1024:.1f} MiB; after {result['requests']:,}: "  # type: ignore[operator]
        f"{last / 1024:.1f} MiB; ratio {result['ratio']:.3f} "  # type: ignore[operator]
        f"({100 * growth:+.1f}%): target within ±10% "  # type: ignore[operator]
        f"{'✅' if ok else '❌'}",
        "",
        f"Pinning: warden alone on core {GATEWAY_CORE}; the fake upstream and this script's "
        f"aiohttp client on core {LOAD_CORE}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.requests < FIRST_SAMPLE:
        raise BenchError(f"--requests must be at least {FIRST_SAMPLE}")
    sigterm_as_exit()
    require_cores()
    info = machine()
    os.sched_setaffinity(0, {LOAD_CORE})
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    versions = package_versions(PYTHON, ["warden", "starlette", "uvicorn", "aiohttp"])

    with Processes(WORK) as procs:
        _, up_port = start_upstream(procs, LOAD_CORE)
        gw, port = start_warden(procs, up_port, GATEWAY_CORE)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        for stream in (False, True):
            check_answer(url, stream, {}, PUBLIC_MODEL)
        rss_start = rss_kib(gw.pid)
        load = Load(url, args.requests, args.concurrency, gw.pid)
        cpu0 = group_cpu_s(gw.pid)
        print(f"warden pid {gw.pid}: RSS {rss_start / 1024:.1f} MiB; sending "
              f"{args.requests:,} requests ...", flush=True)
        elapsed = asyncio.run(load.run())
        cpu = group_cpu_s(gw.pid) - cpu0
        if gw.popen.poll() is not None:
            raise BenchError(f"warden exited during the run; its log:\n{gw.tail()}")

    first = next(s for s in load.samples if s["requests"] == FIRST_SAMPLE)["rss_kib"]
    last = load.samples[-1]["rss_kib"]
    result: dict[str, object] = {
        "date": now_iso(), "machine": info, "versions": versions,
        "requests": args.requests, "concurrency": args.concurrency, "errors": load.errors,
        "first_error": load.first_error, "elapsed_s": round(elapsed, 2),
        "rps": round(args.requests / elapsed, 1), "gateway_cpu_s": round(cpu, 2),
        "rss_start_kib": rss_start, "rss_first_kib": first, "rss_last_kib": last,
        "ratio": round(last / first, 4), "growth": round(last / first - 1, 4),
        "samples": load.samples,
    }
    for s in load.samples:
        print(f"  after {int(s['requests']):>6,} requests: RSS {s['rss_kib'] / 1024:7.1f} MiB")
    print(f"RSS after {FIRST_SAMPLE:,}: {first / 1024:.1f} MiB, after {args.requests:,}: "
          f"{last / 1024:.1f} MiB, ratio {last / first:.3f} ({100 * (last / first - 1):+.1f}%)")
    report = markdown(result)
    (RESULTS / "memory.md").write_text(report)
    (RESULTS / "memory.json").write_text(json.dumps(result, indent=2) + "\n")
    print(report)
    print(f"wrote {RESULTS / 'memory.md'} and {RESULTS / 'memory.json'}")
    if load.errors:
        print(f"error: {load.errors} failed requests; first: {load.first_error}", file=sys.stderr)
        return 1
    return 0 if abs(last / first - 1) <= TARGET_GROWTH else 1


if __name__ == "__main__":
    run_main(main)
