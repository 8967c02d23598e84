"""An AnyFast-compatible chat-completions server with fault injection, for tests, demos and benchmarks.

The provider must be tested against every way the real gateway fails (rate limits with
each kind of retry hint, odd error bodies, dropped connections, fenced or cut-off JSON,
broken streams) without network access, so this server imitates the API
(``/v1/models``, ``/v1/chat/completions``) and lets a test decide which request fails how.

Per chat request, after auth and validation: fault rules first (substring of the message
text), then the FIFO queue, then the server's own rate limit if one is set (``set_rate_limit``:
a 429 without a hint, the client is not told the limit), then random faults, else a normal,
deterministic answer.
Authenticated chat requests first wait ``latency`` seconds. Fault kinds: ``rate_limit``,
``server_error``, ``status``, ``drop``, ``slow``, ``fence``, ``prose``, ``invalid_json``,
``schema_mismatch``, ``truncated``, ``filtered``, ``filtered_raw``, ``empty``,
``stream_error`` (a 500 for a non-streaming request), ``stream_no_done`` and
``stream_break`` (no finish_reason, yet usage and ``[DONE]``; both a normal answer for a
non-streaming request), ``prompt_blocked``, the body quirks ``nulls``, ``parts``,
``no_usage`` and ``error_200``, and ``hold`` (a normal answer, once ``release()`` is
called: lets a test act at a known point of a run). Usage rules: see ``usage.py``.
Gateway profiles (new-api, one-api, LiteLLM shapes): see ``profiles.py``.

Run it alone with ``python -m airflow_provider_anyfast.testing.server --port 0``; other
processes drive it through ``/_control/reset``, ``/_control/faults`` and ``/_control/requests``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType, TracebackType

from airflow_provider_anyfast.core.params import KNOWN_MODELS
from airflow_provider_anyfast.testing.faults import Fault
from airflow_provider_anyfast.testing.handler import AnyFastHTTPServer
from airflow_provider_anyfast.testing.limiter import ServerRateLimit
from airflow_provider_anyfast.testing.profiles import PROFILES, check_profile
from airflow_provider_anyfast.testing.state import RequestRecord, ServerState

__all__ = ["DEFAULT_MODELS", "AnyFastTestServer", "Fault", "RequestRecord", "main"]

DEFAULT_MODELS: tuple[str, ...] = KNOWN_MODELS  # the API reference's list, kept as data in one place


class AnyFastTestServer:
    """The server in a background thread; configure faults before or while it runs."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "test-token",
        latency: float = 0.0,
        seed: int = 0,
        models: Sequence[str] | None = None,
        log_bodies: bool = True,
        profile: str = "anyfast",
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.models: tuple[str, ...] = tuple(models) if models is not None else DEFAULT_MODELS
        self.log_bodies = log_bodies
        self._state = ServerState(seed=seed, latency=latency, profile=profile)
        self._httpd: AnyFastHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"AnyFastTestServer(base_url={self.base_url!r}, token='***')"

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> AnyFastTestServer:
        """Bind and serve in a daemon thread; ``port=0`` picks a free port."""
        if self._httpd is not None:
            return self
        httpd = AnyFastHTTPServer((self.host, self.port), self._state, self.token, self.models, self.log_bodies)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="anyfast-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end every open connection and release the port (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.stopping.set()
        self._state.wake()  # held requests notice the stop
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> AnyFastTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://host:port`` without ``/v1``."""
        return f"http://{self.host}:{self.port}"

    # --- inspection and control ---------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot copy of the request log (control requests are not logged)."""
        return self._state.records()

    def request_count(self, path: str | None = "/v1/chat/completions") -> int:
        """Logged requests to ``path`` (every logged request for None)."""
        return self._state.count(path)

    def reset(self) -> None:
        """Clear the log, queued faults, rules, random faults and the prefix cache."""
        self._state.reset()

    @property
    def latency(self) -> float:
        """Seconds every authenticated chat request waits before it is answered."""
        return self._state.latency

    @latency.setter
    def latency(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency must be >= 0")
        self._state.latency = float(value)

    @property
    def profile(self) -> str:
        """The gateway whose shapes the server answers in: anyfast, new-api, one-api or litellm.

        Setting it lasts until ``reset``; a request's ``X-Test-Gateway-Profile`` header wins.
        """
        return self._state.profile

    @profile.setter
    def profile(self, value: str) -> None:
        self._state.profile = check_profile(value)

    def push_fault(self, fault: Fault, times: int = 1) -> None:
        """The next ``times`` chat requests get ``fault`` (FIFO, after rules)."""
        self._state.push_fault(fault, times)

    def storm(self, seconds: float, fault: Fault) -> None:
        """Every chat request in the next ``seconds`` gets ``fault`` (before rules), e.g. a 429 storm."""
        self._state.storm(seconds, fault)

    def add_rule(self, contains: str, fault: Fault, times: int | None = None) -> None:
        """Chat requests whose message text contains ``contains`` get ``fault`` (``times`` None: always)."""
        self._state.add_rule(contains, fault, times)

    def set_random_faults(
        self,
        rates: dict[str, float],
        seed: int | None = None,
        *,
        retry_hints: tuple[float, float] | None = None,
        slow_delay: float = 1.0,
    ) -> None:
        """Each chat request draws a fault kind with these probabilities (seeded RNG).

        ``retry_hints=(low, high)``: each ``rate_limit`` draw carries one of the three retry
        hint forms with a wait in that range; ``slow`` draws answer after ``slow_delay`` s.
        """
        self._state.set_random_faults(rates, seed, retry_hints=retry_hints, slow_delay=slow_delay)

    def set_rate_limit(self, rpm: float | None, burst_seconds: float = 1.0) -> None:
        """Answer 429 (no hint) to chat requests past ``rpm`` a minute plus a burst; None: no limit."""
        self._state.rate_limit = None if rpm is None else ServerRateLimit(rpm, burst_seconds)

    def wait_for_requests(self, n: int, timeout: float = 30.0, path: str | None = "/v1/chat/completions") -> int:
        """Block until ``n`` requests to ``path`` are logged (a dropped or timed-out one too); TimeoutError else."""
        return self._state.wait_for_requests(n, timeout, path)

    def wait_for_held(self, n: int = 1, timeout: float = 30.0) -> None:
        """Block until ``n`` requests with a ``hold`` fault are waiting; TimeoutError else."""
        self._state.wait_for_held(n, timeout)

    def release(self) -> None:
        """Answer every held request (and let later ``hold`` requests through) until ``reset``."""
        self._state.release()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_anyfast.testing.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default=None, help="comma-separated model list (default: the built-in one)")
    parser.add_argument("--profile", default="anyfast", choices=PROFILES, help="answer as this gateway does")
    parser.add_argument("--no-log-bodies", action="store_true", help="do not keep request bodies in the log")
    parser.add_argument(
        "--random-fault", action="append", default=[], metavar="KIND=RATE", help="repeatable, e.g. rate_limit=0.1"
    )
    parser.add_argument(
        "--retry-hints", default=None, metavar="LOW,HIGH",
        help="random rate limits carry a retry hint (each of the three forms) of LOW to HIGH seconds",
    )  # fmt: skip
    parser.add_argument("--rate-limit", type=float, default=None, metavar="RPM",
                        help="answer 429 (no hint) past RPM chat requests a minute")  # fmt: skip
    parser.add_argument("--slow-delay", type=float, default=1.0, help="seconds a random 'slow' answer takes")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, after printing the one ``listening on`` line."""
    args = _parse_args(argv)
    rates: dict[str, float] = {}
    for item in args.random_fault:
        kind, sep, rate = item.partition("=")
        if not sep:
            raise SystemExit(f"--random-fault wants KIND=RATE, got {item!r}")
        rates[kind.strip()] = float(rate)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    server = AnyFastTestServer(
        args.host,
        args.port,
        args.token,
        args.latency,
        args.seed,
        models,
        log_bodies=not args.no_log_bodies,
        profile=args.profile,
    )
    hints = None
    if args.retry_hints:
        low, _, high = args.retry_hints.partition(",")
        hints = (float(low), float(high or low))
    if rates:
        server.set_random_faults(rates, seed=args.seed, retry_hints=hints, slow_delay=args.slow_delay)
    if args.rate_limit:
        server.set_rate_limit(args.rate_limit)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(f"AnyFast test server listening on {server.base_url}", flush=True)
    try:
        while not done.wait(1.0):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
