-- ARGV: 1 activity id, 2 record, 3 its attempts, 4 its time, 5 ttl ms, 6 the events channel.
-- Kept unless the known record is of a later attempt; reported on the channel either way (inspectors, waiting
-- retries). 1 when the sweep index must learn of it.
if not exists() then
  return unknown()
end
redis.call('PUBLISH', ARGV[6], 'D' .. #ARGV[1] .. ':' .. ARGV[1] .. ARGV[2])
local known = redis.call('HGET', KEYS[6], ARGV[1])
if known then
  local _, _, attempts = parse_record(known)
  if attempts > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[6], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[8], ARGV[4], 'd:' .. ARGV[1])
local index = dated(ARGV[4])
touch(tonumber(ARGV[5]))
return index
