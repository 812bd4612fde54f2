-- Remove the activity at a sequence number (its number is not reused) and the files named.
-- ARGV: 1 seq, then file ids. 1 when it was there.
if not exists() then
  return unknown()
end
local removed = redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[1], ARGV[1])
if removed > 0 then
  redis.call('ZREM', KEYS[7], ARGV[1])
  delete_files(2)
end
return removed
