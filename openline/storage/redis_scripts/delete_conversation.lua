-- Delete the conversation and every key of it, and keep its tombstone: ARGV 1 until when (the caller's time),
-- 2 for how many ms (Redis's clock: the key expires then). Its bot id, or false when it does not exist (any keys
-- left of it whose hash expired first are deleted all the same, and no tombstone is written).
local bot = redis.call('HGET', KEYS[1], 'bot')
redis.call('DEL', unpack(KEYS, 1, CONVERSATION_KEYS))
if bot then
  redis.call('SET', KEYS[TOMBSTONE], ARGV[1], 'PX', ARGV[2])
end
return bot or false
