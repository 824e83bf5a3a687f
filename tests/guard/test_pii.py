"""The ``pii`` scanner on real texts: the held-back part of the Presidio synthetic data set (see
docs/guardrails-pii.md for the split), benign instruction and math texts, and numbers whose
check digit was broken on purpose.

The NER tests need the ``ner`` extra (``pip install -e '.[ner]'``) and are skipped without it."""

from __future__ import annotations

import importlib.util
import itertools
import json
import statistics
import threading
import time

import pluggy
import pytest
from pydantic import ValidationError

from tests.guard.shared import DATA
from warden import hookspecs
from warden.errors import ConfigError
from warden.guard.base import Detection, ScanContext, Scanner
from warden.guard.evaluate import SpanText, evaluate, load, select
from warden.guard.pii import checksums, ner
from warden.guard.pii.spans import Span, resolve
from warden.guard.scanners import pii as pii_module
from warden.guard.scanners.pii import NerPiiScanner, PiiScanner
from warden.plugins import ScannerRegistry, make_plugin_manager

SYNTH = DATA / "pii" / "presidio_synth_dataset_v2.json"
pytestmark = pytest.mark.skipif(not SYNTH.is_file(), reason=f"the PII data set is not at {SYNTH}")
CTX = ScanContext(where="input")
HAS_NER = all(importlib.util.find_spec(m) is not None
              for m in ("presidio_analyzer", "spacy", ner.MODEL))
needs_ner = pytest.mark.skipif(not HAS_NER, reason="the ner extra is not installed "
                               "(pip install -e '.[ner]')")


@pytest.fixture(scope="module")
def held_back() -> list[SpanText]:
    return [e for e in select(load(SYNTH), "held-back") if isinstance(e, SpanText)]


@pytest.fixture(scope="module")
def every_text() -> list[SpanText]:
    return [e for e in load(SYNTH) if isinstance(e, SpanText)]


@pytest.fixture(scope="module")
def regex() -> Scanner:
    return PiiScanner.from_options({})


@pytest.fixture(scope="module")
def with_ner() -> Scanner:
    return PiiScanner.from_options({"ner": True})


def gold(examples: list[SpanText], entity: str) -> list[tuple[str, int, int]]:
    return [(e.text, g.start, g.end) for e in examples for g in e.spans if g.entity == entity]


def covering(found: list[Detection], start: int, end: int, entity: str) -> bool:
    return any(d.type == entity and d.start is not None and d.end is not None
               and d.start <= start and end <= d.end for d in found)


@pytest.mark.parametrize("entity", ["EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN", "IP_ADDRESS"])
def test_every_gold_identifier_in_the_held_back_part_is_found(
        held_back: list[SpanText], regex: Scanner, entity: str) -> None:
    spans = gold(held_back, entity)
    assert spans, f"the held-back part has no {entity}"
    missed = [text[s:e] for text, s, e in spans if not covering(regex.scan(text, CTX), s, e, entity)]
    assert not missed, f"{entity} not found: {missed}"


def test_every_gold_iban_is_found(every_text: list[SpanText], regex: Scanner) -> None:
    # All 21 IBANs of the data set fell in the tuning part; the recognizer is a checksum and
    # was not tuned on them, so the whole set is the test here.
    spans = gold(every_text, "IBAN_CODE")
    assert len(spans) == 21
    missed = [t[s:e] for t, s, e in spans if not covering(regex.scan(t, CTX), s, e, "IBAN_CODE")]
    assert not missed


def test_a_card_number_with_one_digit_changed_fails_luhn_and_is_not_reported(
        held_back: list[SpanText], regex: Scanner) -> None:
    cards = gold(held_back, "CREDIT_CARD")
    for text, s, e in cards:
        last = int(text[e - 1])
        broken = text[:e - 1] + str((last + 1) % 10) + text[e:]
        assert not checksums.luhn("".join(c for c in broken[s:e] if c.isdigit()))
        assert not any(d.type == "CREDIT_CARD" for d in regex.scan(broken, CTX)), broken[s:e]


def test_an_iban_with_one_character_changed_fails_mod_97_and_is_not_reported(
        every_text: list[SpanText], regex: Scanner) -> None:
    for text, s, e in gold(every_text, "IBAN_CODE"):
        digit = text[e - 1]
        broken = text[:e - 1] + str((int(digit) + 1) % 10) + text[e:]
        assert not checksums.iban(broken[s:e].upper())
        assert not any(d.type == "IBAN_CODE" for d in regex.scan(broken, CTX)), broken[s:e]


def test_addresses_phone_numbers_and_ages_are_found_without_ner(
        held_back: list[SpanText], regex: Scanner) -> None:
    report = evaluate(regex, held_back)
    assert report.entities["STREET_ADDRESS"]["char_recall"] >= 0.9
    assert report.entities["PHONE_NUMBER"]["span_recall"] >= 0.75
    assert report.entities["AGE"]["span_recall"] >= 0.9
    assert report.precision >= 0.93 and report.f1 >= 0.72


@needs_ner
def test_with_ner_the_held_back_character_f1_is_at_least_0_80(
        held_back: list[SpanText], with_ner: Scanner) -> None:
    report = evaluate(with_ner, held_back)
    assert report.f1 >= 0.80, report.to_dict()
    assert report.precision >= 0.85
    assert report.entities["PERSON"]["char_recall"] >= 0.7


@needs_ner
def test_ner_finds_people_places_and_organisations(with_ner: Scanner) -> None:
    text = "Mr. Ferko Takáts flew from Budapest to meet the Deloitte team."
    found = {(d.type, text[d.start:d.end]) for d in with_ner.scan(text, CTX) if d.start is not None}
    assert ("PERSON", "Mr. Ferko Takáts") in found  # the title joins the name
    assert ("LOCATION", "Budapest") in found
    assert ("ORGANIZATION", "Deloitte") in found
    text = "Zoolander is a 2017 Polish comedy directed by Maciej Borkowski and starring Borkowski"
    last = [d for d in with_ner.scan(text, CTX) if d.end == len(text)]
    assert last and text[last[0].start:] == "Borkowski"  # a surname repeated alone


@needs_ner
def test_the_model_loads_once_when_threads_scan_at_the_same_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    loads = []
    real = ner._load

    def counted() -> object:
        loads.append(1)
        return real()

    monkeypatch.setattr(ner, "_load", counted)
    scanner = PiiScanner.from_options({"ner": True})
    text = "Contact Angela Merkel at angela@example.de about the Berlin office."
    results: list[list[Detection]] = []
    threads = [threading.Thread(target=lambda: results.append(scanner.scan(text, CTX)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1
    assert len(results) == 4 and all(r == results[0] for r in results)


def test_ner_without_the_extra_is_a_config_error_that_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "presidio_analyzer" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'warden\[ner\]'"):
        PiiScanner.from_options({"ner": True})


def test_ner_scanners_run_in_a_worker_thread_and_regex_ones_do_not() -> None:
    assert isinstance(PiiScanner.from_options({"ner": HAS_NER}), NerPiiScanner) is HAS_NER
    assert PiiScanner.from_options({}).blocking is False
    if HAS_NER:
        assert PiiScanner.from_options({"ner": True}).blocking is True


def test_benign_texts_give_few_findings_and_no_identifiers(regex: Scanner) -> None:
    texts: list[str] = []
    for line in (DATA / "benign" / "selfinstruct_user_oriented.jsonl").read_text("utf-8").splitlines():
        row = json.loads(line)
        texts += [row["instruction"], *(i["input"] for i in row["instances"])]
    for line in (DATA / "drift" / "gsm8k_test.jsonl").read_text("utf-8").splitlines():
        texts.append(json.loads(line)["question"])
    kinds = [d.type for t in texts for d in regex.scan(t, CTX)]
    for kind in ("CREDIT_CARD", "IBAN_CODE", "US_SSN", "UK_NINO", "IP_ADDRESS"):
        assert kind not in kinds
    assert kinds.count("STREET_ADDRESS") <= 6
    assert kinds.count("PHONE_NUMBER") <= 2


@pytest.mark.parametrize(("text", "phone"), [
    ("Call me at +1-984-182-0190 tonight", "+1-984-182-0190"),
    ("my number is (579) 888-3058", "(579) 888-3058"),
    ("ring +44 20 7946 0958", "+44 20 7946 0958"),
    ("mobile: 07700 900123", "07700 900123"),
    ("tel. +33 1 42 68 53 00", "+33 1 42 68 53 00"),
    ("Phone: 0490 75 40 81", "0490 75 40 81"),
    ("fax: +41 (0)96 471 07 95", "+41 (0)96 471 07 95"),
    ("office 345-899-3560x4587", "345-899-3560x4587"),
])
def test_phone_numbers_in_common_formats(regex: Scanner, text: str, phone: str) -> None:
    found = [text[d.start:d.end] for d in regex.scan(text, CTX) if d.type == "PHONE_NUMBER"]
    assert found == [phone]


@pytest.mark.parametrize(("text", "entity", "value"), [
    ("His social security number is 853-37-1694", "US_SSN", "853-37-1694"),
    ("NI number: AB 12 34 56 C", "UK_NINO", "AB 12 34 56 C"),
    ("NHS number 943 476 5919 on file", "UK_NHS", "943 476 5919"),
    ("DNI 12345678Z, please", "ES_NIF", "12345678Z"),
    ("codice fiscale RSSMRA85T10A562S", "IT_FISCAL_CODE", "RSSMRA85T10A562S"),
    ("server at 2001:db8::8a2e:370:7334 is down", "IP_ADDRESS", "2001:db8::8a2e:370:7334"),
    ("wire it to DE89 3704 0044 0532 0130 00 today", "IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
    ("see https://example.com/a?b=1).", "URL", "https://example.com/a?b=1"),
    ("I was born on 12 March 1985", "DATE_TIME", "12 March 1985"),
    ("Write to Rua Diadema 1903, Recife", "STREET_ADDRESS", "Rua Diadema 1903, Recife"),
])
def test_identifiers_are_found_with_their_exact_span(
        regex: Scanner, text: str, entity: str, value: str) -> None:
    found = [(d.type, text[d.start:d.end]) for d in regex.scan(text, CTX) if d.start is not None]
    assert (entity, value) in found


@pytest.mark.parametrize("text", [
    "SSN 666-12-3456", "SSN 000-12-3456", "SSN 900-70-1234 is not an SSN",
    "NI number: BG 12 34 56 C", "NHS number 943 476 5918", "DNI 12345678A",
    "Version 1.2.3.4 of the app", "order 1234 5678 9012 3456 shipped",
])
def test_invalid_identifiers_are_not_reported(regex: Scanner, text: str) -> None:
    kinds = {d.type for d in regex.scan(text, CTX)}
    assert not kinds & {"US_SSN", "UK_NINO", "UK_NHS", "ES_NIF", "IP_ADDRESS", "CREDIT_CARD"}


@pytest.mark.parametrize(("text", "entity", "value"), [
    ("mail \uff4a\uff41\uff4e\uff45\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45"
     "\uff0e\uff43\uff4f\uff4d now", "EMAIL_ADDRESS",
     "\uff4a\uff41\uff4e\uff45\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e"
     "\uff43\uff4f\uff4d"),
    ("mail jane\u200b.doe@exam\u200cple.com now", "EMAIL_ADDRESS",
     "jane\u200b.doe@exam\u200cple.com"),
    ("card 4111\u00ad1111\u20601111\ufeff1111 ok", "CREDIT_CARD",
     "4111\u00ad1111\u20601111\ufeff1111"),
    ("ssn \u096e\u096b\u0969-\u0969\u096d-\u0967\u096c\u096f\u096a ok", "US_SSN",
     "\u096e\u096b\u0969-\u0969\u096d-\u0967\u096c\u096f\u096a"),
    ("mail j\u043ehn.smith@ex\u0430mple.com ok", "EMAIL_ADDRESS", "j\u043ehn.smith@ex\u0430mple.com"),
    ("write to jane [at] example [dot] com", "EMAIL_ADDRESS", "jane [at] example [dot] com"),
    ("write to jane(at)example.com", "EMAIL_ADDRESS", "jane(at)example.com"),
    ("write to jane at example dot com", "EMAIL_ADDRESS", "jane at example dot com"),
    ("my ssn is 8 5 3 - 3 7 - 1 6 9 4 ok", "US_SSN", "8 5 3 - 3 7 - 1 6 9 4"),
    ("ssn 853.37.1694 ok", "US_SSN", "853.37.1694"),
    ("ssn 853\u201237\u20121694 ok", "US_SSN", "853\u201237\u20121694"),
    ("card 4111.1111.1111.1111 ok", "CREDIT_CARD", "4111.1111.1111.1111"),
    ("card 4111\u00a01111\u20091111\u202f1111 ok", "CREDIT_CARD",
     "4111\u00a01111\u20091111\u202f1111"),
])
def test_disguised_values_are_found_with_the_span_of_the_disguise(
        regex: Scanner, text: str, entity: str, value: str) -> None:
    found = [(d.type, text[d.start:d.end]) for d in regex.scan(text, CTX) if d.start is not None]
    assert (entity, value) in found


@pytest.mark.parametrize("text", [
    "look at example.com for the details", "then look at the dot product", "steps 1 2 3 4 5 6 7 8 9",
    "version 1.2.3.4.5.6.7 is out", "the server 10.20.30.40 is down", "on 12.03.2024 at 10.30",
])
def test_sentences_that_look_like_disguises_are_not_personal_data(regex: Scanner, text: str) -> None:
    kinds = {d.type for d in regex.scan(text, CTX)}
    assert not kinds & {"EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN", "PHONE_NUMBER"}


def test_check_digits() -> None:
    assert checksums.luhn("4111111111111111") and not checksums.luhn("4111111111111112")
    assert checksums.iban("GB82WEST12345698765432") and not checksums.iban("GB82WEST12345698765433")
    assert not checksums.iban("GB82WEST1234569876543")  # one short for GB
    assert checksums.in_aadhaar("2363") and not checksums.in_aadhaar("2364")  # Verhoeff
    assert checksums.card_brand("378282246310005") == "amex"
    assert checksums.us_itin("912701234") and not checksums.us_itin("912401234")


def test_options_choose_entities_and_the_minimum_score() -> None:
    text = "Mail jane@example.com, ref 555-010-4477; 4111 1111 1111 1111."
    every = PiiScanner.from_options({}).scan(text, CTX)
    assert [d.type for d in every] == ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"]
    only_email = PiiScanner.from_options({"entities": ["EMAIL_ADDRESS"]}).scan(text, CTX)
    assert [d.type for d in only_email] == ["EMAIL_ADDRESS"]
    strict = PiiScanner.from_options({"min_score": 0.95}).scan(text, CTX)
    assert [d.type for d in strict] == ["EMAIL_ADDRESS"]
    with pytest.raises(ValidationError, match=r"unknown entity type.*EMAIL"):
        PiiScanner.from_options({"entities": ["EMAIL"]})
    with pytest.raises(ValidationError):
        PiiScanner.from_options({"ner": True, "colour": "blue"})


def test_detections_do_not_overlap_and_stay_inside_the_text(
        held_back: list[SpanText], regex: Scanner) -> None:
    for e in held_back[:200]:
        found = regex.scan(e.text, CTX)
        ends = [(d.start or 0, d.end or 0) for d in found]
        assert all(d.has_span for d in found)
        assert all(0 <= s < t <= len(e.text) for s, t in ends)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(ends))


def test_crossing_candidates_become_their_union_and_inner_ones_go() -> None:
    out = resolve([Span("STREET_ADDRESS", 0.7, 0, 20), Span("LOCATION", 0.85, 15, 30),
                   Span("PERSON", 0.9, 2, 5), Span("EMAIL_ADDRESS", 1.0, 40, 50)])
    assert out == [Span("STREET_ADDRESS", 0.7, 0, 30), Span("EMAIL_ADDRESS", 1.0, 40, 50)]
    same = resolve([Span("PHONE_NUMBER", 1.0, 0, 12), Span("UK_NHS", 1.0, 0, 12)])
    assert same == [Span("UK_NHS", 1.0, 0, 12)]


def test_the_scanner_registers_through_the_hook() -> None:
    pm = pluggy.PluginManager("warden")
    pm.add_hookspecs(hookspecs)
    pm.register(pii_module)
    assert ScannerRegistry(pm).get("pii", "test") is PiiScanner
    installed = ScannerRegistry(make_plugin_manager(entry_points=False))
    if "pii" in installed.names():
        assert installed.get("pii", "test") is PiiScanner


PROMPT_60_WORDS = (
    "Hi team, please update the account for Maria Lopez. Her new email is maria.lopez@example.com "
    "and her phone is +44 20 7946 0958. She moved to 221B Baker Street, London NW1 6XE last "
    "month. Charge the card 4111 1111 1111 1111 for the renewal and send the invoice to her IBAN "
    "GB82 WEST 1234 5698 7654 32 before Friday, thanks.")


def p50_ms(scanner: Scanner, text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        scanner.scan(text, CTX)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def test_latency_of_the_regex_path_on_a_60_word_prompt(regex: Scanner) -> None:
    found = {(d.type, PROMPT_60_WORDS[d.start:d.end]) for d in regex.scan(PROMPT_60_WORDS, CTX)
             if d.start is not None}
    assert found >= {("EMAIL_ADDRESS", "maria.lopez@example.com"),
                     ("PHONE_NUMBER", "+44 20 7946 0958"),
                     ("STREET_ADDRESS", "221B Baker Street, London NW1 6XE"),
                     ("CREDIT_CARD", "4111 1111 1111 1111"),
                     ("IBAN_CODE", "GB82 WEST 1234 5698 7654 32")}
    p50 = p50_ms(regex, PROMPT_60_WORDS, 300)
    print(f"pii (regex) p50 on a 60-word prompt: {p50:.3f} ms")
    assert p50 < 3.0  # about 0.3-0.5 ms on a quiet core; shared CI machines are slower


@needs_ner
def test_latency_with_ner(with_ner: Scanner, held_back: list[SpanText]) -> None:
    with_ner.scan(PROMPT_60_WORDS, CTX)  # loads the model
    times = []
    for e in held_back[:150]:
        t0 = time.perf_counter()
        with_ner.scan(e.text, CTX)
        times.append((time.perf_counter() - t0) * 1000)
    p50 = statistics.median(times)
    print(f"pii (ner) p50 per text: {p50:.2f} ms; 60-word prompt "
          f"{p50_ms(with_ner, PROMPT_60_WORDS, 50):.2f} ms")
    assert p50 < 20.0  # about 4 ms per text on the development machine


@needs_ner
def test_a_long_text_is_scanned_in_pieces_with_the_right_offsets(
        with_ner: Scanner, monkeypatch: pytest.MonkeyPatch) -> None:
    # spaCy refuses texts over a million characters; the pieces are smaller. Here they are
    # made tiny so that a short text needs many.
    monkeypatch.setattr(ner, "_PIECE_CHARS", 500)
    sentence = "Please ask Angela Merkel about the Berlin office before Friday. "
    text = sentence * 40
    found = [(d.type, text[d.start:d.end]) for d in with_ner.scan(text, CTX) if d.start is not None]
    assert found.count(("PERSON", "Angela Merkel")) == 40
    assert found.count(("LOCATION", "Berlin")) == 40
