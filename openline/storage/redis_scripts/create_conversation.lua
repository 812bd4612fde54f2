-- ARGV: bot id, now, ttl ms, conversation id. 1 when created, 0 when it existed (left unchanged).
-- KEYS[9], KEYS[10] (one Redis, not a cluster): the index of conversations by last activity, and the bot's.
if exists() then
  return 0
end
-- anything left of an earlier conversation with this id (its hash expired first) is not this one's
redis.call('DEL', unpack(KEYS, 2, CONVERSATION_KEYS))
redis.call('HSET', KEYS[1], 'bot', ARGV[1], 'created', ARGV[2], 'seq', 0, 'ts', 0, 'active', ARGV[2], 'order', 0)
touch(tonumber(ARGV[3]))
if #KEYS > CONVERSATION_KEYS then
  redis.call('ZADD', KEYS[9], 'GT', ARGV[2], ARGV[4])
  redis.call('ZADD', KEYS[10], 0, ARGV[4])
end
return 1
