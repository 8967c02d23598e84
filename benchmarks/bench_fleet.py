"""A fleet against a limit it is not told: N processes, one account, one Redis.

The server enforces ``--rpm`` requests a minute (429 without a hint past it); the
clients are configured with no limit. Run: ``python -m benchmarks.bench_fleet``.
Beside the provider's fleet (shared, adaptive pacing through Redis), the same number of
processes each run the openai SDK with its default retries (2, with its own backoff).
Counted at the server: goodput (answered requests a minute, between the first arrival
and the last answer) against the limit, and the share of requests answered 429.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.bench_server import TOKEN, ServerProcess

WORKER = Path(__file__).resolve().parent.parent / "tests" / "limits" / "fleet_worker.py"
CHAT = "/v1/chat/completions"


def start_redis() -> tuple[subprocess.Popen[str], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is missing: run scripts/bootstrap.sh as root, or apt-get install redis-server")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Ready to accept connections" in line:
            return proc, f"redis://127.0.0.1:{port}/0"
    raise RuntimeError("redis-server did not start")


def figures(server: ServerProcess, rpm: float) -> dict[str, Any]:
    log = [r for r in server.requests() if r["path"] == CHAT]
    ok = sorted(r["time"] for r in log if r["status"] == 200)
    limited = sum(1 for r in log if r["status"] == 429)
    first = min(r["time"] for r in log)
    steady = [t for t in ok if t >= first + 5.0]  # past the start-up burst the server's bucket allows
    return {"requests": len(log), "answered": len(ok), "429": limited, "share_429": limited / len(log),
            "goodput_vs_limit": (len(ok) / (max(ok) - first) * 60.0) / rpm,
            "steady_vs_limit": (len(steady) / (max(ok) - first - 5.0) * 60.0) / rpm}  # fmt: skip


def provider_fleet(server: ServerProcess, redis_url: str, n: int, per: int, out: str) -> None:
    procs = []
    for i in range(n):
        cfg = {"base_url": server.base_url, "token": TOKEN, "redis_url": redis_url, "output_path": f"file://{out}",
               "map_index": i, "first": i * 100_000, "records": per, "concurrency": 8}  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, str(WORKER), json.dumps(cfg)], stdout=subprocess.PIPE))
    for proc in procs:
        proc.communicate()


def openai_worker(base_url: str, first: int, per: int) -> None:
    """One process: the openai SDK, default retries, 8 threads."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key=TOKEN)

    def one(i: int) -> bool:
        try:
            client.chat.completions.create(
                model="gemini-2.5-flash",
                messages=[{"role": "user", "content": f"Classify: ticket {i}"}],
                response_format={"type": "json_object"},
                max_tokens=50,
            )  # type: ignore[call-overload]
            return True
        except Exception:
            return False

    with ThreadPoolExecutor(8) as pool:
        ok = sum(pool.map(one, range(first, first + per)))
    print(json.dumps({"ok": ok, "failed": per - ok}))


def openai_fleet(server: ServerProcess, n: int, per: int) -> int:
    cmd = [sys.executable, "-m", "benchmarks.bench_fleet", "--openai-worker", server.base_url]
    procs = [subprocess.Popen([*cmd, str(i * 100_000), str(per)], stdout=subprocess.PIPE, text=True) for i in range(n)]
    return sum(json.loads(p.communicate()[0].strip().splitlines()[-1])["failed"] for p in procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--records", type=int, default=150, help="per process")
    parser.add_argument("--rpm", type=float, default=1200, help="the server's limit, unknown to the clients")
    parser.add_argument("--openai-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.openai_worker:
        openai_worker(args.openai_worker[0], int(args.openai_worker[1]), int(args.openai_worker[2]))
        return 0
    redis, redis_url = start_redis()
    try:
        with ServerProcess(latency=0.05) as server, tempfile.TemporaryDirectory() as out:
            print(f"{args.processes} processes x {args.records} records, server limit {args.rpm:.0f}/min (unannounced)")
            for name in ("provider fleet (shared Redis pacing)", "openai SDK, default retries"):
                server.reset(latency=0.05)
                server._control("POST", "faults", {"rate_limit": {"rpm": args.rpm}})
                failed = 0
                if name.startswith("provider"):
                    provider_fleet(server, redis_url, args.processes, args.records, out)
                else:
                    failed = openai_fleet(server, args.processes, args.records)
                f = figures(server, args.rpm)
                print(f"{name:40s} goodput {f['goodput_vs_limit']:.2f} of the limit ({f['steady_vs_limit']:.2f} "
                      f"after 5 s), {f['429']} of {f['requests']} requests 429 ({100 * f['share_429']:.1f} %), "
                      f"records failed: {failed}")  # fmt: skip
    finally:
        redis.terminate()
        redis.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
