"""Garbage-collection pauses at /metrics, and the served process's startup objects frozen out of
the collector's walks (a full collection of a gateway holding the hour blocks of 1,000,000
records paused every thread for ~100 ms)."""

from __future__ import annotations

import gc
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import yaml

from tests.helpers import GatewayThread
from tests.test_server import free_port, wait_listening
from warden.observe.gcpauses import GcPauses


def _samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of the samples of ``name`` in a Prometheus text page."""
    out = {}
    for match in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        out[match.group(1) or ""] = float(match.group(2))
    return out


def test_pauses_are_counted_per_generation_while_started() -> None:
    pauses = GcPauses()
    pauses.start()
    try:
        for _ in range(3):
            gc.collect()
        gc.collect(0)
    finally:
        pauses.stop()
    gc.collect()  # not counted: stopped
    family = next(iter(pauses.collect()))
    counts = {(s.labels["generation"], s.labels.get("le")): s.value for s in family.samples
              if s.name.endswith("_bucket")}
    totals = {s.labels["generation"]: s.value for s in family.samples if s.name.endswith("_count")}
    sums = {s.labels["generation"]: s.value for s in family.samples if s.name.endswith("_sum")}
    assert totals["2"] == 3 and totals["0"] >= 1
    assert counts[("2", "+Inf")] == 3 and sums["2"] > 0
    assert list(pauses.collect())[1].samples[0].value == gc.get_freeze_count()


def test_the_gateway_exports_its_pauses() -> None:
    config = {"models": [{"name": "m", "deployments": [{"id": "f", "provider": "fake"}]}]}
    with GatewayThread(config) as gw:
        gc.collect()
        with urllib.request.urlopen(gw.url + "/metrics") as resp:
            text = resp.read().decode()
    assert _samples(text, "warden_gc_pause_seconds_count")['{generation="2"}'] >= 1
    assert _samples(text, "warden_gc_frozen_objects")[""] == 0  # an app in a test: not frozen


def test_warden_serve_freezes_what_it_made_at_start(tmp_path: Path) -> None:
    path = tmp_path / "warden.yaml"
    path.write_text(yaml.safe_dump({"server": {"data_dir": str(tmp_path)}, "models": [
        {"name": "m", "deployments": [{"id": "f", "provider": "fake"}]}]}))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "warden", "serve", "--config", str(path), "--port", str(port),
         "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
            text = resp.read().decode()
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stderr:
            proc.stderr.close()
    # The modules, config and runtime: tens of thousands of objects no collection walks again.
    assert _samples(text, "warden_gc_frozen_objects")[""] > 20_000


def test_a_collection_while_the_pauses_are_read_does_not_deadlock_the_reader() -> None:
    # Reading the histogram allocates; a collection it triggers calls back into the collector on
    # the same thread, which must not wait for the lock the reader holds.
    pauses = GcPauses()
    pauses.start()
    done = threading.Event()
    old = gc.get_threshold()

    def read() -> None:
        for _ in range(200):
            list(pauses.collect())
        done.set()

    try:
        gc.set_threshold(1, 1, 1)  # a collection at almost every allocation
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(20)
    finally:
        gc.set_threshold(*old)
        pauses.stop()
    assert done.is_set(), "reading the GC pauses deadlocked on a collection it triggered"
