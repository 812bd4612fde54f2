-- ARGV: bot id, now, ttl ms. 1 when created, 0 when it existed (left unchanged).
if exists() then
  return 0
end
redis.call('HSET', KEYS[1], 'bot', ARGV[1], 'created', ARGV[2], 'seq', 0, 'ts', 0, 'active', ARGV[2], 'order', 0)
touch(tonumber(ARGV[3]))
return 1
