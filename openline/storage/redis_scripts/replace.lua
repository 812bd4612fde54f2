-- Replace the body at a sequence number, keeping its place, time and origin; delete the files named.
-- ARGV: 1 seq, 2 body, 3 retention cut-off (s), then file ids. Returns the old entry, or false.
if not exists() then
  return unknown()
end
local entry = entry_at(ARGV[1])
if not entry or stored_at(entry) < tonumber(ARGV[3]) then
  return false
end
local head = string.match(entry, '^([^|]*|[^|]*|[^|]*|)')
redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[1], head .. ARGV[2])
delete_files(4)
expire_with_conversation()
return entry
