"""The test-server features the reliability tests stand on: hinted random 429s, waiting on events, held requests."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from airflow_provider_anyfast.core.retry import retry_after_from_headers
from airflow_provider_anyfast.exceptions import gemini_retry_delay
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault
from airflow_provider_anyfast.testing.state import ServerState


@pytest.fixture
def session(anyfast_server: AnyFastTestServer) -> Iterator[requests.Session]:
    with requests.Session() as sess:
        sess.headers["Authorization"] = f"Bearer {anyfast_server.token}"
        yield sess


def chat(server: AnyFastTestServer, session: requests.Session, text: str = "hello") -> requests.Response:
    body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": text}]}
    return session.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=10)


def hint_form(response: requests.Response) -> tuple[str, float]:
    """Which of the three retry-hint forms a 429 used, and the wait it asks for."""
    if "retry-after-ms" in response.headers:
        return "retry_after_ms", float(retry_after_from_headers(response.headers) or 0)
    if "Retry-After" in response.headers:
        return "retry_after", float(retry_after_from_headers(response.headers) or 0)
    return "retry_delay", float(gemini_retry_delay(response.json()["error"]) or 0)


def test_random_rate_limits_carry_every_hint_form(anyfast_server: AnyFastTestServer, session: requests.Session) -> None:
    anyfast_server.set_random_faults({"rate_limit": 1.0}, seed=5, retry_hints=(0.01, 0.05))
    forms = [hint_form(chat(anyfast_server, session)) for _ in range(60)]
    assert set(Counter(form for form, _ in forms)) == {"retry_after", "retry_after_ms", "retry_delay"}
    assert all(0.01 <= wait <= 0.05 for _, wait in forms)


def test_random_hints_are_seeded() -> None:
    def draws(seed: int) -> list[Fault | None]:
        state = ServerState()
        state.set_random_faults({"rate_limit": 0.5, "slow": 0.2}, seed=seed, retry_hints=(0.01, 0.05), slow_delay=0.3)
        return [state.choose_fault("x") for _ in range(200)]

    assert draws(11) == draws(11) != draws(12)
    assert {f.delay for f in draws(11) if f is not None and f.kind == "slow"} == {0.3}
    with pytest.raises(ValueError, match="retry_hints"):
        ServerState().set_random_faults({"rate_limit": 0.1}, retry_hints=(0.5, 0.1))


def test_wait_for_requests_wakes_on_the_nth_request(
    anyfast_server: AnyFastTestServer, session: requests.Session
) -> None:
    with pytest.raises(TimeoutError):
        anyfast_server.wait_for_requests(1, timeout=0.05)
    sender = threading.Thread(target=lambda: [chat(anyfast_server, session) for _ in range(3)])
    sender.start()
    assert anyfast_server.wait_for_requests(3, timeout=10) == 3
    sender.join()


def test_held_requests_wait_for_release(anyfast_server: AnyFastTestServer, session: requests.Session) -> None:
    anyfast_server.add_rule("HOLD", Fault("hold"))
    answers: list[int] = []
    sender = threading.Thread(target=lambda: answers.append(chat(anyfast_server, session, "HOLD me").status_code))
    sender.start()
    anyfast_server.wait_for_held(1, timeout=10)
    assert answers == [] and anyfast_server.request_count() == 0  # held: not answered, not yet logged
    anyfast_server.release()
    sender.join()
    assert answers == [200] and [r.fault for r in anyfast_server.requests] == ["hold"]
    assert chat(anyfast_server, session, "HOLD again").status_code == 200  # released until reset


def test_a_stopping_server_drops_held_requests() -> None:
    server = AnyFastTestServer(token="t").start()
    server.add_rule("HOLD", Fault("hold"))
    failures: list[BaseException] = []

    def send() -> None:
        try:
            body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "HOLD"}]}
            requests.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=10,
                          headers={"Authorization": "Bearer t"})  # fmt: skip
        except requests.RequestException as exc:
            failures.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    server.wait_for_held(1, timeout=10)
    server.stop()
    sender.join()
    server.wait_for_requests(1, timeout=10)  # the handler logs the drop when it wakes, maybe after stop()
    assert len(failures) == 1 and [r.status for r in server.requests] == [0]


def test_echo_auth_repeats_the_header(anyfast_server: AnyFastTestServer, session: requests.Session) -> None:
    anyfast_server.push_fault(Fault("status", status=400, echo_auth=True))
    assert f"Authorization: Bearer {anyfast_server.token}" in chat(anyfast_server, session).text


def test_control_endpoints_drive_hints_and_release(
    anyfast_server: AnyFastTestServer, session: requests.Session
) -> None:
    plan = {"random": {"rates": {"rate_limit": 1.0}, "seed": 3, "retry_hints": [0.02, 0.02]}}
    assert requests.post(f"{anyfast_server.base_url}/_control/faults", json=plan, timeout=5).json() == {"ok": True}
    assert hint_form(chat(anyfast_server, session))[1] == 0.02
    anyfast_server.reset()
    anyfast_server.add_rule("HOLD", Fault("hold"))
    sender = threading.Thread(target=chat, args=(anyfast_server, session, "HOLD"))
    sender.start()
    anyfast_server.wait_for_held(1, timeout=10)
    assert requests.post(f"{anyfast_server.base_url}/_control/release", timeout=5).json() == {"ok": True}
    sender.join()
    assert [r.fault for r in anyfast_server.requests] == ["hold"]


def test_cli_serves_hinted_random_rate_limits() -> None:
    """``--retry-hints`` for a server run as its own process (as the crash tests could)."""
    cmd = [sys.executable, "-m", "airflow_provider_anyfast.testing.server", "--port", "0", "--token", "cli",
           "--random-fault", "rate_limit=1", "--retry-hints", "0.03,0.03", "--seed", "4"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().rsplit(" ", 1)[1].strip()
        body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}
        with requests.Session() as sess:
            sess.headers["Authorization"] = "Bearer cli"
            answers = [sess.post(f"{base}/v1/chat/completions", json=body, timeout=10) for _ in range(12)]
        assert {r.status_code for r in answers} == {429} and {hint_form(r)[1] for r in answers} == {0.03}
        assert len({hint_form(r)[0] for r in answers}) > 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
