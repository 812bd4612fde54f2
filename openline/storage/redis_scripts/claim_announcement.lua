-- ARGV: 1 member id, 2 name (JSON), 3 now, 4 stale before. {1, 'pending'} when claimed, else {0, state}.
if not exists() then
  return unknown()
end
local known = redis.call('HGET', KEYS[4], ARGV[1])
local order, name
if known then
  local state, at
  order, state, at, name = string.match(known, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if not claimable(state, tonumber(at), ARGV[4]) then
    return {0, state}
  end
else
  order = redis.call('HINCRBY', KEYS[1], 'order', 1)
  name = ARGV[2]
end
redis.call('HSET', KEYS[4], ARGV[1], order .. '|pending|' .. ARGV[3] .. '|' .. name)
expire_with_conversation()
return {1, 'pending'}
