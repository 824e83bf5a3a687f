"""One text through every layer: the signals the combiner weighs, computed the same way in the
scanner and in the training script. A system prompt, where the request has one, adds the context
signals (``warden.guard.injection.context``)."""

from __future__ import annotations

from dataclasses import dataclass

from warden.guard.injection import context, features, heuristics
from warden.guard.injection.heuristics import FAMILIES, ROLEPLAY, Hit
from warden.guard.injection.model import Model
from warden.guard.injection.normalise import Normalised, normalise

HIDDEN_CHARS_SIGNAL = 0.5  # invisible characters in a prompt are odd, but not an attack alone
# The classifier only knows the vocabulary it was trained on: text in another language or script
# gets a very negative logit for want of evidence, not because it is benign. Below this floor its
# word no longer outweighs a pattern that matched.
CLASSIFIER_FLOOR = -1.0


@dataclass(slots=True, frozen=True)
class Analysis:
    """What the layers read: the normalised views, their n-grams and the heuristic hits."""

    norm: Normalised
    grams: features.Grams
    decoded: tuple[features.Grams, ...]
    hits: list[Hit]  # on the normalised text itself
    patterns: frozenset[str]  # every pattern that matched, in any view
    families: dict[str, float]  # strongest hit per family, over every view
    obfuscation: float  # how much the revealed or decoded views added
    context: dict[str, float]  # the context signals; empty without a system prompt

    def first_hit(self) -> Hit | None:
        """The strongest hit on the normalised text (earliest among equals)."""
        return max(self.hits, key=lambda h: (h.weight, -h.start), default=None)


def analyse(text: str, *, max_chars: int, decode_blobs: bool = True,
            rules: context.Rules | None = None) -> Analysis:  # fmt: skip
    """Normalise ``text``, run the heuristics on every view and hash its n-grams; with the
    ``rules`` of the request's system prompt (``context.read``), compare the two.

    The heuristics read the whole text; the n-gram layers and the context signals read its first
    ``max_chars`` characters, which bounds their cost on very long inputs."""
    norm = normalise(text, decode_blobs=decode_blobs)
    hits = heuristics.find(norm.text)
    families = heuristics.strongest(hits)
    patterns = {h.pattern for h in hits}
    obfuscation = HIDDEN_CHARS_SIGNAL if norm.hidden else 0.0
    for view in (norm.revealed, *norm.decoded):
        if not view:
            continue
        more = heuristics.find(view)
        patterns.update(h.pattern for h in more)
        for family, weight in heuristics.strongest(more).items():
            if weight > families[family]:
                obfuscation = max(obfuscation, weight)
                families[family] = weight
    ctx: dict[str, float] = {}
    if rules is not None:
        views = (norm.text[:max_chars], norm.revealed[:max_chars], *(d[:max_chars] for d in norm.decoded))
        ctx = context.signals(rules, views)
    return Analysis(
        norm=norm,
        grams=features.grams(norm.text[:max_chars]),
        decoded=tuple(features.grams(d[:max_chars]) for d in norm.decoded),
        hits=hits,
        patterns=frozenset(patterns),
        families=families,
        obfuscation=obfuscation,
        context=ctx,
    )


def classifier_logit(a: Analysis, model: Model) -> float:
    """The classifier's logit: the text's, or a decoded blob's where that is higher."""
    return max(model.linear.logit(features.buckets(g, model.linear.bits)) for g in (a.grams, *a.decoded))


def signals(a: Analysis, classifier: float, similarity: float) -> dict[str, float]:
    """The combiner's inputs by name: the layers' scores and the context signals
    (``model.SIGNALS``), and one indicator per pattern that matched (``pattern:<name>``)."""
    out = {
        "classifier": max(classifier, CLASSIFIER_FLOOR),
        "similarity": similarity,
        **{f: a.families[f] for f in FAMILIES},
        "obfuscation": a.obfuscation,
        **a.context,
    }
    out.update((f"pattern:{name}", 1.0) for name in a.patterns)
    return out


def score(a: Analysis, model: Model) -> tuple[float, str]:
    """(probability that the text is an attack, ``jailbreak`` or ``prompt_injection``)."""
    sim, kind = model.bank.score(features.shingles(a.grams, model.sample))
    p = model.combiner.probability(signals(a, classifier_logit(a, model), sim))
    jailbreak = a.families[ROLEPLAY] > max(a.families[f] for f in FAMILIES if f != ROLEPLAY)
    return p, "jailbreak" if jailbreak or (sim >= 0.5 and kind == "jailbreak") else "prompt_injection"
