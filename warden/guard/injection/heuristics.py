"""Hand-written patterns for the shapes attacks take, read on the normalised text.

Four families: instruction override ("ignore all previous instructions"), role-play jailbreaks
(DAN, "developer mode", "no restrictions"), system-prompt extraction ("repeat the text above"),
and delimiter or hidden-instruction injection (fake chat-template tokens, "<SYSTEM MODE>", notes
addressed to the AI inside a document). A pattern's weight is a prior: how sure it is on its
own. The combiner (``model.Combiner``) weighs each family's strongest hit and, where the
training data had a say, corrects each pattern by its own coefficient.

Each pattern carries a few substrings ("needles") of which one must occur before its regex runs:
most text holds none, so a benign prompt costs a handful of substring tests, not regex scans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OVERRIDE, ROLEPLAY, EXTRACTION, DELIMITER = "override", "roleplay", "extraction", "delimiter"
FAMILIES = (OVERRIDE, ROLEPLAY, EXTRACTION, DELIMITER)


@dataclass(slots=True, frozen=True)
class Pattern:
    name: str  # family.slug, as the combiner's coefficients and the docs call it
    family: str
    weight: float
    needles: tuple[str, ...]
    regex: re.Pattern[str]
    word_start: bool  # the match must start a word (checked after the search: see _p)

    def search(self, text: str) -> re.Match[str] | None:
        """The first match in ``text``. A long text is searched only around the needles' places
        (every match holds a needle, and no match is longer than REACH), unless they are many."""
        if len(text) <= 4 * REACH:
            return self._search(text, 0, len(text))
        places: list[int] = []
        for needle in self.needles:
            at = text.find(needle)
            while at >= 0:
                places.append(at)
                if len(places) * 2 * REACH > len(text):
                    return self._search(text, 0, len(text))
                at = text.find(needle, at + 1)
        places.sort()
        lo, hi = 0, 0
        for at in places:
            if at - REACH > hi:  # past the current window: search it before opening the next
                if hi and (m := self._window(text, lo, hi)) is not None:
                    return m
                lo = max(0, at - REACH)
            hi = min(len(text), at + REACH)
        return self._window(text, lo, hi) if hi else None

    def _window(self, text: str, lo: int, hi: int) -> re.Match[str] | None:
        m = self._search(text, lo, hi)
        if m is not None and ((lo and m.start() == lo) or (hi < len(text) and m.end() == hi)):
            # Touching the window's edge, the match may lean on what lies beyond: look again.
            return self._search(text, 0, len(text))
        return m

    def _search(self, text: str, lo: int, hi: int) -> re.Match[str] | None:
        m = self.regex.search(text, lo, hi)
        while m is not None and self.word_start and m.start() and _WORD.match(text, m.start() - 1):
            m = self.regex.search(text, m.start() + 1, hi)
        return m


@dataclass(slots=True, frozen=True)
class Hit:
    """A pattern's first match in a text."""

    pattern: str
    family: str
    weight: float
    start: int
    end: int


_WORD = re.compile(r"\w")
REACH = 320  # characters: longer than any pattern's match


def _p(family: str, slug: str, weight: float, needles: str, *regex: str) -> Pattern:
    # A leading \b stops the regex engine from skipping ahead to the pattern's first letters, which
    # makes a search 4 to 25 times slower on long text: it is checked after the search instead.
    pattern = "".join(regex)
    word_start = pattern.startswith(r"\b")
    compiled = re.compile(pattern[2:] if word_start else pattern)
    return Pattern(f"{family}.{slug}", family, weight, tuple(needles.split("|")), compiled, word_start)


_OVERRIDE_VERB = (
    r"(?:ignore|ignoring|disregard|forget|forgot|forgotten|overlook|skip|neglect|override|bypass|"
    r"discard|abandon|set aside|pay no attention to|do not (?:follow|obey|listen to)|"
    r"don'?t (?:follow|obey|listen to)|stop following|no longer follow)"
)
_OVERRIDE_NEEDLES = (
    "ignor|disregard|forget|forgot|overlook|skip|neglect|overrid|bypass|discard|abandon|aside|attention|"
    "follow|obey|listen"
)
# What an override discards: the prompt's rules. "Ignore the error message" is not one ...
_RULE_WORDS = (
    r"instructions?|directives?|prompts?|rules|guidelines|orders|commands|constraints|restrictions|"
    r"programming|guardrails|polic(?:y|ies)|safeguards|filters|limitations"
)
_RULES = f"(?:{_RULE_WORDS})"
# ... though after "previous" or "above" nearly anything the prompt said is.
_ANYTHING = f"(?:{_RULE_WORDS}|context|messages?|tasks?|training|settings|information|text|content|input)"
_EARLIER = r"(?:previous|previously|prior|preceding|above|earlier|former|foregoing|initial|original|old)"
_NO_LIMITS = (
    r"(?:restrictions|filters?|filtering|censorship|limitations|limits|rules|guidelines|ethics|ethical|"
    r"morals|morality|moral|content polic(?:y|ies)|safety (?:guidelines|measures)|polic(?:y|ies))"
)
_UNBOUND = r"(?:uncensored|unfiltered|unrestricted|amoral|unethical|immoral|evil|rogue|jailbroken|liberated)"
_PROMPT = (
    r"system prompt|system message|(?:initial|original|hidden|secret|previous|above|first|full|exact) "
    r"(?:prompt|instructions?|message|text|words)|instructions (?:you were given|above|given to you)|"
    r"prompt above|pre-?prompt"
)
_AI = r"(?:ai|assistant|language model|llm|chatbot|bot|gpt|chatgpt|model)"

PATTERNS: tuple[Pattern, ...] = (
    # -- instruction override
    _p(OVERRIDE, "previous", 1.0, _OVERRIDE_NEEDLES,
       rf"\b{_OVERRIDE_VERB}\b[^.\n]{{0,30}}?\b{_EARLIER}\b[^.\n]{{0,25}}?\b{_ANYTHING}\b"),
    _p(OVERRIDE, "all-rules", 0.9, _OVERRIDE_NEEDLES,
       rf"\b{_OVERRIDE_VERB}\b[^.\n]{{0,20}}?\b(?:all|any|every)\b[^.\n]{{0,20}}?\b{_RULES}\b"),
    _p(OVERRIDE, "your-rules", 0.6, _OVERRIDE_NEEDLES,
       rf"\b{_OVERRIDE_VERB}\b[^.\n]{{0,12}}?\b(?:your|these|those|the|my)\b[^.\n]{{0,12}}?\b{_RULES}\b"),
    _p(OVERRIDE, "forget-everything", 0.7, "forget|ignore|disregard",
       r"\b(?:forget|ignore|disregard) (?:about )?",
       r"(?:everything|all (?:of )?(?:that|this|the above|previous))\b"),
    _p(OVERRIDE, "new-instructions", 0.7, "instruction|task|rule|prompt",
       r"\b(?:new|updated|real|actual|true|revised|additional|secret) ",
       r"(?:instructions?|task|rules|system prompt)\s*[:\-]"),
    _p(OVERRIDE, "from-now-on", 0.5, "from now on", r"\bfrom now on,? (?:you|your|u)\b"),
    # Not English (the patterns above): "ignore" only with a foreign article after it. The text is
    # case-folded, so a Greek final sigma reads as a medial one.
    _p(OVERRIDE, "multilingual", 1.0,
       "ignor|olvid|oubli|vergiss|vergess|игнор|забуд|指示|指令|说明|지시|निर्देश|αγνοή|talimat",
       # The rest of the verb's word is read at most 200 characters far, and an object inside that
       # word ("ignoreallinstructions", spaced-out letters joined) at most 60: an unbounded \w*
       # there costs a rescan of the whole word at every "ignor" in it, quadratic on one long word.
       r"(?:(?:ignor(?!e\b|ed\b|es\b|ing\b)|olvid|oubli|vergiss|vergess|игнор|забуд)",
       r"(?:\w{0,200}+[^.\n]{0,30}|\w{0,60}(?=instru|anweisung|istruzion|инструкц|указани))",
       r"|ignore (?:as|os|las|los|les|die|le|la)\b[^.\n]{0,30})",
       r"(?:instru\w*|anweisung\w*|istruzion\w*|инструкц\w*|указани\w*)",
       r"|(?:以前|之前|上面|前面|先前|以上|所有)的?(?:指示|指令|说明)|指示を無視|이전 지시|पिछले निर्देश",
       r"|αγνοήστε τισ προηγούμενεσ|önceki talimat"),
    # -- role-play jailbreaks
    _p(ROLEPLAY, "do-anything-now", 1.0, "anything now", r"\bdo anything now\b"),
    _p(ROLEPLAY, "mode-enabled", 1.0, "mode",
       r"\b(?:developer|dev|jailbreak|jailbroken|dan|evil|chaos|anarchy|unfiltered|unrestricted|uncensored|",
       r"opposite|god) mode\b[^.\n]{0,20}?\b(?:enabled|activated|on|output|response)"),
    _p(ROLEPLAY, "mode", 0.6, "mode",
       r"\b(?:developer|jailbreak|jailbroken|dan|evil|chaos|anarchy|unfiltered|unrestricted|uncensored|",
       r"opposite) mode\b"),
    _p(ROLEPLAY, "jailbreak", 0.7, "jailbr", r"\bjailbr(?:eak|oken|eaking)\b"),
    _p(ROLEPLAY, "dan", 0.8, "dan",
       r"\bdan\b[^.\n]{0,40}\b(?:can|will|has|is not|does not|doesn't|stands for|mode)\b"),
    _p(ROLEPLAY, "no-restrictions", 0.7,
       "restrict|filter|censor|limit|rule|guideline|ethic|moral|polic|safety",
       r"\b(?:without|no|free (?:of|from)|not bound by|broken free|break free|unbound by|ignore|ignores|",
       r"bypass|doesn'?t (?:have|follow|care about)|does not (?:have|follow|care about))\b[^.\n]{0,30}?",
       rf"\b{_NO_LIMITS}\b"),
    _p(ROLEPLAY, "become-unfiltered", 0.8, "uncensor|unfilter|unrestrict|amoral|unethical|immoral|evil|rogue|"
       "jailbr|liberat",
       r"\b(?:you are|you're|act as|acting as|pretend to be|pretend you are|you will be|become|simulate|",
       rf"roleplay as|role-play as|play the role of)\b[^.\n]{{0,40}}?\b{_UNBOUND}\b"),
    _p(ROLEPLAY, "unfiltered", 0.4, "uncensor|unfilter|amoral|unrestricted",
       r"\b(?:uncensored|unfiltered|amoral|unrestricted)\b"),
    _p(ROLEPLAY, "stay-in-character", 0.6, "character",
       r"\b(?:stay|staying|remain) in character\b|\bbreak(?:ing)? character\b"),
    _p(ROLEPLAY, "content-policy", 0.5, "polic|guideline",
       r"\b(?:openai|anthropic|content|usage) (?:policy|policies|guidelines)\b"),
    _p(ROLEPLAY, "act-as", 0.3, "act as", r"\bi want you to act as\b"),
    _p(ROLEPLAY, "never-refuse", 0.6, "refus|declin|reject|deny|censor|apolog|warn",
       r"\b(?:never|not|don'?t|do not|cannot|can'?t|won'?t|will not)\s+",
       r"(?:refuse|decline|reject|deny|censor|apologi[sz]e|warn)\b"),
    _p(ROLEPLAY, "two-responses", 0.6, "both|two|🔒|🔓|classic|jailbreak",
       r"\b(?:respond|answer|reply) as both\b",
       r"|\btwo (?:different |separate )?(?:responses|answers|paragraphs)\b",
       r"|\[(?:🔒|🔓|classic|jailbreak)"),
    _p(ROLEPLAY, "names-the-model", 0.3, "gpt|openai|language model",
       r"\b(?:chatgpt|chat gpt|gpt-?[34]|openai|language model)\b"),
    # -- system-prompt and secret extraction
    _p(EXTRACTION, "reveal-prompt", 0.9, "prompt|instruction|message|text|words",
       r"(?:\b(?:reveal|repeat|print|show|output|display|tell me|give me|share|leak|dump|list|spell out|",
       r"write out|write down|recite|provide|disclose|confirm|translate|summari[sz]e|encode|copy)\b",
       r"[^.\n?]{0,40}?|\bwhat(?:'s| is| are| was| were) (?:your|the) )",
       rf"\b(?:{_PROMPT})\b"),
    _p(EXTRACTION, "reveal-secret", 0.8, "password|passcode|pin|secret|api key|credential",
       r"\b(?:reveal|tell me|tell us|give me|send me|share|leak|disclose|confirm|spell out|",
       r"what(?:'s| is| are| was| were))\b[^.\n?]{0,12}?\b(?:your|the) ",
       r"(?:secret(?: key| word| code| phrase)?|password|passcode|pin|api key|credentials)\b"),
    # Asking for the password in other languages; a mere mention ("how to choose a 密码") is not.
    _p(EXTRACTION, "reveal-secret-multilingual", 0.8, "contrase|mot de passe|passwort|password|senha|пароль|"
       "パスワード|密码|비밀번호|पासवर्ड",
       r"(?:cuál|cual) es (?:la|tu|su) contraseña|(?:dame|dime|comparte) (?:la|tu|su) contraseña|",
       r"quel est (?:le|ton|votre) mot de passe|donne[sz]?[- ]moi (?:le|ton|votre) mot de passe|",
       r"(?:was|wie) (?:ist|lautet) (?:das|dein|ihr) passwort|gib mir (?:das|dein|ihr) passwort|",
       r"qual (?:è|e) la (?:tua |sua )?password|qual (?:é|e) a (?:sua |tua )?senha|",
       r"(?:compartilhe|diga|me dê) (?:a )?(?:sua|tua) senha|какой (?:у (?:тебя|вас) )?пароль|",  # noqa: RUF001
       r"(?:скажи|назови|дай)(?:те)? (?:мне )?(?:свой |ваш )?пароль|パスワードは何|密码是什么|",
       r"비밀번호(?:가|는) 뭐|비밀번호(?:가|는) 무엇|पासवर्ड क्या"),
    _p(EXTRACTION, "repeat-above", 0.9, "above|before|so far|preceding|prior",
       r"\b(?:repeat|print|output|return|write|copy)\b[^.\n]{0,20}",
       r"\b(?:everything|all|the (?:text|words|lines)|what(?:ever)?)\b[^.\n]{0,20}",
       r"\b(?:above|before this|so far|preceding|prior)\b"),
    _p(EXTRACTION, "what-were-you-told", 0.8, "told|instructed|instructions",
       r"\bwhat (?:were|are|have) you(?:r)? (?:been )?(?:told|instructed|instructions)\b"),
    _p(EXTRACTION, "system-prompt", 0.4, "system prompt|system message", r"\bsystem (?:prompt|message)\b"),
    _p(EXTRACTION, "begin-reply-with", 0.4, "begin|start",
       r"\b(?:begin|start) your (?:reply|response|answer|output) with\b"),
    # -- delimiters and hidden instructions
    _p(DELIMITER, "chat-template", 1.0, "im_|endoftext|eot_id|header_id|inst]|<<sys|sys>>",
       r"<\|?(?:im_start|im_end|endoftext|eot_id|start_header_id|end_header_id)\|?>|\[/?inst\]|<</?sys>>"),
    _p(DELIMITER, "mode-tag", 0.9, "mode",
       r"[<\[]\s*(?:system|god|admin|developer|debug|maintenance|sudo|root)[ _-]?mode",
       r"(?: activated)?\s*[>\]]"),
    _p(DELIMITER, "mode-name", 0.5, "mode",
       r"\b(?:system|god|admin|developer|debug|maintenance|sudo|root|override) mode\b"),
    _p(DELIMITER, "system-tag", 0.6, "system|admin|sys|instruction",
       r"<\s*/?\s*(?:system|admin|sys|instructions?)\s*>"),
    _p(DELIMITER, "system-line", 0.4, "system|admin",
       r"(?:^|\n)\W{0,6}(?:system|admin)(?: message)?\s*[:\]]"),
    _p(DELIMITER, "end-marker", 0.6, "end",
       # From the start of a run of marks only: from each mark of a long run, a search read the
       # rest of it again (quadratic on "-----...").
       r"(?<![%=#*\-])[%=#*\-]{3,}+\s*+end\b",
       r"|\bend of (?:the )?(?:user |system )?(?:input|prompt|instructions)\b"),
    _p(DELIMITER, "html-comment", 0.8, "<!--",
       r"<!--[^>]{0,200}?\b(?:ignore|instructions?|assistant|ai|model|prompt|llm)\b"),
    _p(DELIMITER, "code-comment", 0.5, "#|//",
       r"(?:#|//)[^\n]{0,80}?\b(?:ignore|disregard|instead|the output is)\b"),
    # Bounded parts: "![" repeated made an unbounded alt text a rescan of the rest of the text each.
    _p(DELIMITER, "markdown-image", 0.7, "![",
       r"!\[[^\]]{0,200}\]\(https?://[^)\s?&]{0,300}[?&][^)\s]{0,300}="),
    _p(DELIMITER, "if-you-are-ai", 0.8, "if you are", rf"\bif you are an? {_AI}\b"),
    _p(DELIMITER, "note-to-ai", 0.8, "note to|attention|dear",
       rf"\b(?:note to|attention|dear) (?:the )?{_AI}\b"),
    _p(DELIMITER, "decode-and-answer", 0.5, "decode|decipher|decrypt|interlace|combine",
       r"\b(?:decode|decipher|decrypt|interlace|combine)\b[^\n]{0,80}?\b(?:and|then)\b[^\n]{0,30}?",
       r"\b(?:tell|say|answer|follow|do|respond|execute|explain)\b"),
    _p(DELIMITER, "important-instructions", 0.6, "instruction",
       r"\bimportant[!:.]*\s*(?:new )?instructions?\b"),
)  # fmt: skip

NAMES = tuple(p.name for p in PATTERNS)


_NEEDLES = tuple(sorted({n for p in PATTERNS for n in p.needles}))


def find(text: str) -> list[Hit]:
    """Every pattern that matches ``text`` (normalised), at its first match."""
    present = {n for n in _NEEDLES if n in text}  # each needle looked for once, not once a pattern
    hits: list[Hit] = []
    for p in PATTERNS:
        if not present.isdisjoint(p.needles) and (m := p.search(text)) is not None:
            hits.append(Hit(p.name, p.family, p.weight, m.start(), m.end()))
    return hits


def strongest(hits: list[Hit]) -> dict[str, float]:
    """The highest weight per family (0.0 where nothing matched)."""
    out = dict.fromkeys(FAMILIES, 0.0)
    for h in hits:
        out[h.family] = max(out[h.family], h.weight)
    return out
