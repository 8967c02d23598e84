"""Four real task processes share one account limit, one pause and one job budget through Redis.

Counted where it is paid: request arrivals at the server (its own clock), and the rows
each process wrote. The rate is 600 a minute, measured over 20 s (200 requests) after
the first 2 s, which leaves out the one-second burst the bucket allows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow_provider_anyfast.testing.faults import Fault
from airflow_provider_anyfast.testing.server import AnyFastTestServer

CHAT = "/v1/chat/completions"
WORKER = Path(__file__).with_name("fleet_worker.py")


def start_fleet(n: int, server: AnyFastTestServer, redis_url: str, out: Path, **config: Any) -> list[Any]:
    procs = []
    for i in range(n):
        cfg = {"base_url": server.base_url, "token": server.token, "redis_url": redis_url, "output_path": f"file://{out}",
               "map_index": i, "first": i * 1000, **config}  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, str(WORKER), json.dumps(cfg)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))  # fmt: skip
    return procs


def finish(procs: list[Any]) -> list[dict[str, Any]]:
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


def rows(out: Path) -> list[dict[str, Any]]:
    """Every row the fleet wrote, from every instance's folder."""
    found = []
    for path in sorted(out.glob("map_index=*/rows/*")):
        found += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return found


def arrivals(server: AnyFastTestServer) -> list[Any]:
    return sorted((r for r in server.requests if r.path == CHAT), key=lambda r: r.time)


def test_four_processes_share_600_rpm_and_one_429_pauses_them_all(
    anyfast_server: AnyFastTestServer, redis_server: Any, tmp_path: Path
) -> None:
    anyfast_server.latency = 0.05
    procs = start_fleet(4, anyfast_server, redis_server.url, tmp_path, records=80, extras={"requests_per_minute": 600})
    anyfast_server.wait_for_requests(250, timeout=120)  # past the rate window: now one 429 with a hint
    anyfast_server.push_fault(Fault("rate_limit", retry_after=5))
    results = finish(procs)
    assert sum(r["counts"]["success"] for r in results) == 320  # nothing lost
    times = [r.time for r in arrivals(anyfast_server)]
    start = times[0] + 2.0
    in_window = sum(1 for t in times if start <= t < start + 20.0)
    assert 190 <= in_window <= 210, f"{in_window} requests in 20 s at 600/min (want 200 +- 5 %)"
    (limited,) = [r for r in arrivals(anyfast_server) if r.status == 429]
    before = sum(1 for t in times if limited.time - 3.5 <= t < limited.time - 0.5)
    during = sum(1 for t in times if limited.time + 1.0 <= t < limited.time + 4.5)
    after = sum(1 for t in times if t >= limited.time + 4.9)
    print(f"fleet: {in_window} arrivals in 20 s at 600/min; 429: {before} before, {during} during, {after} after")
    assert before >= 25, before  # all four were sending at 10/s
    assert during == 0, f"{during} requests arrived while Retry-After: 5 paused the fleet"
    assert after >= 40  # and sending resumed (the 429'd one was retried)


def test_a_job_budget_over_four_instances_overshoots_by_at_most_what_was_in_flight(
    anyfast_server: AnyFastTestServer, redis_server: Any, tmp_path: Path
) -> None:
    budget = 2_000
    procs = start_fleet(4, anyfast_server, redis_server.url, tmp_path, records=40, concurrency=2,
                        max_total_tokens=budget, run_id="budget-run")  # fmt: skip
    results = finish(procs)
    per_request = max(r["usage"]["total_tokens"] / max(1, r["counts"]["success"]) for r in results if r["usage"])
    spent = sum(r["usage"]["total_tokens"] for r in results if r["usage"])
    paid = sum(1 for r in arrivals(anyfast_server) if r.status == 200)
    assert paid == sum(r["counts"]["success"] for r in results) < 160
    print(f"budget {budget}: spent {spent} over 4 instances, {per_request:.0f} tokens a request, {paid} answered")
    # Reservations are estimates: the fleet stops once spent + reserved reach the budget, so it may end a little
    # over (what was in flight) or a little under (in-flight estimates that settled lower), never by more than
    # the 4 x 2 requests in flight at once.
    in_flight = 4 * 2 * per_request * 1.5
    assert budget - in_flight <= spent <= budget + in_flight, (spent, per_request)
    written = rows(tmp_path)
    assert len(written) == 160 and len({r["id"] for r in written}) == 160  # every record has a row
    unsent = [r for r in written if r["status"] != "success"]
    assert unsent and {r["error"]["type"] for r in unsent} == {"budget_exhausted"} and len(unsent) == 160 - paid
