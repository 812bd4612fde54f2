-- Shared by every conversation script (prepended when the scripts are loaded).
-- KEYS, all of one conversation, one hash tag: 1 conv (hash), 2 activities (zset seq -> entry),
-- 3 client keys (hash key -> seq), 4 members (hash id -> order|state|at|name), 5 files (hash id -> file),
-- 6 deliveries (hash activity id -> record), 7 activity times (zset seq by stored-at),
-- 8 other times (zset f:<file id> and d:<activity id> by their time); then 9 the tombstone of the conversation
-- once an operator deleted it (a string: kept until then, the caller's time; it expires then too).
-- Entries: "<stored at>|<timestamp ms>|<origin>|<activity JSON without id and timestamp>".
-- Delivery records: "<state>|<at>|<attempts>|<outcome JSON>\n<activity JSON or null>".
-- Times are kept as the strings the caller sent, never re-formatted here.

local function unknown()
  return redis.error_reply('OPENLINE_UNKNOWN_CONVERSATION')
end

local function exists()
  return redis.call('EXISTS', KEYS[1]) == 1
end

local CONVERSATION_KEYS = 8  -- the conversation's own keys, touched and deleted together
local TOMBSTONE = 9  -- KEYS beyond this one are global indexes some scripts also update

-- every key of the conversation lives `ttl` ms more: Redis deletes a conversation nobody swept
local function touch(ttl)
  for i = 1, CONVERSATION_KEYS do
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end

-- every key of the conversation expires with its hash (for writes that do not move the expiry but may create
-- a key: a new key has none)
local function expire_with_conversation()
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    touch(ttl)
  end
end

-- the sweep looks at a conversation once its oldest dated item is due; 1 when that item is `at`, newly
-- (the caller then tells the sweep index)
local function dated(at)
  local oldest = redis.call('HGET', KEYS[1], 'oldest')
  if not oldest or tonumber(at) < tonumber(oldest) then
    redis.call('HSET', KEYS[1], 'oldest', at)
    return 1
  end
  return 0
end

local function entry_at(seq)
  return redis.call('ZRANGEBYSCORE', KEYS[2], seq, seq)[1]
end

local function stored_at(entry)
  return tonumber(string.match(entry, '^([^|]*)|'))
end

local function delete_files(first)
  for i = first, #ARGV do
    redis.call('HDEL', KEYS[5], ARGV[i])
    redis.call('ZREM', KEYS[8], 'f:' .. ARGV[i])
  end
end

local function parse_record(record)
  local state, at, attempts, rest = string.match(record, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  return state, tonumber(at), tonumber(attempts), rest
end

local function claimable(state, at, stale_before)
  return state == 'failed' or (state == 'pending' and at < tonumber(stale_before))
end
