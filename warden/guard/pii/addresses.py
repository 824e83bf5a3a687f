"""Street addresses, in the shapes of many countries.

An address is found in two steps. First an anchor: a street with its house number in one of
the common orders ("12 Baker Street", "Koskikatu 25", "Rua Diadema 1903", "ul. Narewska 94"),
a post-office or military box ("P.O. Box 149", "PSC 2721, Box 8637"), a street corner, or
words and a number right after a cue such as "my address is". Then the anchor grows over what
follows it on the same or the next lines — unit ("Apt. 4"), city, state code, country, postal
code — and over a building number or unit written before it, so that the whole block is one
span.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from warden.guard.pii.spans import Span, word_set

# A word of a street or place name: a letter first, then letters, digits, apostrophes, dots,
# hyphens ("d'Ouchy", "Grand-Leez", "rkp.").
_W = r"[^\W\d_][\w'\u2019.-]*"
_NUM = r"\d{1,5}[A-Za-z]?\b\.?"
# Small words inside street and place names ("Rue de Tanger", "Villafranca del Cid").
_PARTICLE = (r"(?:de|del|della|di|da|do|dos|das|du|des|la|le|les|van|von|der|den|am|an|im|u|na|nad|"
             r"pod|sur|upon|of|y|i|e)\b")

_SUFFIXES = (
    "Street|St|Str|Road|Rd|Avenue|Ave|Av|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|"
    "Square|Sq|Terrace|Ter|Crescent|Cres|Close|Way|Highway|Hwy|Parkway|Pkwy|Route|Rte|Mall|"
    "Coves?|Unions?|Turnpike|Greens?|Hills?|Dale|Flats?|Lodge|Pass|Parks?|Bypass|Row|Walk|"
    "Gardens?|Grove|Mews|Circle|Cir|Trail|Trl|Loop|Alley|Plaza|Ridge|Views?|Points?|Port|"
    "Crossing|Junction|Valleys?|Heights|Meadows?|Villages?|Estates?|Expressway|Freeway|Glens?|"
    "Harbou?r|Haven|Knolls?|Lakes?|Landing|Manor|Mills?|Mount|Orchard|Oval|Path|Pike|Plains?|"
    "Ranch|Rapids?|Shores?|Springs?|Squares?|Station|Stream|Summit|Trace|Track|Tunnel|Vista|"
    "Wells?|Wharf|Brook|Bridge|Burgs?|Camp|Canyon|Cape|Causeway|Centre|Center|Cliffs?|Common|"
    "Corners?|Course|Courts?|Creek|Crest|Divide|Extension|Falls?|Ferry|Fields?|Ford|Forest|Forge|"
    "Forks?|Fort|Gateway|Hollow|Inlet|Island|Isle|Keys?|Land|Lights?|Locks?|Motorway|Neck|"
    "Overpass|Passage|Pines?|Prairie|Radial|Ramp|Rest|Rivers?|Run|Shoals?|Skyway|Spur|Underpass|"
    "Viaduct|Ville|Wall|Walks?|Ways|Quay|Wynd|Rise|Chase|Approach|Parade|Esplanade|Embankment|"
    "Extensions?|Dam|Terrasse|Summit")

# Words that open a street name in Romance, Slavic, Greek and other languages (lower case).
_PREFIXES = word_set("""
    rua r. rue via viale vicolo piazza piazzale piazzetta corso largo strada stradella contrada
    borgo calle c/ avenida avda avda. av. avinguda carrer paseo pg. passeig camino carretera ctra.
    plaza pl. praça travessa estrada alameda rambla ronda rúa chemin allée impasse quai cours
    place route boulevard bd bd. bvd avenue ul ul. ulica aleja al. trg ulitsa λ. λεωφ. οδός leof.
    odos straße strasse gasse weg""")

# Endings of one-word street names in Germanic, Nordic, Baltic and Finnish ("Koskikatu 25",
# "Friedhofstrasse 33", "Nybyvägen 65"), and Hungarian street words ("Rákóczi út 13.").
_GLUED = tuple(word_set("""
    strasse straße str. gasse weg laan straat steeg gracht plein kade dijk singel dreef vej
    vænget gade stræde vägen gatan gata gränd stigen stien veien vegen vegur braut stræti straeti
    stígur katu tie kuja polku tori kaari utca útja allee platz damm ufer markt gässli pfad zeile
    torget plads bakken põik iela gatve alėja vei terrasse gate svingen"""))
_SEPARATE = word_set("út utca tér körút rkp. kapu sor köz fasor u.") | frozenset(_GLUED)

# Capitalised English words that make "5 Musicians Of The 70s" a title and "12 March 1985" a
# date, not an address.
_COMMON = (r"(?:Of|The|And|In|On|At|For|To|A|An|Or|With|From|By|Top|Best|Ways|Things|Tips|Steps|"
           r"Grade|Class|Chapter|Section|Page|Part|Step|Level|Room|Year|Version|Day|Week|Item|"
           r"January|February|March|April|May|June|July|August|September|October|November|"
           r"December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)")
_CAP = r"[A-Z\u00c0-\u024f\u0370-\u03ff]"

# Anchors that start with a number.
_NUMBER_LED: tuple[tuple[re.Pattern[str], float], ...] = (
    # "1317 Kimberly Way", "22 Pollen Crescent", "3911 Fourth Avenue"
    (re.compile(rf"(?=[0-9])\b[0-9]{{1,5}}[A-Za-z]?,? (?:[NSEW]\.? )?(?:{_CAP}[\w'\u2019.-]* ){{1,3}}"
                rf"(?:{_SUFFIXES})\b\.?"), 0.75),
    # "26 rue des lieutemants Thomazo", "33 avenue de Provence"
    (re.compile(rf"(?=[0-9])\b[0-9]{{1,4}},? (?i:rue|avenue|boulevard|bd|chemin|allée|place|impasse|"
                rf"quai|route|via|viale|calle|rua) (?:(?:{_PARTICLE}|d'|{_CAP}[\w'\u2019.-]*) ?){{1,4}}"),
     0.7),
    # "6750 Koskikatu 25", "94472 Atamaria 55": a building number, a name, a house number
    (re.compile(rf"(?=[0-9])\b[0-9]{{1,5}} (?:(?!{_COMMON}\b){_CAP}[\w'\u2019.-]+ ){{1,3}}"
                rf"\d{{1,5}}[a-z]?\b"), 0.55),
)

# Anchors that start with a word, tried where that word is (a dictionary lookup per word is
# much cheaper than an alternation of a hundred words tried at every position).
# The street word is read at most 40 characters far: it is tried at every street word, and an
# unbounded \S+ rescanned a whole run such as 'rua"rua"rua"...' from each of them (quadratic).
_PREFIXED = re.compile(rf"\S{{1,40}}+ (?:{_W} ){{0,4}}{_NUM}(?: ?[A-Za-z]\b)?")
_STREET_NUMBER = re.compile(rf"([^\W\d_][\w'\u2019./]*+) {_NUM}")
_NAME_BEFORE = re.compile(rf"{_CAP}[\w'\u2019.-]* $")
_WORD_LED: dict[str, tuple[re.Pattern[str], float]] = {
    # "P.O. Box 149", "Postbox 53", "PO Box 12"
    **dict.fromkeys(("p.o.", "po", "p.", "p", "postbox", "post"), (re.compile(
        r"(?i:P\.? ?O\.? ?Box|Post ?box|Post Office Box) \d{1,6}\b"), 0.7)),
    # US military mail: "PSC 2721, Box 8637\nAPO AA 06259", "USNS Bergman\nFPO AP 93757"
    **dict.fromkeys(("psc", "unit", "usns", "usnv", "uss", "uscgc"), (re.compile(
        r"(?i:PSC \d{4}, Box \d{4}|Unit \d{4} Box \d{4}|(?:USNS|USNV|USS|USCGC) [\w'\u2019-]+)"
        r"\s+(?i:[AFD]PO A[AEP]) \d{5}\b"), 0.9)),
    # "the corner of 159 Eleftheriou Venizelou str and Rennie Union"
    **dict.fromkeys(("the", "corner"), (re.compile(
        r"(?i:the )?(?i:corner) of (?:[\w'\u2019./-]+ ){1,6}?and (?:[\w'\u2019./-]+ ?){1,4}"), 0.6)),
}

# Words after which words and a number are an address even in no shape above.
_CUE = re.compile(
    r"(?i:address(?:es)?\b[^.?!\n]{0,30}?(?:is|:|to|with|as)|lives? (?:on|at|in)|lived in|"
    r"located at|meet (?:me|you|us) at|arrived at|sen[dt] (?:it |this |them )?to|"
    r"(?:deliver|ship|return|mail|post)(?:ed)? (?:it |this |them )?to|moved to|drops? you off at|"
    r"is on|enter on|User:)\s+")
_CUE_WORDS = word_set("""address addresses live lives lived located meet arrived send sent deliver
    delivered ship shipped return returned mail mailed post posted moved drop drops is enter
    user""")
_CUED = re.compile(rf"(?:\d{{1,6}} )?{_CAP}[\w'\u2019.-]* (?:{_W} ){{0,3}}{_NUM}")
_WORD = re.compile(r"(?<![\w.])[^\W\d_][\w'\u2019./]*")  # (letters are everywhere: no lookahead)

# Between two pieces of one address: commas and line breaks (at most a blank line; e-mail
# quoting ">" and lost characters "?" at the start of a line), or spaces.
_SEP = r"(?:(?:[ \t]*[,\n][ \t>?]*){1,3}|[ \t]+)"
_UNIT = r"(?i:Apt|Apartment|Suite|Ste|Unit|Flat|Fl|Floor|Room|Rm|Box|Bldg|Building)\.? ?#?\w{1,6}\b\.?"
_POSTCODE = (r"\d{2,6}(?:[ -]\d{2,4})?(?: [A-Z]{2}\b)?|[A-Z]\d[A-Z] ?\d[A-Z]\d|"
             r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}")
# A place name: capitalised words of letters (a word with digits is a postcode: "NW1 6XE").
_PLACE_WORD = rf"{_CAP}(?:[^\W\d_]|['\u2019.-])*"
_PLACE = rf"{_PLACE_WORD}(?:[ -](?:{_PARTICLE}|{_PLACE_WORD})){{0,3}}(?: \(\w+\))?|nan"
_NEXT = re.compile(rf"{_SEP}(?:(?P<unit>{_UNIT})|(?P<code>{_POSTCODE})|"
                   rf"(?P<street>(?:{_CAP}[\w'\u2019.-]* ){{0,2}}(?:{_SUFFIXES})\b\.?)|"
                   rf"(?P<place>{_PLACE}))(?![\w@])")
# "Hanne and ul. Miła 53": a name joined to the street by "and" (as in "the corner of X and Y").
_BEFORE = re.compile(rf"(?:(?:{_UNIT}|\d{{1,6}}|(?i:the corner of)|{_CAP}[\w'\u2019-]+ and)[ ,]+)+$")

# Capitalised words that start the next sentence or field rather than continue an address.
_NOT_PLACES = word_set(
    "I Please Thanks Thank Mobile Desk Fax Phone Tel Email E-mail Website Office Bot User It The He "
    "She We They This That My Name Address St St. Street Str Str. And Or But If When Where What How "
    "Hi Hello Dear Best Regards Sincerely Also Then Is Was Are Can Could Would Will For To In On At "
    "By From With Personal Info Card Billing Shipping Tomorrow Today Yesterday Monday Tuesday "
    "Wednesday Thursday Friday Saturday Sunday ZIP Zip Postcode Birthday DOB SSN Apt Suite")
_MAX_PIECES = 8


def find_addresses(text: str) -> Iterator[Span]:
    """Street addresses in ``text``, each grown to its whole block; overlapping ones may come
    more than once (the caller merges them)."""
    # A text written all in lower case is read as if its words were capitalised.
    view = _capitalised(text) if text.islower() else text
    for regex, score in _NUMBER_LED:
        for m in regex.finditer(view):
            yield _grow(view, m.start(), m.end(), score)
    for m in _WORD.finditer(view):
        for start, end, score in _anchors_at(view, m.start(), m.group(0).lower()):
            yield _grow(view, start, end, score)


def _anchors_at(text: str, pos: int, word: str) -> Iterator[tuple[int, int, float]]:
    """The anchors that start with the word at ``pos`` (``word`` is it in lower case)."""
    if word in _PREFIXES:
        m = _PREFIXED.match(text, pos)
        # A capitalised name between the word and the number: "place 20 cups" is no address.
        if m and any(w[:1].isupper() for w in m.group(0).split(" ")[1:-1]):
            yield m.start(), m.end(), 0.75
    if word.endswith(_GLUED) or word in _SEPARATE:
        m = _STREET_NUMBER.match(text, pos)
        if m is not None and m.group(1).lower() == word:
            start = pos
            if word in _SEPARATE:  # "Villacher Strasse 89", "Rákóczi út 13.": the name before
                before = _NAME_BEFORE.search(text, max(0, pos - 30), pos)
                start = before.start() if before else pos
            yield start, m.end(), 0.7
    led = _WORD_LED.get(word)
    if led is not None:
        m = led[0].match(text, pos)
        if m:
            yield m.start(), m.end(), led[1]
    if word in _CUE_WORDS:
        cue = _CUE.match(text, pos)
        m = _CUED.match(text, cue.end()) if cue else None
        if m:
            yield m.start(), m.end(), 0.6


def _grow(text: str, start: int, end: int, score: float) -> Span:
    """The address around ``[start, end)``: what follows it and what precedes it that reads as
    more of the same address."""
    end = _trim_end(text, start, end)
    pieces = 0
    while pieces < _MAX_PIECES:
        m = _NEXT.match(text, end)
        if m is None:
            break
        place = m.group("place")
        if place is not None:
            if place.split(" ")[0] in _NOT_PLACES:
                break
            # After spaces alone (no comma, no line break), a name goes on with the address
            # only after a number or another piece ("Spinatsch 94 Apt. 615 Moosleerau").
            same_line = "\n" not in m.group(0) and "," not in m.group(0)
            if same_line and pieces == 0 and not text[end - 1].isdigit():
                break
        end = m.end()
        pieces += 1
    before = _BEFORE.search(text, max(0, start - 40), start)
    if before is not None:
        start = before.start()
    return Span("STREET_ADDRESS", score, start, _trim_end(text, start, end))


def _trim_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in " \t\n,;:-'\u2019":
        end -= 1
    # A full stop ends the sentence unless it closes an abbreviation ("Apt.", "rkp.", "18.").
    if end > start and text[end - 1] == "." and (end == len(text) or text[end] in " \n\t"):
        word = text[start:end - 1].rsplit(None, 1)[-1] if text[start:end - 1].strip() else ""
        if len(word) > 4 and word.isalpha():
            end -= 1
    return end


# English words left in lower case when a text written all in lower case is capitalised.
_SMALL_WORDS = word_set("""a an the and or but nor of to in on at by for with from as is are was
    were be been am it its this that these those i you he she we they me him her us them my your
    his our their not no than then so if else when while there here what which who how do does
    did has have had will would can could should may might must greater less more most""")


def _capitalised(text: str) -> str:
    """``text`` with the first letter of each word but the small ones in upper case, character
    for character (a letter whose upper case is longer, such as ß, stays), so offsets hold."""
    return re.sub(r"\b[^\W\d_][\w'\u2019]*", _capital, text)


def _capital(m: re.Match[str]) -> str:
    word = m.group(0)
    up = word[0].upper()
    return word if word in _SMALL_WORDS or len(up) != 1 else up + word[1:]
