"""The same records done the way peers do it: one call at a time, or the openai SDK's async client.

Both validate each answer with the same pydantic model and write one JSON line per record,
so they do the work the operator does, minus what the operator adds (plan, resume, limits).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_server import TOKEN, ServerProcess
from benchmarks.bench_workload import MODEL, Ticket, peer_messages, records


@dataclass(frozen=True)
class PeerRun:
    """One peer's pass: how many records, how long, how much CPU, how many valid answers."""

    name: str
    latency: float
    concurrency: int
    records: int
    seconds: float
    cpu_seconds: float
    ok: int

    @property
    def ms_per_record(self) -> float:
        return 1000.0 * self.seconds / self.records

    @property
    def cpu_ms_per_record(self) -> float:
        return 1000.0 * self.cpu_seconds / self.records


def sequential_hook(server: ServerProcess, latency: float, n: int) -> PeerRun:
    """``AnyFastHook.complete_json`` in a loop: what a plain ``@task`` over a list does."""
    from airflow_provider_anyfast.hooks.anyfast import AnyFastHook

    server.reset(latency=latency)
    hook = AnyFastHook()
    ok = 0
    with tempfile.TemporaryDirectory(prefix="anyfast-bench-seq-") as out, (Path(out) / "rows.jsonl").open("w") as rows:
        cpu, start = time.process_time(), time.perf_counter()
        for rec in records(n):
            value = hook.complete_json(peer_messages(rec), schema=Ticket)
            rows.write(json.dumps({"id": rec["id"], "output": value.model_dump(mode="json")}) + "\n")
            ok += 1
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    hook.get_conn().close()
    return PeerRun("hook, one call at a time", latency, 1, n, seconds, cpu, ok)


async def _openai_pass(base_url: str, recs: list[dict[str, Any]], concurrency: int, rows: Any) -> int:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{base_url}/v1", api_key=TOKEN)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(rec: dict[str, Any]) -> bool:
        async with semaphore:
            response = await client.chat.completions.create(
                model=MODEL, messages=peer_messages(rec), response_format={"type": "json_object"}
            )  # type: ignore[call-overload]
        ticket = Ticket.model_validate_json(response.choices[0].message.content or "")
        rows.write(json.dumps({"id": rec["id"], "output": ticket.model_dump(mode="json")}) + "\n")
        return True

    try:
        results = await asyncio.gather(*(one(rec) for rec in recs))
    finally:
        await client.close()
    return sum(results)


def openai_async(server: ServerProcess, latency: float, concurrency: int, n: int) -> PeerRun:
    """The official SDK's ``AsyncOpenAI``, JSON mode, a semaphore of ``concurrency``, pydantic validation."""
    recs = records(n)
    server.reset(latency=latency)
    with tempfile.TemporaryDirectory(prefix="anyfast-bench-oai-") as out, (Path(out) / "rows.jsonl").open("w") as rows:
        cpu, start = time.process_time(), time.perf_counter()
        ok = asyncio.run(_openai_pass(server.base_url, recs, concurrency, rows))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return PeerRun("openai SDK AsyncOpenAI + semaphore", latency, concurrency, n, seconds, cpu, ok)
