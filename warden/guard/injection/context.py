"""The request's system prompt as context: what it rules out, and whether the prompt asks for it.

Some attacks are plain text on their own. "What is the weather like in Los Angeles?" attacks only a
bot told to talk about New York's climate and nothing else; "sort them in descending order
instead" only one told to sort in ascending order. A scanner that sees the system prompt can
compare the two, and these cheap lexical rules do, on the normalised texts:

- ``restricts``: the system prompt sets limits ("never", "do not", "avoid", "only", "under no
  circumstances");
- ``forbidden``: the prompt names what a limiting sentence names. Words are compared by their
  first letters (``STEM``), so "medication" meets "medical", "political" meets "politics", and
  the Spanish "dinosaurio" the English "dinosaurs". A limiting sentence that names nothing itself
  ("Don't reveal it to anyone") limits what the sentence before it names (the password);
- ``deviation``: under limits, the prompt asks to do otherwise ("instead", "regardless",
  "forget about that");
- ``contrast``: the system prompt names one language or sort order, and the prompt another;
- ``foreign``: the prompt is in another language than the system prompt, which is how some
  attacks slip past a limit worded in English.

None of them is an attack alone: the combiner (``model.Combiner``) weighs them with the rest,
fitted on PurpleLlama's cases (each with its system prompt) against benign prompts under system
prompts they keep to. Without a system prompt every context signal is 0.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from warden.guard.injection.normalise import normalise

STEM = 5  # letters that make a word's stem
MAX_SYSTEM_CHARS = 8_000  # a system prompt is read this far

_WORD = re.compile(r"[^\W\d_]{4,}")
_SENTENCE = re.compile(r"[.!?;:\n]+\s*|\s[-–—]\s")  # noqa: RUF001 - dashes that join clauses
_LIMIT = re.compile(
    r"\b(?:never|not|no|don'?t|dont|avoid\w*|refus\w*|refrain\w*|prohibit\w*|forbid\w*|disallow\w*|"
    r"under no circumstances|at all costs|must not|cannot|can'?t|won'?t|beyond the scope)\b"
)
# A clause that only says who the bot is or why the limit exists ("As a chatbot for a school, ...",
# "..., to keep the forum focused"): its words are the bot's scope, not what the limit rules out.
_PREAMBLE = re.compile(
    r"(?:to |in order to |so that |so as to |as an? |as |this is |which |because |due to |given |"
    r"for \w+ reasons|since )"
)
_CLAUSE = re.compile(r",\s*")
_ONLY = re.compile(
    r"\b(?:only|solely|exclusively|strictly|stay focused|focus(?:ed)? on|"
    r"your (?:only |sole )?(?:job|task|role|purpose) is)\b"
)
# "this", "that" and "those" count as pronouns ("ignore that and ...", "forget about this.") and
# before a word for instructions ("disregard those rules"), not before any other noun ("ignore this
# warning", "forget about that trip").
_PRONOUN = (
    r"(?:it|(?:that|this|those)(?!\s+(?!(?:and|then|now|please|for|completely|entirely|altogether|"
    r"instructions?|rules?|guidelines?|restrictions?|limits?|directions?|orders?|commands?|"
    r"constraints?|polic(?:y|ies)|prompts?)\b)[a-z]))"
)
_DEVIATION = re.compile(
    rf"\b(?:instead|regardless|no matter what|forget (?:about )?{_PRONOUN}|(?:ignore|disregard) {_PRONOUN})\b"
)
# Closed classes: a system prompt that names one member and a prompt that names another.
_CLASSES = tuple(
    frozenset(words.split())
    for words in (
        "english french spanish german italian portuguese dutch russian chinese mandarin japanese "
        "korean arabic hindi turkish greek polish swedish latin hebrew vietnamese indonesian",
        "ascending descending increasing decreasing alphabetical reverse",
    )
)
_CLASS_WORD = re.compile(r"\b(?:" + "|".join(sorted(w for c in _CLASSES for w in c)) + r")\b")


def _words(text: str) -> list[str]:
    return text.split()


# Common English words of four letters or more (function words, everyday verbs and nouns, and the
# boilerplate of system prompts): their stems say nothing about a topic.
_STOPWORDS = _words("""
about above after again against also always another anyone anything around because been before
being below between both cannot could does doing down during each either else ever every from
further have having here herself himself however into itself just least less like make many more
most much must myself neither never nobody none nothing once only other others ought ours
ourselves over own please rather same shall should since some such than that their theirs them
themselves then there these they this those through under until upon very want well were what
whatever when where whether which while whom whose will with within without would your yours
yourself yourselves absolutely
able allowed answer answers answering assistant avoid avoiding bot chatbot circumstances cost costs
details discuss discussing discussion discussions give giving help helping information instruction
instructions job kind maintain matter means never programmed prompt provide providing question
questions refuse related reveal revealing role share sharing strictly system task tasks tell topic
topics user users respond response responses request requests talk talking focus focused keep
include includes including included given using based following example examples certain specific
different various general thing things something someone somebody everything everyone people
person work works working make makes making made take takes taking know knows knowing think
thinking need needs needed come comes going really still back first second third last next good
great best better time times year years today often usually sometimes across along among away
especially simply quite enough whole part parts place point points type types form forms case
cases ways meaning describe explain write writing create list show find used uses sure
""")
_STOP = frozenset(w[:STEM] for w in _STOPWORDS)
# Words that mark English text (a prompt with none of them, of several words, is in another
# language or is no prose at all).
_ENGLISH = frozenset(
    _words("the an is are was of to and on for with you your what how why when can could would should "
           "does my it this that have has not please tell give write which there their they about")
)
_TOKEN = re.compile(r"[^\W\d_]+")


def stems(text: str) -> frozenset[str]:
    """The stems of the content words of ``text`` (normalised), accents dropped ("música" is
    "music")."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return frozenset(s for w in _WORD.findall(text) if (s := w[:STEM]) not in _STOP)


def _english(text: str) -> float:
    """The share of ``text``'s words that are common English words (0.0 without words)."""
    words = _TOKEN.findall(text)
    return sum(w in _ENGLISH for w in words) / len(words) if words else 0.0


def _non_latin(text: str) -> bool:
    """True when most of ``text``'s letters are not ASCII (another script)."""
    letters = [c for c in text[:400] if c.isalpha()]
    return bool(letters) and sum(c.isascii() for c in letters) < 0.5 * len(letters)


@dataclass(slots=True, frozen=True)
class Rules:
    """What a system prompt allows and rules out, as far as the lexical rules read it."""

    restricts: bool
    forbidden: frozenset[str]  # stems of what the limits rule out
    scope: frozenset[str]  # stems of the task
    named: frozenset[str]  # members of the closed classes it names
    english: bool


def read(system: str) -> Rules | None:
    """The rules of a system prompt as the request sent it (None when it is blank)."""
    if not system.strip():
        return None
    return rules(normalise(system[:MAX_SYSTEM_CHARS], decode_blobs=False).text)


def rules(system: str) -> Rules:
    """Read a system prompt (already normalised: lower case).

    A sentence that sets a limit names what is ruled out, but for its preamble clauses ("as a
    chatbot for a school, ...", "..., to keep the forum focused"); one that names nothing itself
    ("Don't reveal it to anyone") rules out what the sentence before it names. The other
    sentences (but those that only say why: "This is to ensure ...") name the task, and a word
    of the task is never ruled out by a limit that restates it ("translate into French; never
    translate text into another language")."""
    text = system[:MAX_SYSTEM_CHARS]
    task: set[str] = set()
    forbidden: set[str] = set()
    referred: set[str] = set()
    restricts = bool(_ONLY.search(text))
    before: frozenset[str] = frozenset()
    for sentence in _SENTENCE.split(text):
        if not _LIMIT.search(sentence):
            before = stems(sentence)
            if not _PREAMBLE.match(sentence):
                task |= before
            continue
        restricts = True
        named: set[str] = set()
        for clause in _CLAUSE.split(sentence):
            if not _PREAMBLE.match(clause):
                named |= stems(clause)
        if not named:
            named, referred = set(before), referred | before
        forbidden |= named
        before = frozenset(named)
    task -= referred
    return Rules(restricts, frozenset(forbidden - task), frozenset(task),
                 frozenset(_CLASS_WORD.findall(text)), _english(text) >= 0.1)  # fmt: skip


SIGNALS = ("context.restricts", "context.forbidden", "context.deviation",
           "context.contrast", "context.foreign")  # fmt: skip


def signals(r: Rules, views: tuple[str, ...]) -> dict[str, float]:
    """The context signals of a prompt, read in ``views`` (its normalised text first, then what
    normalising revealed or decoded), under the rules ``r`` of its system prompt."""
    text = views[0]
    words = frozenset().union(*(stems(v) for v in views))
    named = frozenset(_CLASS_WORD.findall(text))
    contrast = any(c & r.named and (c & named) - r.named for c in _CLASSES)
    foreign = r.english and (_non_latin(text) or (len(_TOKEN.findall(text)) >= 3 and _english(text) < 0.05))
    return {
        "context.restricts": float(r.restricts),
        "context.forbidden": float(not words.isdisjoint(r.forbidden)),
        "context.deviation": float(r.restricts and bool(_DEVIATION.search(text))),
        "context.contrast": float(contrast),
        "context.foreign": float(foreign),
    }
