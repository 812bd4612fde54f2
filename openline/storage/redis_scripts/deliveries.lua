-- The delivery records, flat: {activity id, record, ...}.
if not exists() then
  return unknown()
end
return redis.call('HGETALL', KEYS[6])
