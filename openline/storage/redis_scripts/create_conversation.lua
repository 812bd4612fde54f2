-- ARGV: bot id, now, ttl ms, conversation id. 1 when created, 0 when it existed (left unchanged), -1 when its
-- tombstone is kept at `now` (an operator deleted it).
-- KEYS[10], KEYS[11] (one Redis, not a cluster): the index of conversations by last activity, and the bot's.
if exists() then
  return 0
end
local kept = redis.call('GET', KEYS[TOMBSTONE])
if kept and tonumber(kept) >= tonumber(ARGV[2]) then
  return -1
end
-- anything left of an earlier conversation with this id (its hash expired first) is not this one's
redis.call('DEL', unpack(KEYS, 2, CONVERSATION_KEYS))
redis.call('HSET', KEYS[1], 'bot', ARGV[1], 'created', ARGV[2], 'seq', 0, 'ts', 0, 'active', ARGV[2], 'order', 0)
touch(tonumber(ARGV[3]))
if #KEYS > TOMBSTONE then
  redis.call('ZADD', KEYS[10], 'GT', ARGV[2], ARGV[4])
  redis.call('ZADD', KEYS[11], 0, ARGV[4])
end
return 1
