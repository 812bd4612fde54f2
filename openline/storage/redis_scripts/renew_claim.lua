-- ARGV: 1 activity id, 2 attempts, 3 now. 1 when the pending record of that attempt now dates from `now`.
if not exists() then
  return unknown()
end
local known = redis.call('HGET', KEYS[6], ARGV[1])
if not known then
  return 0
end
local state, _, attempts, rest = parse_record(known)
if state ~= 'pending' or attempts ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[6], ARGV[1], 'pending|' .. ARGV[3] .. '|' .. ARGV[2] .. '|' .. rest)
redis.call('ZADD', KEYS[8], ARGV[3], 'd:' .. ARGV[1])
expire_with_conversation()
return 1
