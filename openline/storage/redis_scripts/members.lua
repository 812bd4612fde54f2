-- The members hash, flat: {id, value, ...}.
if not exists() then
  return unknown()
end
return redis.call('HGETALL', KEYS[4])
