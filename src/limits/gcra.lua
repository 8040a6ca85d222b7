-- GCRA over several buckets in one atomic step: all are charged, or none.
--
-- KEYS[i]    a bucket; its value is the theoretical arrival time (TAT), in
--            microseconds, and it expires when the bucket is full again.
-- ARGV[1]    now in microseconds, or "" to use the Redis server's clock (one
--            clock for the whole fleet; tests pass a fake one).
-- ARGV[2i]   bucket i's emission interval in microseconds (1 / rate).
-- ARGV[2i+1] bucket i's burst.
--
-- Returns {0, 0} when admitted, else {i, wait}: the bucket that needs the
-- longest wait and that wait in microseconds; nothing is charged then.
-- No fixed windows: a bucket never admits more than burst + rate * t in
-- any span t, wherever the span starts.
if redis.replicate_commands then
  pcall(redis.replicate_commands)
end
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local tats = {}
local worst, wait = 0, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local stored = redis.call('GET', KEYS[i])
  local tat = now
  if stored then
    tat = math.max(tonumber(stored), now)
  end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if allow_at > now and allow_at - now > wait then
    worst, wait = i, allow_at - now
  end
  tats[i] = new_tat
end
if worst > 0 then
  return {worst, math.ceil(wait)}
end
for i = 1, #KEYS do
  local ttl_ms = math.max(1, math.ceil((tats[i] - now) / 1000))
  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', ttl_ms)
end
return {0, 0}
