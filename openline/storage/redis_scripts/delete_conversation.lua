-- Delete the conversation and every key of it. Its bot id, or false when it does not exist (any keys left of
-- it whose hash expired first are deleted all the same).
local bot = redis.call('HGET', KEYS[1], 'bot')
redis.call('DEL', unpack(KEYS, 1, CONVERSATION_KEYS))
return bot or false
