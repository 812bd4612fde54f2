-- ARGV: 1 activity id, 2 now, 3 stale before, 4 the events channel (a claim is reported on it). {1, claimed record, 1 when the sweep index must learn of
-- it} or {0, record as it is, 0}.
if not exists() then
  return unknown()
end
local known = redis.call('HGET', KEYS[6], ARGV[1])
local claimed
if known then
  local state, at, attempts, rest = parse_record(known)
  if not claimable(state, at, ARGV[3]) then
    return {0, known, 0}
  end
  local activity = string.match(rest, '\n(.*)$')
  claimed = 'pending|' .. ARGV[2] .. '|' .. string.format('%d', attempts + 1) .. '|{}\n' .. activity
else
  claimed = 'pending|' .. ARGV[2] .. '|1|{}\nnull'
end
redis.call('HSET', KEYS[6], ARGV[1], claimed)
redis.call('PUBLISH', ARGV[4], 'D' .. #ARGV[1] .. ':' .. ARGV[1] .. claimed)
redis.call('ZADD', KEYS[8], ARGV[2], 'd:' .. ARGV[1])
expire_with_conversation()
return {1, claimed, dated(ARGV[2])}
