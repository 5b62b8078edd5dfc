"""The Lua scripts behind the online store, and how a batch of script calls reaches Redis in one round trip."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError

WRITE_NEWEST = """
-- Compare-and-set of feature vectors: the newest event time wins, ties go to the larger event id,
-- so replays and out-of-order delivery converge on the same state. Next to each vector, one sorted set per
-- categorical source (key .. ':s:' .. source, same hash tag) holds each value's last-seen event time.
-- KEYS: entity hashes. ARGV: ttl_ms (0: no expiry), written_at_ms, cap (values per set), then per key:
-- event_time_ms, event_id, version, packed values, window_ms, n, then n x (source, value, event_time_ms).
-- Returns how many vectors were written.
local function bytes_after(a, b)
  -- Byte order, not Lua's `>` (strcoll under the server's locale): must match the writer's Python order.
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local function remember(key, source, value, ts, newest, window, cap, ttl, written)
  -- Last-seen times only grow (ZADD GT); values at or before newest - window are pruned whenever newest
  -- moves (a vector was written); past the cap the oldest go, and `_d:<source>` keeps the newest time so
  -- dropped, for readers to flag. The set expires with the vector. Calls are spent only where needed: a
  -- script blocks Redis while it runs.
  local set, added = key .. ':s:' .. source, 0
  if ts > newest - window then added = redis.call('ZADD', set, 'GT', ts, value) end
  if written then redis.call('ZREMRANGEBYSCORE', set, '-inf', newest - window) end
  local extra = added > 0 and redis.call('ZCARD', set) - cap or 0
  if extra > 0 then
    local popped = redis.call('ZPOPMIN', set, extra)
    local top, mark = tonumber(popped[#popped]), tonumber(redis.call('HGET', key, '_d:' .. source))
    if not mark or top > mark then redis.call('HSET', key, '_d:' .. source, popped[#popped]) end
  end
  if written then
    if ttl > 0 then redis.call('PEXPIRE', set, ttl) end
  elseif added > 0 then  -- a late value may have created the set: give it the vector's remaining TTL
    local left = redis.call('PTTL', key)
    if left > 0 then redis.call('PEXPIRE', set, left) end
  end
end
local ttl, now, cap, written = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), 0
local a = 4
for _, key in ipairs(KEYS) do
  local ts, id, window, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local cur = redis.pcall('HMGET', key, '_ts', '_e', '_s')
  if cur.err then  -- not a hash (WRONGTYPE): the namespace is ours, so replace it rather than stall forever
    redis.call('DEL', key)
    cur = {}
  end
  local old, new = tonumber(cur[1]), tonumber(ts)
  local stored = not old or new > old or (new == old and bytes_after(id, cur[2] or ''))
  if stored then
    redis.call('HSET', key, '_ts', ts, '_e', id, '_v', ARGV[a + 2], 'x', ARGV[a + 3], '_w', now)
    if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
    written = written + 1
  end
  -- `_s`: the sets hold every event since this time (0: all). Set when sets start on a vector that was
  -- stored before them (its time: older events are missing); removed when a newer vector comes without
  -- categories (the sets stop being complete), so readers fall back rather than trust them.
  if stored and n == 0 then redis.call('HDEL', key, '_s') end
  if n > 0 and not cur[3] then redis.call('HSET', key, '_s', old and cur[1] or 0) end
  local newest = math.max(old or new, new)
  for c = a + 6, a + 3 + 3 * n, 3 do
    remember(key, ARGV[c], ARGV[c + 1], tonumber(ARGV[c + 2]), newest, window, cap, ttl, stored)
  end
  a = a + 6 + 3 * n
end
return written
"""

READ_MANY = """
-- KEYS: entity hashes. ARGV: S (categorical sources), then per source: name, k, k windows (ms); then per key:
-- the request's event time (ms) and its S values. Returns per key, in KEYS order (false where absent):
-- _ts, _v, x, _e, and with S > 0: _s, the S dropped marks `_d:<source>`, then per source the request
-- value's last-seen time and how many values were last seen after t - w for each window w.
local S, a, sources, windows = tonumber(ARGV[1]), 2, {}, {}
local fields = {'_ts', '_v', 'x', '_e'}
if S > 0 then fields[5] = '_s' end
for s = 1, S do
  local k = tonumber(ARGV[a + 1])
  sources[s], windows[s] = ARGV[a], {}
  for j = 1, k do windows[s][j] = tonumber(ARGV[a + 1 + j]) end
  fields[5 + s] = '_d:' .. ARGV[a]
  a = a + 2 + k
end
local out = {}
for i, key in ipairs(KEYS) do
  local row = redis.call('HMGET', key, unpack(fields))
  if S > 0 then
    local t = tonumber(ARGV[a])
    for s = 1, S do
      local set = key .. ':s:' .. sources[s]
      row[#row + 1] = redis.call('ZSCORE', set, ARGV[a + s])
      for _, w in ipairs(windows[s]) do
        row[#row + 1] = redis.call('ZCOUNT', set, string.format('(%d', t - w), '+inf')
      end
    end
    a = a + 1 + S
  end
  out[i] = row
end
return out
"""


class LuaScript:
    """A script called by its SHA1 (EVALSHA), loaded again when Redis lost it (restart, failover, SCRIPT FLUSH)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def run(self, client: Any, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        """One EVALSHA per (keys, args), pipelined; both scripts are idempotent, so a reload may resend all."""
        try:
            return await self._send(client, calls)
        except NoScriptError:
            await client.script_load(self.source)  # RedisCluster loads it on every primary
            return await self._send(client, calls)

    async def _send(self, client: Any, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        if len(calls) == 1:  # a pipeline costs more client time than it saves for one command
            keys, args = calls[0]
            return [await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)]
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        return await pipe.execute()


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def command_groups(keys: Sequence[str], chunk: int, cluster: bool) -> list[list[int]]:
    """Indices of the keys each script call takes: at most `chunk` keys per call (a script blocks Redis
    while it runs), and on Redis Cluster only keys of one hash slot together (multi-key commands need that)."""
    if not cluster:
        return [list(range(start, min(start + chunk, len(keys)))) for start in range(0, len(keys), chunk)]
    by_slot: dict[int, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        by_slot[key_slot(key.encode())].append(i)
    return [group[start : start + chunk] for group in by_slot.values() for start in range(0, len(group), chunk)]
