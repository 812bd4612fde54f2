-- Delete the activities, files and delivery records dated before ARGV[1].
-- {items deleted, the oldest time left or false}.
if not exists() then
  return {0, false}
end
local cutoff = '(' .. ARGV[1]
local count = 0
local seqs = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', cutoff)
if #seqs > 0 then
  local gone = {}
  for _, seq in ipairs(seqs) do
    count = count + redis.call('ZREMRANGEBYSCORE', KEYS[2], seq, seq)
    gone[seq] = true
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', cutoff)
  local keys = redis.call('HGETALL', KEYS[3])
  for i = 1, #keys, 2 do
    if gone[keys[i + 1]] then
      redis.call('HDEL', KEYS[3], keys[i])
    end
  end
end
local others = redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', cutoff)
for _, item in ipairs(others) do
  local kind, id = string.sub(item, 1, 1), string.sub(item, 3)
  if kind == 'f' then
    count = count + redis.call('HDEL', KEYS[5], id)
  else
    count = count + redis.call('HDEL', KEYS[6], id)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', cutoff)
local oldest = false
local a = redis.call('ZRANGE', KEYS[7], 0, 0, 'WITHSCORES')[2]
local o = redis.call('ZRANGE', KEYS[8], 0, 0, 'WITHSCORES')[2]
if a and o then
  oldest = tonumber(a) < tonumber(o) and a or o
else
  oldest = a or o or false
end
if oldest then
  redis.call('HSET', KEYS[1], 'oldest', oldest)
else
  redis.call('HDEL', KEYS[1], 'oldest')
end
return {count, oldest}
