"""HTTP transport of the test server: a keep-alive threading server and its request handler.

Benchmarks hold 128+ keep-alive connections at once, so the server has a deep accept
backlog, one daemon thread per connection, whole responses in one write (no Nagle stalls),
and no per-request logging. ``stop()`` must not hang on idle or sleeping connections, so
they are tracked and shut down, and every wait is on the ``stopping`` event.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from airflow_provider_anyfast.testing.answers import completion as completion_body
from airflow_provider_anyfast.testing.answers import last_user_text, make_answer, messages_text, stream_events
from airflow_provider_anyfast.testing.control import handle_control
from airflow_provider_anyfast.testing.faults import CONTENT_KINDS, ERROR_KINDS, Fault, Reply, api_error
from airflow_provider_anyfast.testing.parts import check_parts
from airflow_provider_anyfast.testing.profiles import (
    PROFILE_HEADER,
    bad_token,
    check_profile,
    prompt_blocked,
    render_error,
    reshape_answer,
    reshape_body,
    stream_for_profile,
    unknown_model,
)
from airflow_provider_anyfast.testing.state import RequestRecord, ServerState
from airflow_provider_anyfast.testing.usage import usage_for
from airflow_provider_anyfast.testing.validation import bad_request, validate_chat

MAX_BODY_BYTES = 32 * 1024 * 1024
CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"


class AnyFastHTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that knows the state, token and models, and its open connections."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], state: ServerState, token: str, models: Sequence[str], log_bodies: bool
    ) -> None:
        self.state = state
        self.token = token
        self.models = tuple(models)
        self.log_bodies = log_bodies
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, AnyFastHandler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse DNS lookup (slow where DNS is broken)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection so ``close_connections`` can end it."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget a finished connection."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away; print real bugs."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut down every open connection so its handler thread ends now."""
        self.stopping.set()
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Dropped(Exception):
    """The answer was abandoned (the server is stopping): close without a response."""


class AnyFastHandler(BaseHTTPRequestHandler):
    """Answers ``/v1/models``, ``/v1/chat/completions`` and ``/_control/...``."""

    protocol_version = "HTTP/1.1"
    server_version = "AnyFastTestServer/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections end eventually
    server: AnyFastHTTPServer
    profile = "anyfast"  # the gateway this request is answered as (profiles.py)

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request logging: benchmarks would drown in it."""

    def do_GET(self) -> None:
        """Dispatch a GET."""
        self._dispatch()

    def do_POST(self) -> None:
        """Dispatch a POST."""
        self._dispatch()

    # --- plumbing -----------------------------------------------------------------------

    def _send(self, reply: Reply, close: bool = False) -> None:
        """Write status line, headers and body in one write, always with Content-Length."""
        lines = [
            f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('Status',))[0]}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in reply.headers)
        if close or self.close_connection:
            self.close_connection = True
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body)

    def _send_stream(self, events: list[dict[str, Any] | str], close: bool) -> None:
        """Server-sent events with chunked transfer encoding (each event its own chunk)."""
        lines = [
            "HTTP/1.1 200 OK",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            "Content-Type: text/event-stream",
            "Cache-Control: no-cache",
            "Transfer-Encoding: chunked",
        ]
        if close or self.close_connection:
            self.close_connection = True
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        payloads = [b": keep-alive\n\n"]
        payloads += [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events]
        for payload in payloads:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.write(b"0\r\n\r\n")

    def _read_body(self) -> bytes | None:
        """The request body, or None after refusing it (the connection then closes)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(api_error(411, "Content-Length required", err_type="invalid_request_error",
                                 code="length_required"), close=True)  # fmt: skip
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send(bad_request("Content-Length", "must be a non-negative integer"), close=True)
            return None
        if length > MAX_BODY_BYTES:
            self._send(api_error(413, "Request entity too large", err_type="invalid_request_error",
                                 code="request_too_large"), close=True)  # fmt: skip
            return None
        return self.rfile.read(length) if length else b""

    def _wait(self, seconds: float) -> None:
        """Sleep without blocking others; a stopping server abandons the answer."""
        if seconds > 0 and self.server.stopping.wait(seconds):
            raise _Dropped

    # --- routing ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        started, wall = time.monotonic(), time.time()
        path, _, query = self.path.partition("?")
        raw = self._read_body()
        if raw is None:
            return
        if path.startswith("/_control/"):
            self._send(handle_control(self.server.state, self.command, path, query, raw))
            return

        def log(status: int, auth_ok: bool, fault: str | None = None, body: Any = None, text: Any = None) -> None:
            keep = self.server.log_bodies
            entry = RequestRecord(started, wall, self.command, path, status, fault,
                                  body if keep else None, auth_ok, text if keep else None)  # fmt: skip
            self.server.state.record(entry)

        try:
            self.profile = check_profile(self.headers.get(PROFILE_HEADER) or self.server.state.profile)
        except ValueError as exc:
            self._send(api_error(400, str(exc), err_type="control_error", code=None))
            return
        auth_error = self._auth_error() if path.startswith("/v1/") or path == "/v1" else None
        if auth_error is not None:
            log(auth_error.status, False)
            self._send(auth_error)
            return
        if path == MODELS_PATH and self.command == "GET":
            data = [
                {"id": m, "object": "model", "owned_by": "google", "supported_endpoint_types": ["openai"]}
                for m in self.server.models
            ]
            log(200, True)
            self._send(Reply(200, json.dumps({"object": "list", "data": data}).encode()))
            return
        if path == CHAT_PATH and self.command == "POST":
            try:
                self._chat(raw, log)
            except _Dropped:
                log(0, True)
                self.close_connection = True
            return
        reply = api_error(404, f"Invalid URL ({self.command} {path})", err_type="invalid_request_error",
                          code="not_found")  # fmt: skip
        log(404, path.startswith("/v1"))
        self._send(reply)

    def _auth_error(self) -> Reply | None:
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not given.strip():
            return bad_token(self.profile, "No token provided")
        if not hmac.compare_digest(given.strip().encode(), self.server.token.encode()):
            return bad_token(self.profile, "Invalid token")
        return None

    def _chat(self, raw: bytes, log: Any) -> None:
        self._wait(self.server.state.latency)
        try:
            body = json.loads(raw)
        except ValueError:
            log(400, True)
            self._send(bad_request("body", "is not valid JSON"))
            return
        invalid = validate_chat(body, self.server.models)
        if invalid is None:
            invalid = check_parts(body["messages"])
        elif invalid.status == 404 and isinstance(body, dict) and body.get("model"):
            invalid = unknown_model(self.profile, str(body["model"]))
        if invalid is not None:
            log(invalid.status, True, body=body if isinstance(body, dict) else None)
            self._send(invalid)
            return
        messages = body["messages"]
        text = last_user_text(messages)
        fault = self.server.state.choose_fault(messages_text(messages))
        kind = fault.kind if fault is not None else None
        stream = bool(body.get("stream"))
        if kind == "drop":
            log(0, True, kind, body, text)
            self.close_connection = True
            return
        if kind == "slow" and fault is not None:
            self._wait(fault.delay)
        if kind == "hold":
            self.server.state.hold(self.server.stopping)
            if self.server.stopping.is_set():
                raise _Dropped
        if kind == "stream_error" and not stream:
            fault = Fault("server_error", status=500)
        if fault is not None and fault.kind in ERROR_KINDS:
            reply = render_error(self.profile, fault, self.headers.get("Authorization", ""))
            log(reply.status, True, kind, body, text)
            self._send(reply)
            return
        blocked = prompt_blocked(self.profile) if kind == "prompt_blocked" else None
        if kind == "error_200":
            blocked = Reply(200, json.dumps({"error": {"message": "No candidates returned", "type": "upstream_error",
                                                       "code": "empty_response"}}).encode())  # fmt: skip
        if isinstance(blocked, Reply):
            log(blocked.status, True, kind, body, text)
            self._send(blocked)
            return
        answer = blocked or make_answer(body, kind if kind in CONTENT_KINDS else None)
        answer = reshape_answer(self.profile, answer, body.get("max_tokens"))
        cached = self.server.state.prefix_cache.cached_chars(body["model"], messages)
        usage = usage_for(body["model"], messages, answer.content, cached)
        if kind == "truncated" and body.get("max_tokens"):
            usage = {**usage, "completion_tokens": body["max_tokens"]}  # a cut answer used all of max_tokens
            usage["total_tokens"] = usage["prompt_tokens"] + body["max_tokens"]
        log(200, True, kind, body, text)
        if stream:
            events = stream_events(body, answer, usage, kind)
            if kind == "stream_break" or self.profile == "one-api":
                events = stream_for_profile(self.profile, events, broken=kind == "stream_break")
            self._send_stream(events, close=kind in ("stream_error", "stream_no_done"))
        else:
            data = completion_body(body, answer, usage)
            self._send(Reply(200, json.dumps(reshape_body(self.profile, data, {kind} if kind else set())).encode()))
