"""The resource sampler: real readings of this process and host, exported and queryable."""

from __future__ import annotations

import json
import os
import time
import urllib.request

from tests.helpers import GatewayThread
from warden.observe.resources import ResourceSampler


def test_samples_read_this_process_and_host() -> None:
    sampler = ResourceSampler(interval_s=1, keep=3)
    burn_until = time.process_time() + 0.2
    while time.process_time() < burn_until:
        pass  # some CPU for the next reading to see
    for _ in range(5):
        s = sampler.sample()
    assert len(sampler.samples) == 3  # bounded
    with open(f"/proc/{os.getpid()}/status") as f:
        rss_kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    assert abs(s.process_rss_bytes - rss_kib * 1024) < 64 * 1024 * 1024
    assert 0 < s.host_memory_used_bytes < s.host_memory_total_bytes
    assert 0 <= s.host_cpu <= 1
    names = {m.name for m in sampler.collect()}
    assert {"warden_process_resident_memory_bytes", "warden_host_cpu_utilization"} <= names


def test_the_gateway_exports_and_serves_its_samples() -> None:
    admin = "resources-admin"
    config = {"admin_key": admin, "models": [{"name": "m", "deployments": [
        {"id": "f", "provider": "fake"}]}]}
    with GatewayThread(config) as gw:
        with urllib.request.urlopen(urllib.request.Request(
                gw.url + "/metrics", headers={"Authorization": f"Bearer {admin}"})) as resp:
            text = resp.read().decode()
        line = next(ln for ln in text.splitlines()
                    if ln.startswith("warden_process_resident_memory_bytes "))
        assert float(line.split()[1]) > 10 * 1024 * 1024
        req = urllib.request.Request(gw.url + "/api/resources",
                                     headers={"Authorization": f"Bearer {admin}"})
        with urllib.request.urlopen(req) as resp:
            data = json.loads(resp.read())["data"]
        assert data and data[-1]["process_rss_bytes"] > 0
