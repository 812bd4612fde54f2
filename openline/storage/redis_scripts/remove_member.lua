-- ARGV: 1 member id. 1 when it was there.
if not exists() then
  return unknown()
end
return redis.call('HDEL', KEYS[4], ARGV[1])
