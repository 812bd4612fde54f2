-- ARGV: 1 member id, 2 name (JSON). 1 when added (announced already), 0 when known.
if not exists() then
  return unknown()
end
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then
  return 0
end
local order = redis.call('HINCRBY', KEYS[1], 'order', 1)
redis.call('HSET', KEYS[4], ARGV[1], order .. '|delivered|0|' .. ARGV[2])
expire_with_conversation()
return 1
