-- Delete the conversation if it was last active before ARGV[1]. {items deleted, bot id}; {-1, bot, its last
-- activity} when it is still active; {0, false} when it is gone already.
if not exists() then
  return {0, false}
end
local c = redis.call('HMGET', KEYS[1], 'active', 'bot')
if tonumber(c[1]) >= tonumber(ARGV[1]) then
  return {-1, c[2], c[1]}
end
local count = 1 + redis.call('ZCARD', KEYS[2]) + redis.call('HLEN', KEYS[5]) + redis.call('HLEN', KEYS[6])
redis.call('DEL', unpack(KEYS, 1, CONVERSATION_KEYS))
return {count, c[2]}
