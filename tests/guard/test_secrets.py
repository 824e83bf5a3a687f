"""The ``secrets`` scanner: each kind of credential, put into a real sentence from the shared
data sets, is found with the exact span of what was put in; the benign sets give no findings.

Credentials are generated at test time in each service's documented shape (none is real)."""

from __future__ import annotations

import base64
import json
import random
import string

import orjson
import pytest
from pydantic import ValidationError

from tests.guard.shared import DATA, jsonl, needs_data, p50_us
from warden.guard.base import ScanContext, Scanner
from warden.guard.scanners import secrets as secrets_module
from warden.guard.scanners.secrets import SecretsScanner

pytestmark = needs_data
CTX = ScanContext(where="input")
ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "_-"


def benign_texts() -> list[str]:
    texts: list[str] = []
    for row in jsonl(DATA / "benign" / "selfinstruct_user_oriented.jsonl"):
        texts += [row["instruction"], *(i["input"] for i in row["instances"]),
                  *(i["output"] for i in row["instances"])]
    for row in jsonl(DATA / "drift" / "gsm8k_test.jsonl"):
        texts += [row["question"], row["answer"]]
    for name in ("t0_ag_news_classify", "t0_adversarial_qa_dbert_answer_the_following_q"):
        for row in jsonl(DATA / "drift" / f"{name}.jsonl"):
            texts += [row["prompt"], row["completion"]]
    for part in ("one", "two", "three"):
        rows = json.loads((DATA / "injection" / f"injecguard_notinject_{part}.json").read_text("utf-8"))
        texts += [r["prompt"] for r in rows]
    presidio = json.loads((DATA / "pii" / "presidio_synth_dataset_v2.json").read_text("utf-8"))
    texts += [r["full_text"] for r in presidio]
    return [t for t in texts if t]


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    """Real one-line instructions to put secrets into."""
    rows = jsonl(DATA / "benign" / "selfinstruct_user_oriented.jsonl")
    return [r["instruction"] for r in rows if "\n" not in r["instruction"]][:40]


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return SecretsScanner.from_options({})


def rand(alphabet: str, n: int, rng: random.Random) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


def fake_secrets(rng: random.Random) -> list[tuple[str, str]]:
    """``(type, value)`` for each named kind, in its documented shape."""
    upper = string.ascii_uppercase + string.digits
    return [
        ("aws_access_key_id", "AKIA" + rand(upper, 16, rng)),
        ("google_api_key", "AIza" + rand(B64URL, 35, rng)),
        ("google_oauth_client_secret", "GOCSPX-" + rand(B64URL, 28, rng)),
        ("azure_client_secret", rand(ALNUM, 3, rng) + "8Q~" + rand(ALNUM + "_~.-", 34, rng)),
        ("github_token", "ghp_" + rand(ALNUM, 36, rng)),
        ("github_token", "github_pat_" + rand(ALNUM, 22, rng) + "_" + rand(ALNUM, 59, rng)),
        ("gitlab_token", "glpat-" + rand(B64URL, 20, rng)),
        ("slack_token", "xoxb-" + rand(string.digits, 12, rng) + "-" + rand(ALNUM, 24, rng)),
        ("slack_webhook", "https://hooks.slack.com/services/T" + rand(upper, 8, rng) + "/B"
         + rand(upper, 8, rng) + "/" + rand(ALNUM, 24, rng)),
        ("stripe_key", "sk_live_" + rand(ALNUM, 24, rng)),
        ("openai_api_key", "sk-proj-" + rand(B64URL, 48, rng)),
        ("openai_api_key", "sk-" + rand(ALNUM, 48, rng)),
        ("anthropic_api_key", "sk-ant-api03-" + rand(B64URL, 93, rng) + "AA"),
        ("twilio_api_key", "SK" + rand(string.hexdigits.lower()[:16], 32, rng)),
        ("sendgrid_api_key", "SG." + rand(B64URL, 22, rng) + "." + rand(B64URL, 43, rng)),
        ("npm_token", "npm_" + rand(ALNUM, 36, rng)),
        ("pypi_token", "pypi-AgEIcHlwaS5vcmc" + rand(B64URL, 60, rng)),
        ("huggingface_token", "hf_" + rand(string.ascii_letters, 34, rng)),
        ("jwt", b64url({"alg": "HS256", "typ": "JWT"}) + "." + b64url({"sub": "42", "name": "Ada"})
         + "." + rand(B64URL, 43, rng)),
        ("high_entropy", rand(ALNUM + "+/", 40, rng)),
    ]


def test_each_kind_of_secret_is_found_with_the_exact_span_in_real_sentences(
        scanner: Scanner, sentences: list[str]) -> None:
    rng = random.Random(7)
    for i, (type_, secret) in enumerate(fake_secrets(rng)):
        sentence = sentences[i % len(sentences)]
        cut = sentence.index(" ", len(sentence) // 2)
        text = f"{sentence[:cut]} {secret}{sentence[cut:]}"
        found = scanner.scan(text, CTX)
        assert [(d.type, text[d.start:d.end]) for d in found] == [(type_, secret)], text
        assert found[0].score == (0.7 if type_ == "high_entropy" else 1.0)


def test_aws_secret_key_and_url_password_spans_cover_only_the_secret(
        scanner: Scanner, sentences: list[str]) -> None:
    rng = random.Random(1)
    key = rand(ALNUM + "/+", 40, rng)
    text = f"{sentences[0]} aws_secret_access_key = \"{key}\""
    found = scanner.scan(text, CTX)
    assert [(d.type, text[d.start:d.end]) for d in found] == [("aws_secret_access_key", key)]
    text = f"{sentences[1]} Connect with postgresql://report:Tr0ub4dor-3@db.internal:5432/sales please."
    assert [(d.type, text[d.start:d.end]) for d in scanner.scan(text, CTX)] == [
        ("url_credentials", "report:Tr0ub4dor-3")]


def test_azure_connection_strings_and_sas_urls_report_the_key_part(
        scanner: Scanner, sentences: list[str]) -> None:
    rng = random.Random(2)
    key = rand(ALNUM + "+/", 86, rng) + "=="
    text = (f"{sentences[3]} DefaultEndpointsProtocol=https;AccountName=sales;AccountKey={key};"
            "EndpointSuffix=core.windows.net")
    assert [(d.type, text[d.start:d.end]) for d in scanner.scan(text, CTX)] == [("azure_storage_key", key)]
    sig = rand(ALNUM, 43, rng) + "%3D"
    text = (f"{sentences[4]} https://sales.blob.core.windows.net/c/f.csv?sv=2022-11-02&ss=b&srt=o&sp=r"
            f"&se=2030-01-01T00:00:00Z&sig={sig} thanks")
    assert [(d.type, text[d.start:d.end]) for d in scanner.scan(text, CTX)] == [("azure_sas_token", sig)]


@pytest.mark.parametrize("url", [
    "https://user:<password>@example.com", "https://user:${DB_PASSWORD}@example.com",
    "https://user:****@example.com", "https://example.com/a:b@c",
])
def test_placeholder_passwords_in_urls_are_not_reported(scanner: Scanner, url: str) -> None:
    assert scanner.scan(f"Use {url} to connect.", CTX) == []


def test_a_multi_line_private_key_is_one_span_from_begin_to_end(
        scanner: Scanner, sentences: list[str]) -> None:
    rng = random.Random(3)
    body = "\n".join(rand(ALNUM + "+/", 64, rng) for _ in range(6)) + "\n" + rand(ALNUM, 20, rng) + "=="
    key = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    text = f"{sentences[2]}\n\n{key}\n\nThanks!"
    found = scanner.scan(text, CTX)
    assert [(d.type, text[d.start:d.end]) for d in found] == [("private_key", key)]
    # Cut off before its END line, the key is still reported up to where it stops.
    truncated = key.split("\n-----END")[0]
    found = scanner.scan(f"{sentences[2]}\n{truncated}", CTX)
    assert [d.type for d in found] == ["private_key"]
    assert f"{sentences[2]}\n{truncated}"[found[0].start:found[0].end] == truncated


def test_a_gcp_service_account_file_is_reported_as_such(scanner: Scanner) -> None:
    rng = random.Random(4)
    pem = "-----BEGIN PRIVATE KEY-----\\n" + "\\n".join(rand(ALNUM + "+/", 64, rng) for _ in range(4)) \
        + "\\n-----END PRIVATE KEY-----\\n"
    text = json.dumps({"type": "service_account", "project_id": "demo", "private_key_id": "0" * 8},
                      indent=1)[:-2] + f',\n "private_key": "{pem}"\n}}'
    types = [d.type for d in scanner.scan(text, CTX)]
    assert types == ["gcp_service_account_key"]


def test_a_jwt_needs_a_header_with_alg(scanner: Scanner) -> None:
    no_alg = b64url({"typ": "JWT"}) + "." + b64url({"sub": "1"}) + ".c2lnbmF0dXJl"
    assert [d.type for d in scanner.scan(f"token {no_alg}", CTX)] != ["jwt"]
    unsigned = b64url({"alg": "none"}) + "." + b64url({"sub": "1"}) + "."
    assert [d.type for d in scanner.scan(f"token {unsigned} here", CTX)] == ["jwt"]


@pytest.mark.parametrize("text", [
    "Request 123e4567-e89b-12d3-a456-426614174000 failed.",
    "Commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it.",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "Install into /usr/local/lib/python3.11/site-packages/numpy/core today.",
    "Call getUserAccountSettingsFromServerAsync before rendering.",
    "The constant MAXIMUM_RETRY_ATTEMPTS_PER_CONNECTION is 5.",
])
def test_uuids_hashes_paths_and_identifiers_are_not_high_entropy(scanner: Scanner, text: str) -> None:
    assert scanner.scan(text, CTX) == []


def test_options_change_what_is_reported(sentences: list[str]) -> None:
    digest = "3f786850e387550fdab836ed7e6dc881de23001b"
    with_hashes = SecretsScanner.from_options({"exclude_hashes": False})
    assert [d.type for d in with_hashes.scan(f"{sentences[0]} {digest}", CTX)] == ["high_entropy"]
    token = "ghp_" + "a1B2c3D4" * 4 + "e5F6"
    assert SecretsScanner.from_options({"exclude_types": ["github_token"]}).scan(token, CTX) == []
    assert SecretsScanner.from_options({"allowlist": [token]}).scan(f"use {token}", CTX) == []
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    no_entropy = SecretsScanner.from_options({"entropy": False})
    assert [d.type for d in no_entropy.scan(f"{key} x9Kq2Lm8Zp4Rt7Wv1Yb6qQ", CTX)] == ["aws_access_key_id"]
    assert [d.type for d in SecretsScanner.from_options({}).scan(f"{key} x9Kq2Lm8Zp4Rt7Wv1Yb6qQ", CTX)] \
        == ["aws_access_key_id", "high_entropy"]


def test_bad_options_are_refused_with_the_known_types() -> None:
    with pytest.raises(ValidationError,
                       match=r"unknown secret type.*github_tokens.*known types:.*github_token"):
        SecretsScanner.from_options({"exclude_types": ["github_tokens"]})
    with pytest.raises(ValidationError, match="extra"):
        SecretsScanner.from_options({"treshold": 3})


def test_no_findings_on_the_benign_data_sets(scanner: Scanner) -> None:
    texts = benign_texts()
    assert len(texts) > 5000
    flagged = [(t[:80], d.type) for t in texts for d in scanner.scan(t, CTX)]
    assert flagged == []


def test_latency_on_a_60_word_prompt(capsys: pytest.CaptureFixture[str], scanner: Scanner) -> None:
    prompt = sixty_word_prompt()
    p50 = p50_us(scanner, prompt)
    with capsys.disabled():
        print(f"\n[latency] secrets p50 on a 60-word prompt: {p50:.1f} us")


def sixty_word_prompt() -> str:
    """60 words of real benign instructions."""
    rows = jsonl(DATA / "benign" / "selfinstruct_user_oriented.jsonl")
    return " ".join(" ".join(r["instruction"] for r in rows).split()[:60])


def test_the_module_registers_its_scanner() -> None:
    registered: list[type[Scanner]] = []
    secrets_module.register_scanners(registered.append)
    assert registered == [SecretsScanner]
