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
-- so replays and out-of-order delivery converge on the same state.
-- KEYS: entity hashes. ARGV: ttl_ms (0: no expiry), written_at_ms, then per key:
-- event_time_ms, event_id, version, packed values. Returns how many keys were written.
local function bytes_after(a, b)
  -- Byte order, not Lua's `>` (strcoll under the server's locale): must match the writer's Python order.
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local ttl, now, written = tonumber(ARGV[1]), ARGV[2], 0
for i, key in ipairs(KEYS) do
  local a = 2 + (i - 1) * 4
  local ts, id = ARGV[a + 1], ARGV[a + 2]
  local cur = redis.pcall('HMGET', key, '_ts', '_e')
  if cur.err then  -- not a hash (WRONGTYPE): the namespace is ours, so replace it rather than stall forever
    redis.call('DEL', key)
    cur = {}
  end
  local old, new = tonumber(cur[1]), tonumber(ts)
  if not old or new > old or (new == old and bytes_after(id, cur[2] or '')) then
    redis.call('HSET', key, '_ts', ts, '_e', id, '_v', ARGV[a + 3], 'x', ARGV[a + 4], '_w', now)
    if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
    written = written + 1
  end
end
return written
"""

READ_MANY = """
-- KEYS: entity hashes. Returns {_ts, _v, x, _e} per key, in KEYS order (false where absent).
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HMGET', key, '_ts', '_v', 'x', '_e')
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
