"""The gateway benchmark: direct to a fake upstream, through Warden, through the LiteLLM proxy.

    .venv/bin/python bench/gateway.py [--quick]

One run, one machine, one fake upstream (``warden.testing.upstream``). For each target and for
non-streamed and streamed chat completions it measures, with wrk, after a warm-up:

* concurrency 1: p50 / p99 latency, and the latency a gateway adds to the direct figures;
* saturation (concurrency 64 by default): requests/s and p99, with the busy share of each core.

Pinning (2 cores): the gateway under test runs alone on core 1; wrk and the upstream share
core 0. In the direct case wrk stays on core 0 and the upstream gets core 1 to itself.
Results: a markdown table on stdout and in bench/results/gateway.md, raw numbers in
bench/results/gateway.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import (
    GATEWAY_CORE,
    LOAD_CORE,
    PUBLIC_MODEL,
    PYTHON,
    RESULTS,
    UPSTREAM_MODEL,
    VENVS,
    WORK,
    BenchError,
    CoreMeter,
    Proc,
    Processes,
    chat_body,
    check_answer,
    free_port,
    group_cpu_s,
    machine,
    now_iso,
    package_versions,
    pinned,
    require_cores,
    run_main,
    sigterm_as_exit,
    start_upstream,
    start_warden,
    wait_http,
    wait_quiet,
)

LITELLM_VENV = VENVS / "litellm"
TARGET_ADDED_P50_MS = 1.0
TARGET_RPS_RATIO = 10.0
NOISE_SHARE = 0.05  # other processes above this share of a core make a run noisy
NOISY_RETRIES = 2   # a noisy run is measured again, at most this many more times
QUIET_WAIT_S = 60.0  # before measuring again, wait at most this long for the machine to calm

# wrk calls response() for every answer, so every answer is checked, not only counted:
# a 200 whose body lacks the marker (a stream without [DONE], an error event) is "bad".
_LUA = r"""
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{headers}
local marker = [==[{marker}]==]
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) good = 0; bad = 0; first_bad = "" end
function response(status, headers, body)
  if status == 200 and string.find(body, marker, 1, true) then
    good = good + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 300) end
  end
end
function done(summary, latency, requests)
  local g, b, fb = 0, 0, ""
  for _, t in ipairs(threads) do
    g = g + t:get("good"); b = b + t:get("bad")
    if fb == "" then fb = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"good":%d,"bad":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"p999_us":%.1f,"mean_us":%.1f,"max_us":%.1f}}\n',
    summary.requests, summary.duration, g, b, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max))
  if fb ~= "" then io.write("WRKBAD " .. fb .. "\n") end
end
"""


@dataclass
class Run:
    """One wrk measurement."""

    target: str
    stream: bool
    concurrency: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float
    errors: int
    first_error: str = ""
    core_busy_pct: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)  # per process, during the run

    tries: int = 1  # measurements made, when noise forced more than one

    def noise_share(self) -> float:
        """The larger share of a core that other people's processes took during the run."""
        return max(self.cpu_s.get("foreign_gateway_core", 0.0),
                   self.cpu_s.get("foreign_load_core", 0.0)) / self.duration_s

    def cpu_us_per_request(self, who: str) -> float | None:
        spent = self.cpu_s.get(who)
        return None if spent is None or not self.requests else 1e6 * spent / self.requests


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    watch: dict[str, Proc]  # "gateway", "upstream": whose CPU time each run records


# --- tools --------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BenchError("wrk is not installed: install it (Debian/Ubuntu: "
                         "sudo apt-get install -y wrk) and run again")
    print("wrk is missing: installing it with apt-get ...", flush=True)
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"]).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=False)
        if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"]).returncode != 0:
            raise BenchError("apt-get could not install wrk; install it by hand and run again")
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk still not found on PATH after apt-get install")
    return found


def ensure_litellm() -> Path:
    """LiteLLM in its own venv (bench/.venvs/litellm), created on first use and then reused."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    print(f"installing litellm[proxy] into {LITELLM_VENV} (a few minutes, once) ...", flush=True)
    LITELLM_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    if subprocess.run([*pip, "litellm[proxy]"]).returncode != 0 or not exe.exists():
        raise BenchError(f"pip could not install litellm[proxy] into {LITELLM_VENV}; "
                         "delete that folder and run again, or pass --no-litellm")
    return exe


def wrk_version(wrk: str) -> str:
    res = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
    return (res.stdout + res.stderr).splitlines()[0].split(" [")[0].strip()  # "wrk 4.1.0"


# --- measuring ----------------------------------------------------------------------------------


def lua_script(target: Target, stream: bool) -> Path:
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in target.headers.items())
    marker = "[DONE]" if stream else '"finish_reason":"stop"'
    path = WORK / f"wrk-{target.name}-{'stream' if stream else 'json'}.lua"
    path.write_text(_LUA.format(body=chat_body(stream).decode(), headers=headers, marker=marker))
    return path


def wrk_run(wrk: str, target: Target, stream: bool, concurrency: int, duration_s: float,
            ) -> Run:
    script = lua_script(target, stream)
    cmd = pinned([wrk, "-t1", f"-c{concurrency}", f"-d{duration_s:g}s", "--timeout", "10s",
                  "--latency", "-s", str(script), target.url], LOAD_CORE)
    meter = CoreMeter()
    cpu0 = {who: group_cpu_s(p.pid) for who, p in target.watch.items()}
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    meter.start()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    busy = meter.stop()
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = {who: round(group_cpu_s(p.pid) - cpu0[who], 3) for who, p in target.watch.items()}
    cpu["wrk"] = round(kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime, 3)
    ours = self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime
    # Process time on each core that none of our processes account for: somebody else's
    # work competing for the cores (interrupt time is left out: it follows our own traffic).
    on_gateway_core = cpu.get("upstream" if target.name == "direct" else "gateway", 0.0)
    on_load_core = cpu["wrk"] + ours + (0.0 if target.name == "direct"
                                        else cpu.get("upstream", 0.0))
    cpu["foreign_gateway_core"] = round(
        max(0.0, meter.process_s.get(f"cpu{GATEWAY_CORE}", 0.0) - on_gateway_core), 3)
    cpu["foreign_load_core"] = round(
        max(0.0, meter.process_s.get(f"cpu{LOAD_CORE}", 0.0) - on_load_core), 3)
    line = next((x for x in res.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if res.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({res.returncode}) on {target.url}:\n"
                         f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    d = json.loads(line[len("WRKJSON "):])
    bad = next((x[7:] for x in res.stdout.splitlines() if x.startswith("WRKBAD ")), "")
    errors = (d["bad"] + d["connect_errors"] + d["read_errors"] + d["write_errors"]
              + d["timeouts"])
    secs = d["duration_us"] / 1e6
    return Run(target=target.name, stream=stream, concurrency=concurrency, duration_s=secs,
               requests=d["good"], rps=round(d["good"] / secs, 1),
               p50_ms=d["p50_us"] / 1e3, p90_ms=d["p90_us"] / 1e3, p99_ms=d["p99_us"] / 1e3,
               p999_ms=d["p999_us"] / 1e3, mean_ms=round(d["mean_us"] / 1e3, 3),
               max_ms=d["max_us"] / 1e3, errors=errors, first_error=bad.strip(),
               core_busy_pct=busy, cpu_s=cpu)


def measure(wrk: str, target: Target, levels: list[int], duration_s: float, warmup_s: float,
            ) -> list[Run]:
    for stream in (False, True):
        check_answer(target.url, stream, target.headers, PUBLIC_MODEL)
    runs = []
    for stream in (False, True):
        for conc in levels:
            wrk_run(wrk, target, stream, conc, warmup_s)  # warm-up, discarded
            tries: list[Run] = []
            for _ in range(NOISY_RETRIES + 1):
                run = wrk_run(wrk, target, stream, conc, duration_s)
                tries.append(run)
                _print_run(run)
                if run.noise_share() <= NOISE_SHARE:
                    break
                print(f"    noisy: other processes took {100 * run.noise_share():.0f}% of a "
                      "core; measuring again", flush=True)
                wait_quiet([LOAD_CORE, GATEWAY_CORE], 100 * NOISE_SHARE, QUIET_WAIT_S)
            best = min(tries, key=Run.noise_share)
            best.tries = len(tries)
            runs.append(best)
    return runs


def _print_run(run: Run) -> None:
    mode = "stream" if run.stream else "json"
    print(f"  {run.target:8} {mode:6} c={run.concurrency:<3} {run.rps:9.1f} req/s  "
          f"p50 {run.p50_ms:7.3f} ms  p99 {run.p99_ms:7.3f} ms  errors {run.errors}  "
          f"core busy % {run.core_busy_pct}  cpu s {run.cpu_s}", flush=True)
    if run.errors:
        print(f"    first error: {run.first_error[:300]}", flush=True)


# --- the targets --------------------------------------------------------------------------------


def litellm_config(upstream_port: int, path: Path) -> Path:
    path.write_text(
        "model_list:\n"
        f"  - model_name: {PUBLIC_MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{UPSTREAM_MODEL}\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        "      api_key: sk-fake-upstream\n"
        "litellm_settings:\n"
        "  set_verbose: false\n"
        "  json_logs: false\n"
        "  turn_off_message_logging: true\n"
        "  request_timeout: 60\n"
        "general_settings:\n"
        "  master_key: os.environ/LITELLM_MASTER_KEY\n"
        "  disable_spend_logs: true\n"
        "  disable_reset_budget: true\n"
        "  disable_prisma_schema_update: true\n"
    )
    return path


def litellm_env(master_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL", "VIRTUAL_ENV")}
    env.update({
        "LITELLM_MASTER_KEY": master_key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",   # no fetch of the cost map from GitHub
        "LITELLM_TELEMETRY_DISABLED": "true",     # no telemetry export
        "LITELLM_LOG": "ERROR",
        "DISABLE_ADMIN_UI": "True",
        "NO_DOCS": "True",
        "HOME": str(WORK / "litellm-home"),       # anything it caches stays under bench/.work
    })
    (WORK / "litellm-home").mkdir(parents=True, exist_ok=True)
    return env


def run_direct(procs: Processes, wrk: str, args: argparse.Namespace) -> list[Run]:
    up, port = start_upstream(procs, GATEWAY_CORE)
    print(f"upstream pid {up.pid} on core {GATEWAY_CORE}, port {port}", flush=True)
    try:
        target = Target("direct", f"http://127.0.0.1:{port}/v1/chat/completions", {},
                        {"upstream": up})
        return measure(wrk, target, args.levels, args.duration, args.warmup)
    finally:
        procs.stop(up)


def run_warden(procs: Processes, wrk: str, args: argparse.Namespace) -> list[Run]:
    up, up_port = start_upstream(procs, LOAD_CORE)
    gw, port = start_warden(procs, up_port, GATEWAY_CORE)
    print(f"warden pid {gw.pid} on core {GATEWAY_CORE}, port {port}", flush=True)
    try:
        target = Target("warden", f"http://127.0.0.1:{port}/v1/chat/completions", {},
                        {"gateway": gw, "upstream": up})
        return measure(wrk, target, args.levels, args.duration, args.warmup)
    finally:
        procs.stop(gw)
        procs.stop(up)


def run_litellm(procs: Processes, wrk: str, args: argparse.Namespace, exe: Path) -> list[Run]:
    up, up_port = start_upstream(procs, LOAD_CORE)
    key = "sk-bench-" + secrets.token_hex(16)
    port = free_port()
    cfg = litellm_config(up_port, WORK / "litellm.yaml")
    gw = procs.start("litellm", pinned([str(exe), "--config", str(cfg), "--host", "127.0.0.1",
                                       "--port", str(port), "--num_workers", "1"], GATEWAY_CORE),
                     env=litellm_env(key), cwd=WORK)
    try:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", gw, 180)
        print(f"litellm pid {gw.pid} on core {GATEWAY_CORE}, port {port}", flush=True)
        target = Target("litellm", f"http://127.0.0.1:{port}/v1/chat/completions",
                        {"Authorization": f"Bearer {key}"}, {"gateway": gw, "upstream": up})
        return measure(wrk, target, args.levels, args.duration, args.warmup)
    finally:
        procs.stop(gw)
        procs.stop(up)


# --- the report ---------------------------------------------------------------------------------


def _find(runs: list[Run], target: str, stream: bool, conc: int) -> Run | None:
    return next((r for r in runs if r.target == target and r.stream == stream
                 and r.concurrency == conc), None)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def summarize(runs: list[Run], sat: int) -> dict[str, object]:
    """Added latency vs direct, and Warden's throughput as a multiple of LiteLLM's."""
    out: dict[str, object] = {}
    for stream in (False, True):
        mode = "stream" if stream else "json"
        direct1 = _find(runs, "direct", stream, 1)
        for name in ("warden", "litellm"):
            r1 = _find(runs, name, stream, 1)
            if r1 and direct1:
                out[f"{name}_{mode}_added_p50_ms"] = round(r1.p50_ms - direct1.p50_ms, 3)
                out[f"{name}_{mode}_added_p99_ms"] = round(r1.p99_ms - direct1.p99_ms, 3)
        w, lt = _find(runs, "warden", stream, sat), _find(runs, "litellm", stream, sat)
        if w and lt and lt.rps:
            out[f"warden_vs_litellm_{mode}_rps_ratio"] = round(w.rps / lt.rps, 1)
    return out


def markdown(runs: list[Run], summary: dict[str, object], meta: dict[str, object],
             sat: int) -> str:
    lines = [
        "# Gateway benchmark",
        "",
        f"{meta['date']} · {meta['machine']['cpu_model']} · {meta['machine']['cpus']} cores · "  # type: ignore[index]
        f"Python {meta['machine']['python']} · {meta['wrk']} · "  # type: ignore[index]
        f"{meta['duration_s']:g} s per measurement after {meta['warmup_s']:g} s warm-up",
        "",
        "Chat completions, a 5-word prompt echoed by the fake upstream as a 5-word answer "
        "(streamed: 8 SSE events). Latency is to the last byte of the answer.",
        "",
        f"| target | mode | c=1 p50 ms | c=1 p99 ms | added p50 ms | added p99 ms "
        f"| c={sat} req/s | c={sat} p50 ms | c={sat} p99 ms | server CPU µs/req "
        f"| core busy % (0 / 1) | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("direct", "warden", "litellm"):
        for stream in (False, True):
            mode = "stream" if stream else "json"
            r1, rs = _find(runs, name, stream, 1), _find(runs, name, stream, sat)
            if not r1 and not rs:
                continue
            added = summary.get(f"{name}_{mode}_added_p50_ms")
            added99 = summary.get(f"{name}_{mode}_added_p99_ms")
            busy = (f"{rs.core_busy_pct.get(f'cpu{LOAD_CORE}', 0):.0f} / "
                    f"{rs.core_busy_pct.get(f'cpu{GATEWAY_CORE}', 0):.0f}") if rs else "-"
            errors = sum(r.errors for r in (r1, rs) if r)
            server = rs.cpu_us_per_request("upstream" if name == "direct" else "gateway") \
                if rs else None
            lines.append(
                f"| {name} | {mode} | {_ms(r1.p50_ms if r1 else None)} "
                f"| {_ms(r1.p99_ms if r1 else None)} "
                f"| {'-' if added is None else f'{added:+.3f}'} "
                f"| {'-' if added99 is None else f'{added99:+.3f}'} "
                f"| {f'{rs.rps:,.0f}' if rs else '-'} | {_ms(rs.p50_ms if rs else None)} "
                f"| {_ms(rs.p99_ms if rs else None)} "
                f"| {'-' if server is None else f'{server:,.0f}'} | {busy} | {errors} |")
    lines += ["", "## Targets", "", "| target | json | stream |", "|---|---|---|"]

    def verdict(value: object, ok: bool, unit: str) -> str:
        return "not measured" if value is None else f"{value}{unit} {'✅' if ok else '❌'}"

    row = ["Warden added p50 at c=1 ≤ 1 ms"]
    for mode in ("json", "stream"):
        v = summary.get(f"warden_{mode}_added_p50_ms")
        row.append(verdict(v, isinstance(v, float) and v <= TARGET_ADDED_P50_MS, " ms"))
    lines.append("| " + " | ".join(row) + " |")
    row = [f"Warden req/s at c={sat} ≥ 10x LiteLLM"]
    for mode in ("json", "stream"):
        v = summary.get(f"warden_vs_litellm_{mode}_rps_ratio")
        row.append(verdict(v, isinstance(v, float) and v >= TARGET_RPS_RATIO, "x"))
    lines.append("| " + " | ".join(row) + " |")
    noisy = [r for r in runs if r.noise_share() > NOISE_SHARE]
    if noisy:
        def where(r: Run) -> str:
            g = 100 * r.cpu_s.get("foreign_gateway_core", 0.0) / r.duration_s
            lo = 100 * r.cpu_s.get("foreign_load_core", 0.0) / r.duration_s
            return (f"{r.target} {'stream' if r.stream else 'json'} c={r.concurrency} "
                    f"({lo:.0f}% of core {LOAD_CORE}, {g:.0f}% of core {GATEWAY_CORE})")
        lines += ["", f"Noise: other processes on the machine took more than "
                  f"{100 * NOISE_SHARE:.0f}% of a core, after {NOISY_RETRIES} retries, during: "
                  + ", ".join(where(r) for r in noisy) + ". Load on core "
                  f"{LOAD_CORE} slows the load side (it matters at c=1, less at saturation when "
                  f"the gateway's core is still ~100% its own); load on core {GATEWAY_CORE} "
                  "slows the gateway. Rerun on a quiet machine before trusting those rows."]
    lines += [
        "",
        "## Setup",
        "",
        f"- Pinning: the gateway under test alone on core {GATEWAY_CORE}; wrk and the fake "
        f"upstream share core {LOAD_CORE}. Direct: wrk on core {LOAD_CORE}, the upstream alone "
        f"on core {GATEWAY_CORE}.",
        "- Load: wrk, 1 thread, closed loop (each connection sends its next request when the "
        "answer is in), keep-alive; every answer is checked (200 and `[DONE]` / "
        "`\"finish_reason\":\"stop\"` in the body), anything else counts as an error.",
        "- \"added\" = the gateway's figure minus the direct figure, same mode, concurrency 1.",
        f"- Noise: a run during which other processes took more than {100 * NOISE_SHARE:.0f}% "
        f"of either core is measured again (at most {NOISY_RETRIES} more times, after waiting "
        "for quiet); the quietest is kept.",
        "- server CPU µs/req: CPU time (user + system) of the gateway's process group during "
        "the saturation run divided by the requests answered (for direct: the upstream's); "
        "core busy %: from /proc/stat over the same run (core 0: wrk + upstream behind a "
        "gateway; core 1: the gateway, or the upstream alone in the direct case).",
        "- Warden: `warden serve --log-level warning`, one model, one `openai` deployment, "
        "default routing. LiteLLM: `litellm --num_workers 1`, no database, "
        "`LITELLM_LOCAL_MODEL_COST_MAP=True`, telemetry and spend logs off, master key auth.",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}.",  # type: ignore[attr-defined]
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s measurements, 1 s warm-ups.")
    parser.add_argument("--concurrency", type=int, default=64, help="Saturation concurrency.")
    parser.add_argument("--no-litellm", action="store_true", help="Skip the LiteLLM proxy.")
    args = parser.parse_args()
    args.duration, args.warmup = (3.0, 1.0) if args.quick else (10.0, 2.0)
    args.levels = [1, args.concurrency]
    sigterm_as_exit()
    require_cores()
    os.sched_setaffinity(0, {LOAD_CORE})  # keep this orchestrator off the gateway's core
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)

    wrk = ensure_wrk()
    litellm = None if args.no_litellm else ensure_litellm()
    versions = package_versions(PYTHON, ["warden", "starlette", "uvicorn", "uvloop",
                                         "httptools", "aiohttp", "orjson"])
    if litellm is not None:
        versions["litellm"] = package_versions(LITELLM_VENV / "bin" / "python",
                                               ["litellm"])["litellm"]
    meta: dict[str, object] = {
        "date": now_iso(), "machine": machine(), "wrk": wrk_version(wrk), "versions": versions,
        "duration_s": args.duration, "warmup_s": args.warmup, "concurrency": args.levels,
        "pinning": {"load_core": LOAD_CORE, "gateway_core": GATEWAY_CORE},
    }
    runs: list[Run] = []
    started = time.monotonic()
    wait_quiet([LOAD_CORE, GATEWAY_CORE], 100 * NOISE_SHARE, QUIET_WAIT_S)
    with Processes(WORK) as procs:
        runs += run_direct(procs, wrk, args)
        runs += run_warden(procs, wrk, args)
        if litellm is not None:
            runs += run_litellm(procs, wrk, args, litellm)
    summary = summarize(runs, args.concurrency)
    report = markdown(runs, summary, meta, args.concurrency)
    print()
    print(report)
    (RESULTS / "gateway.md").write_text(report)
    (RESULTS / "gateway.json").write_text(json.dumps(
        {**meta, "summary": summary, "runs": [asdict(r) for r in runs],
         "wall_s": round(time.monotonic() - started, 1)}, indent=2) + "\n")
    print(f"wrote {RESULTS / 'gateway.md'} and {RESULTS / 'gateway.json'}")
    failed = [r for r in runs if r.errors]
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main)
