"""The ``/_control/`` endpoints: let another process (a demo, a crash test) drive the server.

A subprocess server cannot be reached through Python objects, so its fault plan, latency
and request log are exposed over HTTP, without auth (``/_control/release`` answers held requests).
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_anyfast.testing.faults import Fault, Reply
from airflow_provider_anyfast.testing.limiter import ServerRateLimit
from airflow_provider_anyfast.testing.profiles import check_profile
from airflow_provider_anyfast.testing.state import ServerState


def _json(status: int, data: Any) -> Reply:
    return Reply(status, json.dumps(data).encode())


def _control_error(message: str) -> Reply:
    return _json(400, {"error": {"message": message, "type": "control_error", "param": "", "code": None}})


def _apply_faults(state: ServerState, data: Any) -> None:
    """Validate the whole ``/_control/faults`` body first, then apply it (all or nothing)."""
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    unknown = set(data) - {"push", "rules", "random", "latency", "rate_limit"}
    if unknown:
        raise ValueError(f"unknown keys: {sorted(unknown)}")
    pushes = [(Fault.from_dict(p["fault"]), int(p.get("times", 1))) for p in data.get("push") or []]
    rules = [
        (str(r["contains"]), Fault.from_dict(r["fault"]), None if r.get("times") is None else int(r["times"]))
        for r in data.get("rules") or []
    ]
    random_cfg = data.get("random")
    if random_cfg is not None and not isinstance(random_cfg.get("rates"), dict):
        raise ValueError("random needs a 'rates' object")
    latency = data.get("latency")
    if latency is not None and (not isinstance(latency, int | float) or latency < 0):
        raise ValueError("latency must be a number >= 0")
    limit = data.get("rate_limit")  # {"rpm": 600, "burst_seconds": 1} or null
    server_limit = None if limit is None else ServerRateLimit(float(limit["rpm"]), float(limit.get("burst_seconds", 1)))
    if random_cfg is not None:
        hints = random_cfg.get("retry_hints")
        state.set_random_faults(
            {str(k): float(v) for k, v in random_cfg["rates"].items()}, seed=random_cfg.get("seed"),
            retry_hints=None if hints is None else (float(hints[0]), float(hints[1])),
            slow_delay=float(random_cfg.get("slow_delay", 1.0)),
        )  # fmt: skip
    for fault, times in pushes:
        state.push_fault(fault, times)
    for contains, fault, rule_times in rules:
        state.add_rule(contains, fault, rule_times)
    if latency is not None:
        state.latency = float(latency)
    if "rate_limit" in data:
        state.rate_limit = server_limit


def handle_control(state: ServerState, method: str, path: str, query: str, raw: bytes) -> Reply:
    """Answer one ``/_control/...`` request."""
    if method == "POST" and path == "/_control/reset":
        state.reset()
        return _json(200, {"ok": True})
    if method == "POST" and path == "/_control/faults":
        try:
            _apply_faults(state, json.loads(raw or b"{}"))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return _control_error(f"bad fault plan: {exc}")
        return _json(200, {"ok": True})
    if method == "POST" and path == "/_control/profile":
        try:
            state.profile = check_profile(str(json.loads(raw or b"{}").get("profile")))
        except (ValueError, AttributeError) as exc:
            return _control_error(str(exc))
        return _json(200, {"ok": True, "profile": state.profile})
    if method == "POST" and path == "/_control/release":
        state.release()
        return _json(200, {"ok": True})
    if method == "GET" and path == "/_control/requests":
        bodies = "bodies=1" in query.split("&")
        records = state.records()
        return _json(200, {"count": len(records), "requests": [r.to_json(bodies) for r in records]})
    return _json(404, {"error": {"message": f"unknown control endpoint {method} {path}", "type": "control_error"}})
