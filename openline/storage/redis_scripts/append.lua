-- Store an activity at the end of the conversation, and publish it, in one step.
-- ARGV: 1 now (s), 2 now (ms), 3 origin, 4 body, 5 client key ('' none), 6 retention cut-off (s),
-- 7 conversation id, 8 events channel, 9 ttl ms, then file id, file pairs.
-- KEYS[10] (one Redis, not a cluster): the index of conversations by last activity, updated here too.
-- Returns {seq, timestamp ms, repeated entry or false, 1 when the sweep index must learn of it}.
if not exists() then
  return unknown()
end
local key = ARGV[5]
if key ~= '' then
  local known = redis.call('HGET', KEYS[3], key)
  if known then
    local entry = entry_at(known)
    if entry and stored_at(entry) >= tonumber(ARGV[6]) then
      return {tonumber(known), 0, entry, 0}
    end
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local last = tonumber(redis.call('HGET', KEYS[1], 'ts'))
local ts = tonumber(ARGV[2])
if ts <= last then
  ts = last + 1
end
local ts_text = string.format('%d', ts)
local entry = ARGV[1] .. '|' .. ts_text .. '|' .. ARGV[3] .. '|' .. ARGV[4]
redis.call('ZADD', KEYS[2], seq, entry)
redis.call('ZADD', KEYS[7], ARGV[1], seq)
redis.call('HSET', KEYS[1], 'ts', ts_text, 'active', ARGV[1])
local index = dated(ARGV[1])
if key ~= '' then
  redis.call('HSET', KEYS[3], key, seq)
  if ARGV[3] == 'client' then
    local activity_id = string.format('%s|%07d', ARGV[7], seq)
    redis.call('HSET', KEYS[6], activity_id, 'pending|' .. ARGV[1] .. '|1|{}\nnull')
    redis.call('ZADD', KEYS[8], ARGV[1], 'd:' .. activity_id)
  end
end
for i = 10, #ARGV, 2 do
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[8], ARGV[1], 'f:' .. ARGV[i])
end
touch(tonumber(ARGV[9]))
if #KEYS > TOMBSTONE then
  redis.call('ZADD', KEYS[10], 'GT', ARGV[1], ARGV[7])
end
redis.call('PUBLISH', ARGV[8], 'A' .. seq .. '|' .. entry)
return {seq, ts, false, index}
