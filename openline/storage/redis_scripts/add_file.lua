-- ARGV: 1 file id, 2 file, 3 created at, 4 ttl ms, 5 conversation id. KEYS[10] as in append.lua.
-- 1 when the sweep index must learn of it.
if not exists() then
  return unknown()
end
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[8], ARGV[3], 'f:' .. ARGV[1])
if tonumber(ARGV[3]) > tonumber(redis.call('HGET', KEYS[1], 'active')) then
  redis.call('HSET', KEYS[1], 'active', ARGV[3])
end
local index = dated(ARGV[3])
touch(tonumber(ARGV[4]))
if #KEYS > TOMBSTONE then
  redis.call('ZADD', KEYS[10], 'GT', redis.call('HGET', KEYS[1], 'active'), ARGV[5])
end
return index
