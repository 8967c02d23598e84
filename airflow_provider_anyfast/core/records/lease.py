"""One writer per output folder: a lease file with its holder, a heartbeat and an expiry.

Two task instances writing the same folder pay twice for every record and delete each
other's parts at finalize. The first run takes ``_lease.json``; a second one refuses with a
message naming the holder (dag, run, task, try, host, pid) and when the lease expires.

Taking it is a conditional create where the backend offers one (``open("xb")``: O_EXCL on a
local disk, ``If-None-Match: *`` on S3), so of two runs starting at once exactly one wins.
Elsewhere the lease is written and read back (check after writing). The holder renews it
every ``ttl / 4`` seconds; a lease whose heartbeat is older than ``ttl``, or whose holder
process is gone from this very host, is taken over. A holder that finds its lease taken
(it stalled past the expiry) stops writing at once (``on_lost``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("airflow_provider_anyfast.records")

LEASE_FILE = "_lease.json"
DEFAULT_TTL = 60.0
#: Tokens of the leases this process is heartbeating: a lease naming this very process but not
#: listed here was left by an earlier try that ended (``dag.test`` runs retries in one process).
_LIVE: set[str] = set()
_HOLDER_KEYS = ("dag_id", "run_id", "task_id", "map_index", "try_number", "host", "pid")


class LeaseHeldError(RuntimeError):
    """Another live run holds the output folder: nothing was sent."""


class LeaseLostError(RuntimeError):
    """This run's lease was taken over (it stalled past its expiry): it stopped writing."""


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(holder: Mapping[str, Any]) -> str:
    """The holder as a person reads it: ``dag=... run=... task=... try=... host=... pid=...``."""
    names = {"dag_id": "dag", "run_id": "run", "task_id": "task", "try_number": "try"}
    shown = [k for k in _HOLDER_KEYS if holder.get(k) not in (None, "") and not (k == "map_index" and holder[k] == -1)]
    return " ".join(f"{names.get(k, k)}={holder[k]}" for k in shown)


def _write(path: Any, data: bytes) -> None:
    with path.open("wb") as stream:
        stream.write(data)


def _remove(path: Any) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _pid_gone(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError, TypeError):
        return False
    return False


class Lease:
    """The lease on ``root``: acquire, heartbeat, verify, release."""

    def __init__(
        self,
        root: Any,
        holder: Mapping[str, Any] | None = None,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = root / LEASE_FILE
        self.ttl = ttl
        self.clock = clock
        self.holder = {**(holder or {}), "host": socket.gethostname(), "pid": os.getpid()}
        self.token = uuid.uuid4().hex
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease, or raise ``LeaseHeldError`` naming the live holder."""
        for _ in range(3):
            current = self._read()
            if current is not None:
                if not self._dead(current):
                    raise LeaseHeldError(self._held_message(current))
                log.warning("Taking over the lease on %s from a run that died: %s", self.path.parent,
                            describe(current.get("holder") or {}))  # fmt: skip
                _remove(self.path)
            if self._create():
                break
        else:
            raise LeaseHeldError(self._held_message(self._read() or {}))
        self.verify()

    def start_heartbeat(self, on_lost: Callable[[str], None]) -> None:
        """Renew the lease every ``ttl / 4`` seconds on a daemon thread until ``release``."""

        def beat() -> None:
            while not self._stop.wait(self.ttl / 4):
                try:
                    self.renew()
                except LeaseLostError as exc:
                    on_lost(str(exc))
                    return
                except Exception as exc:  # storage down for a moment: try again at the next beat
                    log.warning("Could not renew the lease on %s: %s", self.path.parent, exc)

        _LIVE.add(self.token)
        self._thread = threading.Thread(target=beat, name="anyfast-lease", daemon=True)
        self._thread.start()

    def abandon(self) -> None:
        """Stop heartbeating but leave the lease file, as a process that died would (crash tests use it)."""
        self._stop.set()
        _LIVE.discard(self.token)

    def renew(self) -> None:
        """Check the lease is still ours, then push its expiry forward."""
        self.verify()
        _write(self.path, self._body())

    def verify(self) -> None:
        """Raise ``LeaseLostError`` when the lease file no longer names this run."""
        if self.lost is not None:
            raise LeaseLostError(self.lost)
        current = self._read()
        if current is None or current.get("token") != self.token:
            other = describe((current or {}).get("holder") or {}) or "nobody (the lease file is gone)"
            self.lost = (
                f"the lease on {self.path.parent} was taken over by {other} (this run stalled past its "
                "expiry?): it stopped writing there so that no record is paid twice"
            )
            raise LeaseLostError(self.lost)

    def release(self) -> None:
        """Stop the heartbeat and remove the lease if it is still ours."""
        self.abandon()
        if self.lost is not None:
            return
        current = self._read_quietly()
        if current is not None and current.get("token") == self.token:
            with contextlib.suppress(Exception):
                _remove(self.path)

    def _body(self) -> bytes:
        now = self.clock()
        data = {"version": 1, "token": self.token, "holder": self.holder, "heartbeat_at": now,
                "expires_at": now + self.ttl, "expires": _when(now + self.ttl)}  # fmt: skip
        return json.dumps(data, separators=(",", ":")).encode()

    def _create(self) -> bool:
        """Write the lease only if there is none; False when another run got there first."""
        try:
            with self.path.open("xb") as stream:
                stream.write(self._body())
        except FileExistsError:
            return False
        except (ValueError, NotImplementedError):  # no exclusive create here: write, then read back
            _write(self.path, self._body())
        return True

    def _read(self) -> dict[str, Any] | None:
        try:
            with self.path.open("rb") as stream:
                data: bytes = stream.read()
        except FileNotFoundError:
            return None
        try:
            lease = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            lease = None
        if not isinstance(lease, dict):  # cut off while written: it expires one ttl after it was written
            return {"holder": {}, "expires_at": self._modified() + self.ttl}
        return lease

    def _read_quietly(self) -> dict[str, Any] | None:
        try:
            return self._read()
        except Exception:
            return None

    def _modified(self) -> float:
        try:
            stat = self.path.stat()
            return float(getattr(stat, "st_mtime", None) or self.clock())
        except Exception:
            return self.clock()

    def _dead(self, lease: Mapping[str, Any]) -> bool:
        if float(lease.get("expires_at") or 0) <= self.clock():
            return True
        holder = lease.get("holder") or {}
        if holder.get("host") != self.holder["host"]:
            return False
        if holder.get("pid") == os.getpid():
            return lease.get("token") not in _LIVE
        return _pid_gone(holder.get("pid"))

    def _held_message(self, lease: Mapping[str, Any]) -> str:
        expires = float(lease.get("expires_at") or 0)
        return (
            f"{self.path.parent} is being written by another run ({describe(lease.get('holder') or {}) or 'unknown'}); "
            f"its lease expires at {_when(expires)} unless it renews it. Two runs writing one output_path would pay "
            "twice for the same records, so this run sent nothing. Wait for that run to finish (an Airflow retry "
            f"does), or give this run another output_path. A run that died leaves the lease until then "
            f"(or delete {self.path} once you are sure it is dead)."
        )
