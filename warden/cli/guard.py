"""``warden guard eval``: measure a guard scanner on labelled data."""

from __future__ import annotations

import json
from typing import Any

import click
import yaml
from pydantic import ValidationError

from warden.errors import ConfigError
from warden.guard.base import Scanner
from warden.guard.evaluate import EvalInputError, Part, Report, evaluate, load, select
from warden.plugins import ScannerRegistry, make_plugin_manager


@click.group("guard")
def guard_group() -> None:
    """Measure the guard scanners."""


@guard_group.command("eval")
@click.option("--scanner", "scanner_name", required=True, help="The scanner to measure (pii, ...).")
@click.option("--input", "input_path", required=True, metavar="FILE",
              help='JSON Lines of {"text", "label": 0|1} (and optionally "system", the system '
                   'prompt the text was sent under), or a Presidio-style JSON list of '
                   '{"full_text", "spans"}.')
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A scanner option; VALUE is read as YAML (ner=true, min_score=0.6, "
                   "entities=[EMAIL_ADDRESS,PERSON]). Repeat for more.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="A detection counts when its score is at least this.")
@click.option("--part", type=click.Choice(["all", "tuning", "held-back"]), default="all",
              show_default=True, help="Which part of the fixed split to use (see docs/guardrails-pii.md).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def eval_command(scanner_name: str, input_path: str, options: tuple[str, ...], threshold: float,
                 part: Part, as_json: bool) -> None:
    """Run a scanner over labelled data: precision, recall, F1, false positive rate, latency.

    Texts are classified (positive when any detection reaches the threshold); span files are
    scored per character over the gold spans, whatever the entity type.
    """
    try:
        examples = select(load(input_path), part)
        if not examples:
            raise EvalInputError(f"{input_path}: no examples in the {part} part")
        scanner = _build(scanner_name, _parse_options(options))
        report = evaluate(scanner, examples, threshold=threshold)
    except (ConfigError, EvalInputError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(_table(scanner_name, input_path, part, threshold, report))


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r}: write it as KEY=VALUE (for example ner=true)")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--option {pair!r}: the value is not valid YAML ({exc})") from None
    return options


def _build(name: str, options: dict[str, Any]) -> Scanner:
    cls = ScannerRegistry(make_plugin_manager()).get(name, "--scanner")
    try:
        return cls.from_options(options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"--option for scanner '{name}': {problems}") from None


def _table(name: str, path: str, part: str, threshold: float, r: Report) -> str:
    unit = "texts" if r.kind == "texts" else "characters"
    lines = [
        f"{name} on {path} ({part}): {r.n} {'texts' if r.kind == 'texts' else 'texts with spans'},"
        f" threshold {threshold}",
        "",
        f"{'over ' + unit:<16}{'precision':>10}{'recall':>10}{'f1':>10}{'fp rate':>10}",
        f"{'':<16}{r.precision:>10.3f}{r.recall:>10.3f}{r.f1:>10.3f}{r.false_positive_rate:>10.4f}",
        f"latency per text: p50 {r.latency_ms['p50']:.3f} ms, p95 {r.latency_ms['p95']:.3f} ms",
    ]
    if r.entities:
        lines += ["", f"{'gold entity':<20}{'spans':>7}{'span recall':>13}{'char recall':>13}"]
        lines += [f"{k:<20}{int(v['spans']):>7}{v['span_recall']:>13.3f}{v['char_recall']:>13.3f}"
                  for k, v in r.entities.items()]
    if r.detected:
        lines += ["", f"{'detected as':<20}{'spans':>7}{'precision':>13}"]
        lines += [f"{k:<20}{int(v['spans']):>7}{v['precision']:>13.3f}" for k, v in r.detected.items()]
    return "\n".join(lines)
