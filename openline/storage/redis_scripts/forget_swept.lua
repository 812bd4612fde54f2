-- KEYS[1]: the sweep index. Forget conversation ARGV[1] if its time there is still ARGV[2]
-- (a write since the sweep moved it: the conversation has something to sweep again).
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
