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
-- so replays and out-of-order delivery converge on the same state. Next to each vector, a sorted set
-- (key .. ':ev', same hash tag) is the entity's event log: each event the vector records came from, scored by
-- its event time, kept as far behind the newest event time as the feature windows and lateness reach.
-- KEYS: entity hashes. ARGV: ttl_ms (0: no expiry), written_at_ms, then per key: event_time_ms, event_id,
-- version, packed values, retention_ms, cap, n, then n x (event_time_ms, member).
-- Returns how many vectors were written.
local function bytes_after(a, b)
  -- Byte order, not Lua's `>` (strcoll under the server's locale): must match the writer's Python order.
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local function log(key, first, n, newest, retention, cap, ttl, stored)
  -- Members are whole events (id included), so a replay adds nothing (ZADD NX) and order does not matter.
  -- Pruned as the stream prunes its state: at or before newest - retention, then the oldest past the cap.
  -- A script blocks Redis while it runs: calls are spent only where needed.
  local ev, added = key .. ':ev', 0
  for c = first, first + 2 * n - 2, 2 do
    if tonumber(ARGV[c]) > newest - retention then
      added = added + redis.call('ZADD', ev, 'NX', ARGV[c], ARGV[c + 1])
    end
  end
  if stored then redis.call('ZREMRANGEBYSCORE', ev, '-inf', newest - retention) end
  local extra = added > 0 and redis.call('ZCARD', ev) - cap or 0
  if extra > 0 then redis.call('ZREMRANGEBYRANK', ev, 0, extra - 1) end
  if stored then
    if ttl > 0 then redis.call('PEXPIRE', ev, ttl) end
  elseif added > 0 then  -- a late event may have created the log: give it the vector's remaining TTL
    local left = redis.call('PTTL', key)
    if left > 0 then redis.call('PEXPIRE', ev, left) end
  end
end
local ttl, now, written = tonumber(ARGV[1]), ARGV[2], 0
local a = 3
for _, key in ipairs(KEYS) do
  local ts, id, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 6])
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
  -- `_s`: the log holds every event since this time (0: all). Set when the log starts on a vector that was
  -- stored before it (its time: older events are missing); removed when a newer vector comes without its
  -- event (the log stops being complete), so readers fall back rather than trust it.
  if stored and n == 0 then redis.call('HDEL', key, '_s') end
  if n > 0 and not cur[3] then redis.call('HSET', key, '_s', old and cur[1] or 0) end
  if n > 0 then
    log(key, a + 7, n, math.max(old or new, new), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), ttl, stored)
  end
  a = a + 7 + 2 * n
end
return written
"""

READ_MANY = """
-- KEYS: entity hashes. ARGV: 1 to return each entity's event log too, else 0. Returns per key, in KEYS order
-- (false where absent): _ts, _v, x, _e, and with the log: _s, then the log as member, score pairs (oldest first).
local with_log = ARGV[1] == '1'
local out = {}
for i, key in ipairs(KEYS) do
  if with_log then
    local row = redis.call('HMGET', key, '_ts', '_v', 'x', '_e', '_s')
    row[6] = redis.call('ZRANGE', key .. ':ev', 0, -1, 'WITHSCORES')
    out[i] = row
  else
    out[i] = redis.call('HMGET', key, '_ts', '_v', 'x', '_e')
  end
end
return out
"""


class LuaScript:
    """A script called by its SHA1 (EVALSHA), loaded again when Redis lost it (restart, failover, SCRIPT FLUSH)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def run(
        self, client: Any, calls: Sequence[tuple[Sequence[str], Sequence[Any]]], then: Sequence[Any] = ()
    ) -> list[Any]:
        """One EVALSHA per (keys, args), pipelined; both scripts are idempotent, so a reload may resend all.
        `then`: one more command after them on the same connection, its reply last (WAIT counts the writes of
        its own connection only)."""
        try:
            return await self._send(client, calls, then)
        except NoScriptError:
            await client.script_load(self.source)  # RedisCluster loads it on every primary
            return await self._send(client, calls, then)

    async def _send(
        self, client: Any, calls: Sequence[tuple[Sequence[str], Sequence[Any]]], then: Sequence[Any]
    ) -> list[Any]:
        if len(calls) == 1 and not then:  # a pipeline costs more client time than it saves for one command
            keys, args = calls[0]
            return [await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)]
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        if then:
            pipe.execute_command(*then)
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
