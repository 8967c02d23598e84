"""A job's budget (tokens or cost) in Redis: every instance of the job spends from one total.

The same contract as the in-process ``TokenBudget``: reserve an estimate before a
request, settle it with the real spend after. It fails closed: when Redis cannot be
reached, ``try_reserve`` raises rather than send a request nobody counts.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_anyfast.exceptions import AnyFastError

log = logging.getLogger("airflow_provider_anyfast.limits")

# KEYS[1]: the budget hash. ARGV: op, field, maximum, amount, actual, ttl
SCRIPT = """
local key, op, field = KEYS[1], ARGV[1], ARGV[2]
local spent = tonumber(redis.call('HGET', key, field .. ':spent')) or 0
local reserved = tonumber(redis.call('HGET', key, field .. ':reserved')) or 0
local result = 1
if op == 'reserve' then
  if spent + reserved >= tonumber(ARGV[3]) then
    result = 0
  else
    redis.call('HINCRBYFLOAT', key, field .. ':reserved', ARGV[4])
  end
elseif op == 'settle' then
  redis.call('HINCRBYFLOAT', key, field .. ':reserved', -tonumber(ARGV[4]))
  redis.call('HINCRBYFLOAT', key, field .. ':spent', ARGV[5])
elseif op == 'spent' then
  return tostring(spent)
end
redis.call('EXPIRE', key, tonumber(ARGV[6]))
return result
"""


class LimitsUnavailableError(AnyFastError):
    """The shared limits' Redis cannot be reached, so a budgeted request is not sent."""

    kind = "limits_unavailable"
    retry_helps = True  # unlike a bad token: once Redis is back, a rerun sends the records left


class RedisBudget:
    """``TokenBudget`` on a Redis hash ``key`` (field ``field``): shared by every instance of the job."""

    def __init__(self, redis: Any, key: str, field: str, maximum: float | None, *, ttl: int) -> None:
        self.key = key
        self.field = field
        self.maximum = maximum
        self._ttl = ttl
        self._script = redis.register_script(SCRIPT)

    def _run(self, op: str, amount: float = 0.0, actual: float = 0.0) -> Any:
        args = [op, self.field, repr(float(self.maximum or 0)), repr(float(amount)), repr(float(actual)), self._ttl]
        return self._script(keys=[self.key], args=args)

    def _unavailable(self, exc: Exception) -> LimitsUnavailableError:
        return LimitsUnavailableError(
            f"not sent: the job budget ({self.field}) is kept in Redis at key {self.key!r}, which cannot be "
            f"reached ({type(exc).__name__}: {exc}); no request is sent uncounted. Bring the Redis of the "
            "connection's 'limits_conn_id' back and rerun: records with a success row are not sent again."
        )

    def try_reserve(self, estimate: float) -> bool:
        """Reserve an estimate for one request; False once the job's budget cannot cover it."""
        if self.maximum is None:
            return True
        try:
            return bool(int(self._run("reserve", estimate)))
        except Exception as exc:  # any client error: redis.ConnectionError, TimeoutError, ...
            raise self._unavailable(exc) from None

    def settle(self, estimate: float, actual: float) -> None:
        """Replace a reservation with the real spend; if Redis is gone, the estimate stays counted."""
        if self.maximum is None:
            return
        try:
            self._run("settle", estimate, actual)
        except Exception as exc:
            log.error(
                "Could not record a spend of %s %s in Redis (%s): the reserved estimate of %s stays counted",
                actual, self.field, type(exc).__name__, estimate,
            )  # fmt: skip

    @property
    def spent(self) -> float:
        try:
            return float(self._run("spent"))
        except Exception as exc:
            raise self._unavailable(exc) from None

    @property
    def exhausted(self) -> bool:
        return self.maximum is not None and self.spent >= self.maximum
