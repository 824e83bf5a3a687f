"""The guardrail evaluation table: ``warden guard eval`` on the held-out data, and the latency of
all input scanners together.

    .venv/bin/python bench/guard.py [--data ../shared/data]

1. **Injection** (``injection`` scanner, default threshold 0.5): the held-out part of every
   source (``warden.guard.injection.corpus.split``; NotInject two and three, alone and under a
   system prompt, are never trained on) is written as JSONL to a temporary folder outside the
   repository, each text with the system prompt it was sent under where it has one (PurpleLlama's
   cases, and the benign sets put under a system prompt), and ``warden guard eval --scanner
   injection --json`` runs on each file; once more on all of them with the system prompts left
   out, to show what reading them adds, and once with the second stage on (``semantic=true``,
   the embedding model; per set, see scripts/train_injection.py).
2. **PII** (``pii`` scanner): ``warden guard eval --part held-back --json`` on
   ``pii/presidio_synth_dataset_v2.json``, regex only and with ``ner=true``.
3. **Latency**: every input scanner that needs no model (pii without NER, secrets, injection,
   hidden_text, banned_substrings, banned_topics, token_limit, toxicity) run one after the other
   on each of 200 real 60-word prompts; p50 and p95 of the whole set per prompt, with the
   injection scanner's defaults (the first stage alone) and with its second stage on. Then the injection
   scanner alone on the same prompts, without and with a system prompt (an app's assistant
   prompt, ``corpus.APP_PROMPT``), in both modes.

Results: a table on stdout, bench/results/guard.md and .json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import ROOT, WARDEN, BenchError, machine, now_iso, run_main, save_results

from warden.guard.base import ScanContext, Scanner
from warden.guard.injection import corpus
from warden.plugins import ScannerRegistry, make_plugin_manager

DATA = ROOT.parent / "shared" / "data"
INPUT_SCANNERS: dict[str, dict[str, Any]] = {
    "pii": {}, "secrets": {}, "injection": {}, "hidden_text": {},
    "banned_substrings": {"substrings": ["confidential", "internal only"]},
    "banned_topics": {"topics": {"weapons": ["explosive", "detonator", "firearm"]}},
    "token_limit": {}, "toxicity": {},
}


def eval_cli(scanner: str, path: Path, *extra: str) -> dict[str, Any]:
    res = subprocess.run([str(WARDEN), "guard", "eval", "--scanner", scanner, "--input",
                          str(path), "--json", *extra], capture_output=True, text=True,
                         timeout=1800)
    if res.returncode != 0:
        raise BenchError(f"warden guard eval {scanner} {path.name}: {res.stderr[-800:]}")
    return dict(json.loads(res.stdout))


ALL = "all attacks and benign texts"
WITHHELD = "the same, system prompts left out"
SECOND = "the same, with the second stage (semantic: true)"
NOT_LOGIC = "all but the logic-violating attacks"


def trained_on(name: str) -> str:
    """What of a held-out set's source the model was trained on."""
    if name in (ALL, WITHHELD, SECOND, NOT_LOGIC):
        return "other part, or never"
    return "never" if name in corpus.EVAL_ONLY else "other part"


def _line(s: corpus.Sample, with_system: bool) -> str:
    row: dict[str, Any] = {"text": s.text, "label": s.label}
    if with_system and s.system is not None:
        row["system"] = s.system
    return json.dumps(row) + "\n"


def injection_rows(data: Path, folder: Path) -> list[dict[str, Any]]:
    _, held = corpus.split(corpus.load(data))
    sources = sorted({s.source for s in held})
    groups = {ALL: held, WITHHELD: held, SECOND: held,
              NOT_LOGIC: [s for s in held if s.source != corpus.CONTEXT_DEPENDENT]}
    groups.update({source: [s for s in held if s.source == source] for source in sources})
    rows = []
    for name, samples in groups.items():
        path = folder / (corpus.slug(name) + ".jsonl")
        path.write_text("".join(_line(s, name != WITHHELD) for s in samples))
        report = eval_cli("injection", path, *(("--option", "semantic=true") if name == SECOND else ()))
        attacks = sum(1 for s in samples if s.label == corpus.ATTACK)
        rows.append({"set": name, "attacks": attacks, "benign": len(samples) - attacks,
                     "system_prompts": sum(1 for s in samples if s.system) if name != WITHHELD else 0,
                     "trained_on": trained_on(name), **report})
    return rows


def _prompts(data: Path) -> list[str]:
    """Up to 200 real prompts of at least 60 words (self-instruct), cut to 60."""
    prompts = []
    for line in (data / "benign" / "selfinstruct_user_oriented.jsonl").read_text().splitlines():
        row = json.loads(line)
        words = (row["instruction"] + " " + " ".join(
            i.get("input", "") for i in row.get("instances", []))).split()
        if len(words) >= 60:
            prompts.append(" ".join(words[:60]))
    if not prompts:
        raise BenchError("no 60-word prompts found in the benign set")
    return prompts[:200]


def _timed(scanners: list[Scanner], prompts: list[str], ctx: ScanContext) -> dict[str, float]:
    """p50 and p95 (ms) of running every scanner on one prompt, over five passes."""
    for s in scanners:
        s.scan(prompts[0], ctx)  # load what loads lazily
    per_prompt = []
    for _ in range(5):
        for p in prompts:
            t0 = time.perf_counter()
            for s in scanners:
                s.scan(p, ctx)
            per_prompt.append((time.perf_counter() - t0) * 1000)
    per_prompt.sort()
    return {"p50_ms": statistics.median(per_prompt),
            "p95_ms": per_prompt[int(0.95 * (len(per_prompt) - 1))]}


def latency(data: Path) -> dict[str, Any]:
    registry = ScannerRegistry(make_plugin_manager())
    prompts = _prompts(data)
    bare = ScanContext(where="input")
    system = ScanContext(where="input", system_prompt=corpus.APP_PROMPT.format(app="Gmail"))
    out: dict[str, Any] = {"prompts": len(prompts)}
    for mode, semantic in (("", False), ("semantic_", True)):
        scanners: list[Scanner] = [
            registry.get(n, n).from_options(o | ({"semantic": semantic} if n == "injection" else {}))
            for n, o in INPUT_SCANNERS.items()]
        [injection] = [s for s in scanners if s.name == "injection"]
        if semantic and not injection.blocking:
            raise BenchError("the embedding model is not installed: pip install 'warden[local]'")
        out[f"{mode}all"] = _timed(scanners, prompts, bare)
        out[f"{mode}injection"] = _timed([injection], prompts, bare)
        out[f"{mode}injection_with_system_prompt"] = _timed([injection], prompts, system)
    return out


def markdown(inj: list[dict[str, Any]], pii: dict[str, dict[str, Any]],
             lat: dict[str, Any]) -> str:
    out = [f"# Guardrail evaluation\n\n{now_iso()} · {machine()['cpu_model']} · "
           f"{machine()['cpus']} cores · produced by `warden guard eval` (bench/guard.py)\n",
           "## Prompt injection and jailbreaks (`injection`, threshold 0.5), held-out data\n",
           "Each text is scanned with the system prompt it was sent under, where it has one "
           "(ScanContext.system_prompt, as in the gateway).\n",
           "| held-out set | trained on | attacks | benign | with system prompt | precision | "
           "recall | F1 | false-positive rate | p50 ms |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in inj:
        recall = f"{r['recall']:.3f}" if r["attacks"] else "n/a"
        fpr = f"{r['false_positive_rate']:.3f}" if r["benign"] else "n/a"
        prec = f"{r['precision']:.3f}" if r["attacks"] else "n/a"
        f1 = f"{r['f1']:.3f}" if r["attacks"] else "n/a"
        out.append(f"| {r['set']} | {r['trained_on']} | {r['attacks']} | {r['benign']} | "
                   f"{r['system_prompts']} | {prec} | {recall} | {f1} | {fpr} | "
                   f"{r['latency_ms']['p50']:.2f} |")
    out += ["", "## PII (`pii`), held-back part of presidio_synth_dataset_v2.json, "
            "character level\n",
            "| mode | precision | recall | F1 | false-positive rate | p50 ms | p95 ms |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for mode, r in pii.items():
        out.append(f"| {mode} | {r['precision']:.3f} | {r['recall']:.3f} | **{r['f1']:.3f}** | "
                   f"{r['false_positive_rate']:.4f} | {r['latency_ms']['p50']:.2f} | "
                   f"{r['latency_ms']['p95']:.2f} |")
    out += ["", "## All input scanners together, no NER engine\n",
            f"{', '.join(INPUT_SCANNERS)} on each of {lat['prompts']} real 60-word prompts "
            "(self-instruct), five passes (target: p50 ≤ 2 ms). `injection` alone on the same "
            "prompts, and under a system prompt (an app assistant's, `corpus.APP_PROMPT`).\n",
            "| what | default (first stage alone): p50 ms | p95 ms | with the second stage "
            "(semantic: true): p50 ms | p95 ms |",
            "|---|---:|---:|---:|---:|"]
    for key, what in (("all", "**all input scanners**"), ("injection", "`injection` alone"),
                      ("injection_with_system_prompt", "`injection` alone, under a system prompt")):
        off, on = lat[key], lat[f"semantic_{key}"]
        out.append(f"| {what} | {off['p50_ms']:.2f} | {off['p95_ms']:.2f} | {on['p50_ms']:.2f} | "
                   f"{on['p95_ms']:.2f} |")
    out.append("")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    if not args.data.is_dir():
        raise BenchError(f"the shared data sets are not at {args.data}; pass --data")
    with tempfile.TemporaryDirectory(prefix="warden-guard-eval-") as tmp:
        print("injection ...", flush=True)
        inj = injection_rows(args.data, Path(tmp))
    pii_file = args.data / "pii" / "presidio_synth_dataset_v2.json"
    print("pii ...", flush=True)
    pii = {"regex only": eval_cli("pii", pii_file, "--part", "held-back"),
           "with NER (ner=true)": eval_cli("pii", pii_file, "--part", "held-back",
                                           "--option", "ner=true")}
    print("latency ...", flush=True)
    lat = latency(args.data)
    save_results("guard", markdown(inj, pii, lat),
                 {"when": now_iso(), "machine": machine(), "injection": inj, "pii": pii, "latency": lat})
    return 0


if __name__ == "__main__":
    run_main(main)
