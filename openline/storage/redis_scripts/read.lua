-- Up to ARGV[2] entries after sequence ARGV[1], skipping those stored before ARGV[3]: {seq, entry, ...}.
if not exists() then
  return unknown()
end
local limit = tonumber(ARGV[2])
local cutoff = tonumber(ARGV[3])
local out = {}
local after = ARGV[1]
while #out < 2 * limit do
  local page = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
  if #page == 0 then
    break
  end
  for i = 1, #page, 2 do
    if stored_at(page[i]) >= cutoff and #out < 2 * limit then
      out[#out + 1] = page[i + 1]
      out[#out + 1] = page[i]
    end
  end
  after = page[#page]
  if #page < 2 * limit then
    break
  end
end
return out
