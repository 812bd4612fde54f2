-- ARGV: 1 member id, 2 'delivered' or 'failed'. Nothing when the member or conversation is gone.
local known = redis.call('HGET', KEYS[4], ARGV[1])
if known and exists() then
  local order, _, _, name = string.match(known, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  redis.call('HSET', KEYS[4], ARGV[1], order .. '|' .. ARGV[2] .. '|0|' .. name)
end
return 0
