"""Plain HTTP to a gateway under test, as a browser would send it but without following
redirects: bearer keys, session cookies, forms, JSON, and the server-sent events of /api/live."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()

    def cookie(self, name: str) -> str | None:
        """The Set-Cookie header of ``name`` (whole, with its attributes)."""
        for value in self.headers.get_all("set-cookie") or []:
            if value.startswith(f"{name}="):
                return value
        return None


def call(base: str, method: str, path: str, *, token: str | None = None,
         cookie: str | None = None, body: Any = None, form: dict[str, str] | None = None,
         headers: dict[str, str] | None = None) -> Answer:
    """One request; ``cookie`` is the value of warden_session."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    sent = dict(headers or {})
    data = None
    if body is not None:
        sent.setdefault("content-type", "application/json")
        data = json.dumps(body).encode()
    elif form is not None:
        sent.setdefault("content-type", "application/x-www-form-urlencoded")
        data = urllib.parse.urlencode(form).encode()
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    if cookie is not None:
        sent["cookie"] = f"warden_session={cookie}"
    try:
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        return Answer(resp.status, resp.msg, resp.read())
    finally:
        conn.close()


def login(base: str, key: str) -> str:
    """Log in with ``key``; the session cookie's value."""
    answer = call(base, "POST", "/ui/login", body={"key": key})
    assert answer.status == 200, answer.text
    found = answer.cookie("warden_session")
    assert found is not None
    return found.split(";", 1)[0].split("=", 1)[1]


def events(base: str, path: str, *, token: str | None = None, cookie: str | None = None,
           timeout_s: float = 10.0) -> Iterator[tuple[str, Any, float]]:
    """The server-sent events of ``path``: (event name, JSON data, seconds since the request),
    until the stream ends or ``timeout_s`` passes."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    sent = {"accept": "text/event-stream"}
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    if cookie is not None:
        sent["cookie"] = f"warden_session={cookie}"
    began = time.monotonic()
    try:
        conn.request("GET", path, headers=sent)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        assert resp.getheader("content-type", "").startswith("text/event-stream")
        name, data = "message", []
        while time.monotonic() - began < timeout_s:
            line = resp.readline()
            if not line:
                return
            text = line.decode().rstrip("\n")
            if text.startswith("event:"):
                name = text[6:].strip()
            elif text.startswith("data:"):
                data.append(text[5:].strip())
            elif not text and data:
                yield name, json.loads("\n".join(data)), time.monotonic() - began
                name, data = "message", []
    finally:
        conn.close()
