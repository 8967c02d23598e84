"""The transport against a recording server: same request on the wire as ``Session.post``, failures as ours.

The server here records the raw request (request line, headers, body) so each test can
compare what the transport sent with what ``requests`` itself sends, and can set cookies,
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

from airflow_provider_anyfast.core.transport import Transport
from airflow_provider_anyfast.exceptions import AnyFastConnectionError, AnyFastTimeoutError

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


HEADERS = {"Authorization": "Bearer sk-test", "User-Agent": "anyfast-test/1"}


def _session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0))
    session.headers.update(HEADERS)
    return session


def _transport(timeout: tuple[float, float] = (5.0, 5.0)) -> Transport:
    return Transport(timeout=timeout, pool_size=4, headers=HEADERS, where="the test server")


def test_same_request_on_the_wire_as_session_post(recorder: tuple[str, Recorder]) -> None:
    base, seen = recorder
    fast = _transport().request("POST", f"{base}/v1/echo", BODY)
    plain = _session().post(f"{base}/v1/echo", json=BODY, timeout=(5.0, 5.0))
    assert fast.status == plain.status_code == 200
    assert fast.json() == plain.json() == {"path": "/v1/echo", "echo": BODY}
    assert fast.headers["content-type"] == "application/json"
    ours, theirs = seen.seen
    assert ours.line == theirs.line == "POST /v1/echo HTTP/1.1"
    assert ours.body == theirs.body
    assert ours.headers == theirs.headers


def test_cookies_are_kept_and_then_sent(recorder: tuple[str, Recorder]) -> None:
    base, seen = recorder
    transport = _transport()
    transport.request("POST", f"{base}/v1/cookie", BODY)
    assert {c.name: c.value for c in transport.cookies}.get("session") == "abc123"
    transport.request("POST", f"{base}/v1/echo", BODY)
    assert seen.seen[-1].headers.get("cookie") == "session=abc123"


def test_a_redirect_is_followed_like_the_session_does(recorder: tuple[str, Recorder]) -> None:
    base, seen = recorder
    response = _transport().request("POST", f"{base}/v1/moved", BODY)
    assert response.status == 200 and response.json()["path"] == "/v1/echo"
    assert response.json()["echo"] == BODY  # 307 keeps the method and the body
    assert seen.seen[-1].line == "POST /v1/echo HTTP/1.1"


def test_a_proxy_from_the_environment_is_used(recorder: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, seen = recorder
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    _transport().request("POST", "http://upstream.invalid/v1/echo", BODY)
    assert seen.seen[-1].line == "POST http://upstream.invalid/v1/echo HTTP/1.1"  # absolute form: a proxy request


def test_no_proxy_from_the_environment_goes_direct(
    recorder: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, seen = recorder
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there: used, it would fail
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.delenv("no_proxy", raising=False)
    assert _transport().request("POST", f"{base}/v1/echo", BODY).status == 200
    assert seen.seen[-1].line == "POST /v1/echo HTTP/1.1"


def test_read_timeout_is_a_timeout(recorder: tuple[str, Recorder]) -> None:
    """Sent, then no answer: it may have been billed."""
    base, _ = recorder
    with pytest.raises(AnyFastTimeoutError, match=r"within 0\.2s") as info:
        _transport((5.0, 0.2)).request("POST", f"{base}/v1/stall", BODY)
    assert info.value.sent


def test_dropped_connection_is_a_connection_error(recorder: tuple[str, Recorder]) -> None:
    base, _ = recorder
    with pytest.raises(AnyFastConnectionError) as info:
        _transport().request("POST", f"{base}/v1/drop", BODY)
    assert not isinstance(info.value, AnyFastTimeoutError) and info.value.sent  # it may have been read


def test_refused_connection_is_a_connection_error_not_a_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(AnyFastConnectionError, match="refused the connection") as info:
        _transport().request("POST", f"http://127.0.0.1:{port}/v1/echo", BODY)
    assert not isinstance(info.value, AnyFastTimeoutError)
    assert not info.value.sent  # no connection: the server never saw it


def test_connect_timeout_is_its_own_error_and_not_billed() -> None:
    """A listener whose backlog is full never accepts: the connect times out, nothing was sent."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):  # fill the accept queue (never accepted)
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            with pytest.raises(AnyFastConnectionError, match=r"no connection .* within 0\.2s") as info:
                _transport((0.2, 5.0)).request("POST", f"http://127.0.0.1:{port}/v1/echo", BODY)
            assert not isinstance(info.value, AnyFastTimeoutError) and not info.value.sent
        finally:
            for filler in fillers:
                filler.close()
