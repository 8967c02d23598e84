"""The rate bucket of ``local``, kept in Redis so that every worker of an account draws from it.

One Lua script does each step atomically on Redis's own clock (``TIME``), so workers on
different machines agree on time without agreeing with each other. The state is one
hash per limit; it expires an hour after its last use, so an idle account starts fresh.
Redis errors are raised to the caller (``account`` falls back to a local bucket).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_anyfast.core.limits.local import COOLDOWN, CUT_TO, MIN_RATE, STEP, WINDOW

#: Seconds an unused bucket is kept.
BUCKET_TTL = 3600
_SLOTS = int(WINDOW) + 2

# ARGV: op, max_rate (per second, 0: none configured), adaptive (0/1), burst seconds, ttl, amount
SCRIPT = f"""
local key = KEYS[1]
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local max_rate = tonumber(ARGV[2])
local adaptive = ARGV[3] == '1'
local burst = tonumber(ARGV[4])
local s = redis.call('HMGET', key, 'level', 'stamp', 'rate', 'pause', 'last_cut', 'first')
local rate = tonumber(s[3]) or 0
if max_rate > 0 and (rate == 0 or rate > max_rate) then rate = max_rate end
local function cap() return math.max(1, rate * burst) end
local level = tonumber(s[1]) or cap()
local stamp = tonumber(s[2]) or now
local pause = tonumber(s[4]) or 0
local last_cut = tonumber(s[5]) or 0
local function refill()
  if rate > 0 and now > stamp then
    level = math.min(cap(), level + (now - stamp) * rate)
    stamp = now
  end
end
local result = 0
if op == 'reserve' then
  result = math.max(0, pause - now)
  if rate > 0 then
    refill()
    level = level - tonumber(ARGV[6])
    result = math.max(result, (stamp - now) + math.max(0, -level) / rate)
  end
elseif op == 'adjust' then
  level = math.min(cap(), level - tonumber(ARGV[6]))
elseif op == 'pause' then
  local untl = now + tonumber(ARGV[6])
  if untl > pause then pause = untl end
  if rate > 0 then
    refill()
    level = math.min(level, 0)
    if untl > stamp then stamp = untl end
  end
  result = pause - now
elseif op == 'peek' then
  result = math.max(0, pause - now)
elseif op == 'ok' then
  local sec = math.floor(now)
  local i = sec % {_SLOTS}
  if tonumber(redis.call('HGET', key, 't' .. i)) ~= sec then
    redis.call('HSET', key, 't' .. i, sec, 'c' .. i, 0)
  end
  redis.call('HINCRBY', key, 'c' .. i, 1)
  if not s[6] then redis.call('HSET', key, 'first', now) end
  if adaptive and rate > 0 then
    refill()
    rate = rate + {STEP}
    if max_rate > 0 and rate > max_rate then rate = max_rate end
  end
elseif op == 'cut' then
  if now - last_cut >= {COOLDOWN} then
    local sec = math.floor(now)
    local seen = 0
    for i = 0, {_SLOTS - 1} do
      local ts = tonumber(redis.call('HGET', key, 't' .. i))
      if ts and ts >= sec - {WINDOW} then seen = seen + tonumber(redis.call('HGET', key, 'c' .. i)) end
    end
    local first = tonumber(s[6]) or now
    local span = math.max(1, math.min({WINDOW}, now - first))
    if seen > 0 then
      local new = {CUT_TO} * seen / span
      if rate > 0 and new > {CUT_TO} * rate then new = {CUT_TO} * rate end
      refill()
      rate = math.max({MIN_RATE}, new)
      last_cut = now
      result = 1
    end
  end
end
redis.call('HSET', key, 'level', level, 'stamp', stamp, 'rate', rate, 'pause', pause, 'last_cut', last_cut)
redis.call('EXPIRE', key, tonumber(ARGV[5]))
return tostring(result)
"""


class RedisBucket:
    """``LocalBucket``'s interface on a Redis hash at ``key``: shared by every process using it."""

    def __init__(
        self,
        redis: Any,
        key: str,
        max_per_minute: float | None,
        *,
        adaptive: bool = False,
        burst_seconds: float = 1.0,
    ) -> None:
        if max_per_minute is not None and max_per_minute <= 0:
            raise ValueError("a rate limit must be > 0 per minute")
        self.key = key
        self.adaptive = adaptive
        self.cuts = 0
        self._redis = redis
        self._script = redis.register_script(SCRIPT)
        self._args = [f"{(max_per_minute or 0) / 60.0:.9f}", "1" if adaptive else "0", str(burst_seconds), BUCKET_TTL]

    def _run(self, op: str, amount: float = 0.0) -> float:
        return float(self._script(keys=[self.key], args=[op, *self._args, repr(float(amount))]))

    def state(self) -> dict[str, str]:
        """The raw hash (for logs and tests)."""
        return {_text(k): _text(v) for k, v in self._redis.hgetall(self.key).items()}

    def reserve(self, amount: float = 1.0) -> float:
        return self._run("reserve", amount)

    def paused_for(self) -> float:
        return self._run("peek")

    def adjust(self, amount: float) -> None:
        self._run("adjust", amount)

    def pause(self, seconds: float) -> None:
        self._run("pause", seconds)

    def on_success(self) -> None:
        if self.adaptive:
            self._run("ok")

    def on_rate_limited(self, hint: float | None) -> None:
        if hint:
            self.pause(hint)
        elif self.adaptive and self._run("cut"):
            self.cuts += 1


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
