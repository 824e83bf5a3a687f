"""``warden guard eval``: a labelled JSONL file and a Presidio-style span file built from the real
PII data set, the ``--json`` shape, the table, and bad input answered with a message and exit
status 2 (no traceback)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from warden import plugins
from warden.cli.main import cli
from warden.guard import evaluate
from warden.guard.evaluate import SpanText, load, select
from warden.guard.pii import ner

from .test_config_cli import clean_env, warden_command

SYNTH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pii" / \
    "presidio_synth_dataset_v2.json"
needs_data = pytest.mark.skipif(not SYNTH.is_file(), reason=f"the PII data set is not at {SYNTH}")
IDENTIFIERS = ("EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")


@pytest.fixture(autouse=True)
def pii_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The built-in plugins with the pii scanner among them (until it is wired in by default)."""
    name = "warden.guard.scanners.pii"
    if name not in plugins.DEFAULT_PLUGINS:
        monkeypatch.setattr(plugins, "DEFAULT_PLUGINS", (*plugins.DEFAULT_PLUGINS, name))
    yield


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["guard", "eval", *args], catch_exceptions=False)


def held_back() -> list[SpanText]:
    return [e for e in select(load(SYNTH), "held-back") if isinstance(e, SpanText)]


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """Held-back texts labelled 1 when they hold an identifier with a check digit or a fixed
    shape (e-mail, card, IBAN, SSN, IP), 0 otherwise."""
    path = tmp_path / "texts.jsonl"
    rows = [{"text": e.text, "label": int(any(g.entity in IDENTIFIERS for g in e.spans))}
            for e in held_back()]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def span_file(tmp_path: Path) -> Path:
    path = tmp_path / "spans.json"
    items = [{"full_text": e.text, "spans": [
        {"entity_type": g.entity, "start_position": g.start, "end_position": g.end} for g in e.spans]}
        for e in held_back()[:80]]
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


@needs_data
def test_labelled_texts_are_classified(labelled: Path) -> None:
    result = run("--scanner", "pii", "--input", str(labelled), "--json",
                 "--option", f"entities=[{','.join(IDENTIFIERS)}]")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "texts"
    assert report["n"] == len(labelled.read_text("utf-8").splitlines())
    assert report["precision"] >= 0.95 and report["recall"] >= 0.95
    assert report["false_positive_rate"] <= 0.02
    c = report["counts"]
    assert c["tp"] + c["fp"] + c["fn"] + c["tn"] == report["n"]


@needs_data
def test_a_span_file_is_scored_per_character_and_the_json_is_one_object(span_file: Path) -> None:
    result = run("--scanner", "pii", "--input", str(span_file), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"precision", "recall", "f1", "false_positive_rate", "latency_ms", "n"} <= set(report)
    assert set(report["latency_ms"]) == {"p50", "p95"}
    assert report["n"] == 80 and report["kind"] == "spans"
    c = report["counts"]
    assert report["precision"] == round(c["tp"] / (c["tp"] + c["fp"]), 4)
    assert report["false_positive_rate"] == round(c["fp"] / c["outside"], 4)
    assert 0.9 <= report["precision"] <= 1 and 0.4 <= report["recall"] <= 1
    assert report["entities"]["STREET_ADDRESS"]["char_recall"] >= 0.9
    assert "STREET_ADDRESS" in report["detected"]


@needs_data
def test_the_table_names_the_figures(span_file: Path) -> None:
    result = run("--scanner", "pii", "--input", str(span_file), "--threshold", "0.7")
    assert result.exit_code == 0, result.output
    assert "precision" in result.stdout and "p50" in result.stdout
    assert "STREET_ADDRESS" in result.stdout and "threshold 0.7" in result.stdout


@needs_data
def test_the_part_option_picks_one_side_of_the_split(tmp_path: Path) -> None:
    result = run("--scanner", "pii", "--input", str(SYNTH), "--json", "--part", "held-back")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == len(held_back())


@needs_data
@pytest.mark.skipif(any(importlib.util.find_spec(m) is None
                        for m in ("presidio_analyzer", "spacy", ner.MODEL)),
                    reason="the ner extra is not installed (pip install -e '.[ner]')")
def test_options_reach_the_scanner(span_file: Path) -> None:
    plain = json.loads(run("--scanner", "pii", "--input", str(span_file), "--json").stdout)
    result = run("--scanner", "pii", "--input", str(span_file), "--json", "--option", "ner=true")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["recall"] > plain["recall"] + 0.2


@pytest.mark.parametrize(("content", "args", "message"), [
    (None, (), "no such file"),
    ('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n{"text": "c", "label": \n', (), "line 3"),
    ('{"text": "a", "label": 2}\n', (), '"label" must be the number 0 or 1'),
    ('[{"full_text": "abc", "spans": [{"entity_type": "X", "start_position": 2, "end_position": 9}]}]',
     (), "item 0, span 0"),
    ("", (), "no examples"),
    ('{"text": "a", "label": 1}\n', ("--option", "ner"), "KEY=VALUE"),
    ('{"text": "a", "label": 1}\n', ("--option", "min_score=7"), "min_score"),
    ('{"text": "a", "label": 1}\n', ("--option", "colour=blue"), "colour"),
    ('{"text": "a", "label": true}\n', (), '"label" must be the number 0 or 1, not true'),
    ('{"text": "a", "label": 1.0}\n', (), '"label" must be the number 0 or 1'),
    ('{"text": "a", "label": 1}\n' + '{"text": ' * 100_000 + "\n", (), "line 2: JSON nested too deeply"),
    ("[" * 100_000, (), "nested too deeply"),
    ('[{"full_text": "abc", "spans": [{"entity_type": "X", "start_position": false, '
     '"end_position": true}]}]', (), "item 0, span 0"),
])
def test_bad_input_is_an_error_message_and_exit_status_2(
        tmp_path: Path, content: str | None, args: tuple[str, ...], message: str) -> None:
    path = tmp_path / "input.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = run("--scanner", "pii", "--input", str(path), *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_an_over_long_line_or_file_is_refused(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "' + "b" * 200 + '", "label": 0}\n',
                    encoding="utf-8")
    monkeypatch.setattr(evaluate, "MAX_LINE_CHARS", 100)
    result = run("--scanner", "pii", "--input", str(path))
    assert result.exit_code == 2 and "line 2: longer than 100 characters" in result.stderr
    monkeypatch.setattr(evaluate, "MAX_INPUT_BYTES", 100)
    result = run("--scanner", "pii", "--input", str(path))
    assert result.exit_code == 2 and "larger than" in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_only_a_regular_file_is_read(tmp_path: Path, kind: str) -> None:
    # From the real command, with a timeout: a FIFO without a writer blocks its reader, and
    # /dev/zero never ends.
    path = {"fifo": tmp_path / "fifo", "device": Path("/dev/zero"), "directory": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    result = subprocess.run([*warden_command(), "guard", "eval", "--scanner", "pii",
                             "--input", str(path)], capture_output=True, text=True, timeout=60,
                            env=clean_env(), check=False)
    assert result.returncode == 2
    assert "not a regular file" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_scanner_lists_the_known_ones_from_the_real_command(tmp_path: Path) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text('{"text": "a", "label": 1}\n', encoding="utf-8")
    result = subprocess.run([*warden_command(), "guard", "eval", "--scanner", "nosuch",
                             "--input", str(path)], capture_output=True, text=True, timeout=60,
                            env=clean_env(), check=False)
    assert result.returncode == 2
    assert "unknown scanner 'nosuch'" in result.stderr and "installed scanners:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_file_from_the_real_command(tmp_path: Path) -> None:
    result = subprocess.run([*warden_command(), "guard", "eval", "--scanner", "pii",
                             "--input", str(tmp_path / "nope.jsonl"), "--json"],
                            capture_output=True, text=True, timeout=60, env=clean_env(), check=False)
    assert result.returncode == 2
    assert "nope.jsonl: no such file" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
