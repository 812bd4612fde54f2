-- ARGV: 1 retention cut-off. {bot, created, seq, active, activities stored since the cut-off, members flat}
-- or false when the conversation does not exist.
if not exists() then
  return false
end
local c = redis.call('HMGET', KEYS[1], 'bot', 'created', 'seq', 'active')
return {c[1], c[2], c[3], c[4], redis.call('ZCOUNT', KEYS[7], ARGV[1], '+inf'), redis.call('HGETALL', KEYS[4])}
