"""FastJsonPost against a recording server: same request on the wire as ``Session.post``, same failures.

The server here records the raw request (request line, headers, body) so each test can
compare what the fast path sent with what ``requests`` itself sends, and can set cookies,
redirect, stall or drop the connection on demand.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from airflow_provider_anyfast.core.transport import FastJsonPost

BODY = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "héllo"}], "n": 1}


@dataclass
class Seen:
    line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """What the server saw; ``release`` ends stalled answers (set at teardown)."""

    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        recorder: Recorder = self.server.recorder
        recorder.seen.append(Seen(self.requestline, {k.lower(): v for k, v in self.headers.items()}, body))
        path = self.path.split("?")[0]
        if path.endswith("/stall"):
            recorder.release.wait(30)
        if path.endswith("/drop"):
            self.close_connection = True
            return
        if path.endswith("/moved"):
            self._reply(307, b"", [("Location", "/v1/echo")])
            return
        extra = [("Set-Cookie", "session=abc123; Path=/")] if path.endswith("/cookie") else []
        self._reply(200, json.dumps({"path": path, "echo": json.loads(body or b"null")}).encode(), extra)

    def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        for name, value in [("Content-Type", "application/json"), *(headers or [])]:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Recorder]]:
    """A recording server on 127.0.0.1; proxies from the environment never apply to it."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.recorder = Recorder()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.recorder  # type: ignore[attr-defined]
    httpd.recorder.release.set()  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0))
    session.headers.update({"Authorization": "Bearer sk-test", "User-Agent": "anyfast-test/1"})
    return session


def test_same_request_on_the_wire_as_session_post(recorder: tuple[str, Recorder]) -> None:
    base, seen = recorder
    session = _session()
    fast = FastJsonPost(session, (5.0, 5.0)).post(f"{base}/v1/echo", BODY)
    plain = session.post(f"{base}/v1/echo", json=BODY, timeout=(5.0, 5.0))
    assert fast.status_code == plain.status_code == 200
    assert fast.json() == plain.json() == {"path": "/v1/echo", "echo": BODY}
    assert fast.headers["content-type"] == "application/json" and fast.url == f"{base}/v1/echo"
    ours, theirs = seen.seen
    assert ours.line == theirs.line == "POST /v1/echo HTTP/1.1"
    assert ours.body == theirs.body
    assert ours.headers == theirs.headers


def test_cookies_are_kept_and_then_sent(recorder: tuple[str, Recorder]) -> None:
    base, seen = recorder
    session = _session()
    post = FastJsonPost(session, (5.0, 5.0))
    post.post(f"{base}/v1/cookie", BODY)
    assert session.cookies.get("session") == "abc123"
    post.post(f"{base}/v1/echo", BODY)
    assert seen.seen[-1].headers.get("cookie") == "session=abc123"


def test_a_redirect_is_followed_like_the_session_does(recorder: tuple[str, Recorder]) -> None:
    base, seen = recorder
    response = FastJsonPost(_session(), (5.0, 5.0)).post(f"{base}/v1/moved", BODY)
    assert response.status_code == 200 and response.json()["path"] == "/v1/echo"
    assert response.json()["echo"] == BODY  # 307 keeps the method and the body
    assert seen.seen[-1].line == "POST /v1/echo HTTP/1.1"


def test_a_proxy_from_the_environment_is_used(recorder: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, seen = recorder
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    FastJsonPost(_session(), (5.0, 5.0)).post("http://upstream.invalid/v1/echo", BODY)
    assert seen.seen[-1].line == "POST http://upstream.invalid/v1/echo HTTP/1.1"  # absolute form: a proxy request


def test_read_timeout_is_requests_read_timeout(recorder: tuple[str, Recorder]) -> None:
    base, _ = recorder
    with pytest.raises(requests.ReadTimeout):
        FastJsonPost(_session(), (5.0, 0.2)).post(f"{base}/v1/stall", BODY)


def test_dropped_connection_is_a_connection_error(recorder: tuple[str, Recorder]) -> None:
    base, _ = recorder
    with pytest.raises(requests.ConnectionError) as info:
        FastJsonPost(_session(), (5.0, 5.0)).post(f"{base}/v1/drop", BODY)
    assert not isinstance(info.value, requests.Timeout)


def test_refused_connection_is_a_connection_error_not_a_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(requests.ConnectionError) as info:
        FastJsonPost(_session(), (5.0, 5.0)).post(f"http://127.0.0.1:{port}/v1/echo", BODY)
    assert not isinstance(info.value, requests.Timeout)
