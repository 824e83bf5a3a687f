"""``refusal``: answers in which the model declines ("I can't help with that", "As an AI
language model, I ...").

It feeds the quality monitors (refusal rate by model, key and prompt kind) rather than a block
policy. A refusal phrase in the first ``lead_chars`` characters of the answer scores 1.0 (the
answer is a refusal); one further on scores 0.5 (a partial refusal or a disclaimer inside an
answer). One detection per answer, spanning the first phrase found.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import Field

from warden.guard.base import Detection, ScanContext, Scanner, ScannerOptions
from warden.guard.text import fold
from warden.hookspecs import hookimpl

_NOT = (r"(?: can(?:no|')t| can ?not| won't| will not| must (?:decline|refuse) to| (?:do not|don't) feel"
        r" comfortable|(?:'m| am) (?:not able to|unable to|not comfortable|not going to))")
_HELP = (r"(?:help|assist|provide|fulfil|fulfill|comply|do that|do this|create|generate|write|answer|engage"
         r"|support|share|give|offer|continue|produce|participate|discuss|complete)\b(?! but\b)")
_PHRASES = (
    rf"\bi(?: really| simply| just)?{_NOT}(?: \w+){{0,2}}? {_HELP}",
    r"\bi(?:'m| am) (?:really |very )?sorry,? (?:but )?i (?:can(?:no|')t|can ?not|won't|am unable|'m unable)",
    r"\bi apologi[sz]e,? (?:but )?i (?:can(?:no|')t|can ?not|won't|am unable|'m unable)",
    r"\bas an ai(?: language model| model| assistant| developed by [\w ]{1,40})?,? i (?:can(?:no|')t|can ?not"
    r"|don't|do not|am not|'m not|won't|am unable|'m unable|must)",
    r"\bas an ai language model\b",
    r"\bi (?:must|have to|need to) (?:respectfully |politely )?(?:decline|refuse)\b",
    r"\b(?:that|this|it|your request) (?:is|goes) against (?:my|openai's|the) (?:guidelines|policies|policy"
    r"|programming|principles|ethical guidelines|content policy|usage policies)\b",
    r"\bi'?m not (?:able|allowed|permitted) to (?:help|assist|provide|share|discuss)\b",
    r"\b(?:it(?:'s| is)|that(?:'s| is)|this is) not appropriate for me to\b",
    r"\bi (?:can(?:no|')t|can ?not|won't) (?:and won't |and will not )?(?:help|assist) (?:you )?"
    r"with (?:that|this)\b",
    r"\bunfortunately,? i (?:can(?:no|')t|can ?not|am unable to|'m unable to|won't be able to)\b",
    r"\bi won't be able to (?:help|assist|provide|do|fulfil|fulfill|create|write)\b",
)
_APOSTROPHES = str.maketrans("\u2019\u2018\u02bc", "'''")


class RefusalOptions(ScannerOptions):
    lead_chars: int = Field(
        200, ge=0, description="A phrase starting within this many characters of the answer's start "
        "makes the answer a refusal (score 1.0); later ones score 0.5.")
    phrases: list[str] = Field(
        default_factory=list, description="More refusal phrases (plain text, matched as whole words "
        "ignoring case), e.g. a deployment's own canned refusal.")


class RefusalScanner(Scanner):
    """Refusal phrases in an answer: type ``refusal``."""

    name = "refusal"
    directions = frozenset({"output"})
    whole_text = True  # whether an answer is a refusal depends on where the phrase is in it
    options_model = RefusalOptions

    def __init__(self, options: ScannerOptions) -> None:
        super().__init__(options)
        assert isinstance(options, RefusalOptions)
        self.opts = options
        extra = [rf"(?<!\w){re.escape(fold(p).text.translate(_APOSTROPHES))}(?!\w)"
                 for p in options.phrases if p.strip()]
        self._pattern = re.compile("|".join([*_PHRASES, *extra]))

    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        folded = fold(text)
        m = self._pattern.search(folded.text.translate(_APOSTROPHES))
        if m is None:
            return []
        start, end = folded.span(*m.span())
        lead = len(text) - len(text.lstrip())
        score = 1.0 if start - lead <= self.opts.lead_chars else 0.5
        return [Detection("refusal", score, start, end)]


@hookimpl
def register_scanners(register: Callable[[type[Scanner]], None]) -> None:
    register(RefusalScanner)
