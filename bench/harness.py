"""What the benchmarks share: started processes that always stop, pinning, ports, configs,
readiness waits, per-core CPU use, and facts about the machine.

Every process is started in its own session (its own process group) and stopped by killing
that group, so a gateway's workers or a shell wrapper never outlive the benchmark.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
WORK = BENCH / ".work"
VENVS = BENCH / ".venvs"
PYTHON = ROOT / ".venv" / "bin" / "python"
WARDEN = ROOT / ".venv" / "bin" / "warden"

LOAD_CORE = 0      # load generator, and the upstream behind a gateway
GATEWAY_CORE = 1   # the gateway under test (or the upstream alone in the direct case)

UPSTREAM_MODEL = "upstream-model"
PUBLIC_MODEL = "bench-model"
PROMPT = "Please answer in five words"  # the fake upstream echoes it: a five-word answer


def run_main(main: Callable[[], int]) -> None:
    """Run a benchmark's main(): its exit code, 2 on a BenchError, 130 on Ctrl-C."""
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


class BenchError(RuntimeError):
    """A benchmark cannot run; the message says what to do."""


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def pinned(cmd: Sequence[str], core: int) -> list[str]:
    """``cmd`` run under ``taskset -c core`` (all its threads and children inherit it)."""
    if shutil.which("taskset") is None:
        raise BenchError("taskset is missing: apt-get install -y util-linux")
    return ["taskset", "-c", str(core), *cmd]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Processes:
    """Starts processes and stops all of them (their whole process groups) on exit."""

    def __init__(self, logdir: Path) -> None:
        self._logdir = logdir
        self._procs: list[Proc] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(self, name: str, cmd: Sequence[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Proc:
        log = self._logdir / f"{name}.log"
        with open(log, "wb") as fh:
            popen = subprocess.Popen(list(cmd), stdout=fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                     start_new_session=True)
        proc = Proc(name, popen, log)
        self._procs.append(proc)
        return proc

    def stop(self, proc: Proc, grace_s: float = 5.0) -> None:
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(grace_s)
        # The leader may be gone while its group lives on (workers, children): kill the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(5)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc)


def sigterm_as_exit() -> None:
    """Make SIGTERM unwind the stack (so ``finally`` blocks stop what we started)."""
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def wait_http(url: str, proc: Proc, timeout_s: float, headers: dict[str, str] | None = None,
              ) -> None:
    """Poll ``url`` until it answers 2xx; fail early when ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise BenchError(f"{proc.name} exited with {proc.popen.returncode} before it was "
                             f"ready; its log ({proc.log}):\n{proc.tail()}")
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as resp:
                if 200 <= resp.status < 300:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BenchError(f"{proc.name} not ready at {url} after {timeout_s:.0f} s ({last}); "
                     f"its log ({proc.log}):\n{proc.tail()}")


def chat_body(stream: bool) -> bytes:
    body: dict[str, object] = {"model": PUBLIC_MODEL, "stream": stream,
                               "messages": [{"role": "user", "content": PROMPT}]}
    return json.dumps(body, separators=(",", ":")).encode()


def check_answer(url: str, stream: bool, headers: dict[str, str], model: str) -> str:
    """One request, checked: a 200 whose answer echoes the prompt. Returns the answer text."""
    body = json.loads(chat_body(stream))
    body["model"] = model
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read().decode()
    except urllib.error.HTTPError as exc:
        raise BenchError(f"{url} answered {exc.code}: {exc.read()[:500]!r}") from None
    if stream:
        events = [line[5:].strip() for line in raw.splitlines() if line.startswith("data:")]
        if not events or events[-1] != "[DONE]":
            raise BenchError(f"{url}: the stream did not end with [DONE]: {raw[:500]!r}")
        text = "".join(
            (c.get("delta") or {}).get("content") or ""
            for e in events[:-1] for c in json.loads(e).get("choices") or ())
    else:
        text = json.loads(raw)["choices"][0]["message"]["content"]
    if text.strip() != PROMPT:
        raise BenchError(f"{url}: unexpected answer {text!r} (expected the echo {PROMPT!r})")
    return text


def warden_config(upstream_port: int, path: Path) -> Path:
    path.write_text(
        "models:\n"
        f"  - name: {PUBLIC_MODEL}\n"
        "    deployments:\n"
        "      - id: fake-upstream\n"
        "        provider: openai\n"
        f"        model: {UPSTREAM_MODEL}\n"
        f"        base_url: http://127.0.0.1:{upstream_port}/v1\n"
    )
    return path


def start_upstream(procs: Processes, core: int, name: str = "upstream") -> tuple[Proc, int]:
    port = free_port()
    proc = procs.start(name, pinned([str(PYTHON), "-m", "warden.testing.upstream",
                                     "--port", str(port)], core), cwd=ROOT)
    wait_http(f"http://127.0.0.1:{port}/health", proc, 30)
    return proc, port


def start_warden(procs: Processes, upstream_port: int, core: int) -> tuple[Proc, int]:
    port = free_port()
    cfg = warden_config(upstream_port, WORK / "warden.yaml")
    proc = procs.start("warden", pinned([str(WARDEN), "serve", "--config", str(cfg),
                                         "--port", str(port), "--log-level", "warning"], core),
                       cwd=ROOT)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, 60)
    return proc, port


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:  # field 5, pgrp, counted after the ")" of the name
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


class CoreMeter:
    """Per-core time between ``start()`` and ``stop()``, from /proc/stat."""

    def __init__(self) -> None:
        self._t0: dict[str, list[int]] = {}
        self.busy_pct: dict[str, float] = {}   # all but idle: processes, interrupts, steal
        self.process_s: dict[str, float] = {}  # user + nice + system: time in processes

    @staticmethod
    def _read() -> dict[str, list[int]]:
        out = {}
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu") and line[3:4].isdigit():
                name, *vals = line.split()
                out[name] = [int(v) for v in vals[:8]]  # user nice system idle iowait irq
        return out                                     # softirq steal

    def start(self) -> None:
        self._t0 = self._read()

    def stop(self) -> dict[str, float]:
        """Busy percent per core (``cpu0``, ``cpu1``, ...)."""
        for name, now in self._read().items():
            d = [b - a for a, b in zip(self._t0.get(name, [0] * 8), now, strict=True)]
            total = sum(d)
            self.busy_pct[name] = round(100.0 * (total - d[3] - d[4]) / total, 1) if total else 0.0
            self.process_s[name] = (d[0] + d[1] + d[2]) / _TICK
        return self.busy_pct


def wait_quiet(cores: Sequence[int], limit_pct: float, max_wait_s: float) -> float:
    """Wait (at most ``max_wait_s``) until ``cores`` run processes less than ``limit_pct``
    of a second; call it when nothing of ours runs. Returns the last busiest share seen."""
    deadline = time.monotonic() + max_wait_s
    said = False
    while True:
        meter = CoreMeter()
        meter.start()
        time.sleep(1.0)
        meter.stop()
        worst = max(100.0 * meter.process_s.get(f"cpu{c}", 0.0) for c in cores)
        if worst < limit_pct or time.monotonic() >= deadline:
            if said:
                print(f"    ... {'quiet now' if worst < limit_pct else 'still busy, going on'} "
                      f"({worst:.0f}%)", flush=True)
            return worst
        if not said:
            print(f"    other processes use {worst:.0f}% of a core; waiting up to "
                  f"{max_wait_s:.0f} s for quiet ...", flush=True)
            said = True


def machine() -> dict[str, object]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu_model": model, "cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}


def package_versions(python: Path, names: Sequence[str]) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            "for n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = 'not installed'\n"
            "print(json.dumps(out))")
    res = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True,
                         timeout=60, check=True)
    return dict(json.loads(res.stdout))


def require_cores() -> None:
    if cpu_count() < 2 or not {LOAD_CORE, GATEWAY_CORE} <= os.sched_getaffinity(0):
        raise BenchError(f"needs cores {LOAD_CORE} and {GATEWAY_CORE}; this process may use "
                         f"{sorted(os.sched_getaffinity(0))}")


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def save_results(name: str, report: str, result: Mapping[str, object]) -> None:
    """Write ``report`` to bench/results/NAME.md and ``result`` to NAME.json, and print both
    the report and where they went."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    md, js = RESULTS / f"{name}.md", RESULTS / f"{name}.json"
    md.write_text(report)
    js.write_text(json.dumps(result, indent=2) + "\n")
    print(report)
    print(f"wrote {md} and {js}")
