"""``secrets``: credentials in a text — cloud and service keys, tokens, private keys, JWTs,
passwords in URLs, and long random-looking strings.

Named credentials are found by their documented shapes (a prefix, a length, an alphabet) and
score 1.0; a long string is reported as ``high_entropy`` (score 0.7) when its Shannon entropy
is high for its length and it does not look like a word, an identifier, a UUID or a checksum.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from pydantic import Field, field_validator

from warden.guard.base import Detection, ScanContext, Scanner, ScannerOptions
from warden.hookspecs import hookimpl


@dataclass(frozen=True, slots=True)
class _Rule:
    type: str
    pattern: re.Pattern[str]
    keywords: tuple[str, ...]  # one must occur in the text (case as written) before the regex runs
    group: str | int = 0  # the part of the match that is the secret


def _rule(type_: str, pattern: str, *keywords: str, group: str | int = 0) -> _Rule:
    return _Rule(type_, re.compile(pattern), keywords, group)


_END = r"(?![A-Za-z0-9_\-])"
_START = r"(?<![A-Za-z0-9_\-])"

# Most specific first: a span claimed by one rule is not reported again by a later one.
RULES: tuple[_Rule, ...] = (
    _rule("private_key",
          r"-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----"
          r"(?:(?:\\[nr]|\s)*+(?:[A-Za-z0-9+/=]++|[A-Za-z-]+:[^\n\\]*+))*+"
          r"(?:(?:\\[nr]|\s)*+-----END (?P=label)-----)?", "PRIVATE KEY"),
    _rule("aws_access_key_id", rf"{_START}(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{{16}}{_END}",
          "AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
    _rule("aws_secret_access_key",
          r"(?i:aws[ _.-]?secret[ _.-]?(?:access[ _.-]?)?key|secret[ _.-]?access[ _.-]?key)"
          r"[\"']?\s*(?:[:=]|=>|\bis\b)\s*[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
          "secret", "Secret", "SECRET", group="secret"),
    _rule("google_api_key", rf"{_START}AIza[0-9A-Za-z_\-]{{35}}{_END}", "AIza"),
    _rule("google_oauth_client_secret", rf"{_START}GOCSPX-[A-Za-z0-9_\-]{{28}}{_END}", "GOCSPX-"),
    _rule("azure_storage_key", r"AccountKey=(?P<secret>[A-Za-z0-9+/]{86}==)", "AccountKey=",
          group="secret"),
    _rule("azure_sas_token",
          r"[?&]sv=\d{4}-\d\d-\d\d&\S{0,500}?\bsig=(?P<secret>[A-Za-z0-9%+/]{40,}(?:%3D|=)*)",
          "sig=", group="secret"),
    _rule("azure_client_secret", r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}"
          r"(?![A-Za-z0-9_~.-])", "Q~"),
    _rule("github_token", rf"{_START}(?:gh[pousr]_[A-Za-z0-9]{{36}}|github_pat_[A-Za-z0-9_]{{80,}}){_END}",
          "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    _rule("gitlab_token", rf"{_START}gl(?:pat|dt|rt|ptt|ft|soat|cbt|imt|oas)-[A-Za-z0-9_\-]{{20,}}{_END}",
          "glpat-", "gldt-", "glrt-", "glptt-", "glft-", "glsoat-", "glcbt-", "glimt-", "gloas-"),
    _rule("slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_+-]{20,}",
          "hooks.slack.com"),
    _rule("slack_token", rf"{_START}xox[abposre]-[A-Za-z0-9-]{{10,}}{_END}", "xox"),
    _rule("stripe_key", rf"{_START}(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{{20,}}{_END}", "_live_", "_test_"),
    _rule("anthropic_api_key", rf"{_START}sk-ant-[A-Za-z0-9_\-]{{32,}}{_END}", "sk-ant-"),
    _rule("openai_api_key", rf"{_START}sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{{20,}}|"
          rf"[A-Za-z0-9]{{20}}T3BlbkFJ[A-Za-z0-9]{{20}}|[A-Za-z0-9]{{32,}}){_END}", "sk-"),
    _rule("twilio_api_key", rf"{_START}SK[0-9a-fA-F]{{32}}{_END}", "SK"),
    _rule("sendgrid_api_key", rf"{_START}SG\.[A-Za-z0-9_\-]{{22}}\.[A-Za-z0-9_\-]{{43}}{_END}", "SG."),
    _rule("npm_token", rf"{_START}npm_[A-Za-z0-9]{{36}}{_END}", "npm_"),
    _rule("pypi_token", rf"{_START}pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{{50,}}{_END}", "pypi-"),
    _rule("huggingface_token", rf"{_START}hf_[A-Za-z]{{34}}{_END}", "hf_"),
    _rule("jwt", rf"{_START}eyJ[A-Za-z0-9_\-]{{4,}}\.[A-Za-z0-9_\-]{{4,}}\.[A-Za-z0-9_\-]*{_END}", "eyJ"),
    _rule("url_credentials", r"\b[A-Za-z][A-Za-z0-9+.\-]{0,30}://(?P<secret>[^\s:/?#@\"'<>]+:[^\s/?#@\"'<>]+)@"
          r"[^\s/?#@]", "://", group="secret"),
)
TYPES = frozenset(r.type for r in RULES) | {"gcp_service_account_key", "high_entropy"}

_PLACEHOLDER = re.compile(r"(?i)\*+|x+|\.+|<[^>]*>|\{[^}]*\}|\$\{?\w+\}?|\[[^]]*\]|%[sd]"
                          r"|pass(?:word)?|pwd|secret|changeme|your[_-]?password|\w+@")
_CANDIDATE = re.compile(r"(?<![A-Za-z0-9+/=_\-.])[A-Za-z0-9+/_\-]{16,}={0,2}(?![A-Za-z0-9+/=_\-])")
_HEX = re.compile(r"[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_PIECE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_HASH_LENGTHS = frozenset({32, 40, 56, 64, 96, 128})


def shannon_entropy(s: str) -> float:
    """Bits per character of ``s``."""
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values()) if n else 0.0


def _wordish(candidate: str) -> bool:
    """Whether a string reads as words, a path or an identifier (``site-packages/numpy``,
    ``getUserAccountSettings``, ``python3``) rather than random characters."""
    for part in re.split(r"[/_\-+.=]+", candidate):
        for piece in _PIECE.findall(part):
            if piece.isdigit():
                if len(piece) > 4:
                    return False
            elif len(piece) < 2 or not re.search(r"[aeiouyAEIOUY]", piece):
                return False
    return True


def _jwt_header_ok(token: str) -> bool:
    head = token.split(".", 1)[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and isinstance(header.get("alg"), str)


class SecretsOptions(ScannerOptions):
    entropy: bool = Field(True, description="Report long random-looking strings as high_entropy.")
    min_length: int = Field(20, ge=8, description="Shortest base64-like string checked for entropy.")
    min_hex_length: int = Field(32, ge=8, description="Shortest hex string checked for entropy.")
    base64_threshold: float = Field(
        4.5, gt=0, le=6, description="Entropy (bits/char) above which a base64-like string is "
        "reported; capped at 85% of log2(length) for strings too short to reach it.")
    hex_threshold: float = Field(3.0, gt=0, le=4, description="The same for hex strings.")
    exclude_words: bool = Field(True, description="Skip strings made of words or identifier parts.")
    exclude_uuids: bool = Field(True, description="Skip UUIDs.")
    exclude_hashes: bool = Field(
        True, description="Skip hex strings of checksum lengths (32, 40, 56, 64, 96, 128).")
    exclude_types: list[str] = Field(default_factory=list, description="Types not to report.")
    allowlist: list[str] = Field(default_factory=list, description="Exact values never reported.")

    @field_validator("exclude_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - TYPES)
        if unknown:
            raise ValueError(f"unknown secret type(s) {', '.join(unknown)}; "
                             f"known types: {', '.join(sorted(TYPES))}")
        return value


class SecretsScanner(Scanner):
    """Credentials and random-looking strings, each with its span."""

    name = "secrets"
    scans_every_field = True
    options_model = SecretsOptions

    def __init__(self, options: ScannerOptions) -> None:
        super().__init__(options)
        assert isinstance(options, SecretsOptions)
        self.opts = options
        self._rules = tuple(r for r in RULES if r.type not in options.exclude_types)
        self._allow = frozenset(options.allowlist)

    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        found: list[Detection] = []
        for rule in self._rules:
            if not any(k in text for k in rule.keywords):
                continue
            for m in rule.pattern.finditer(text):
                start, end = m.span(rule.group)
                value = text[start:end]
                if value in self._allow or self._overlaps(found, start, end):
                    continue
                if rule.type == "jwt" and not _jwt_header_ok(value):
                    continue
                if rule.type == "url_credentials" and _PLACEHOLDER.fullmatch(value.split(":", 1)[1]):
                    continue
                type_ = rule.type
                if type_ == "private_key" and "service_account" in text \
                        and '"private_key"' in text[max(0, start - 30):start]:
                    type_ = "gcp_service_account_key"
                found.append(Detection(type_, 1.0, start, end))
        if self.opts.entropy and "high_entropy" not in self.opts.exclude_types:
            found.extend(self._random_strings(text, found))
        found.sort(key=lambda d: d.start or 0)
        return found

    @staticmethod
    def _overlaps(found: list[Detection], start: int, end: int) -> bool:
        return any(d.start is not None and d.end is not None and d.start < end and start < d.end
                   for d in found)

    def _random_strings(self, text: str, found: list[Detection]) -> list[Detection]:
        o = self.opts
        out: list[Detection] = []
        for m in _CANDIDATE.finditer(text):
            value = m.group()
            if value in self._allow or self._overlaps(found, *m.span()):
                continue
            if _HEX.fullmatch(value):
                if len(value) < o.min_hex_length or value.isdigit() \
                        or (o.exclude_hashes and len(value) in _HASH_LENGTHS):
                    continue
                threshold = o.hex_threshold
            else:
                if len(value) < o.min_length or (o.exclude_uuids and _UUID.fullmatch(value)):
                    continue
                threshold = o.base64_threshold
            if o.exclude_words and _wordish(value):
                continue
            if shannon_entropy(value) >= min(threshold, 0.85 * math.log2(len(value))):
                out.append(Detection("high_entropy", 0.7, *m.span()))
        return out


@hookimpl
def register_scanners(register: Callable[[type[Scanner]], None]) -> None:
    register(SecretsScanner)
