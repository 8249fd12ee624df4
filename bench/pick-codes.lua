-- wrk script: GET /{code} with codes drawn from a pre-generated file.
-- Usage: wrk ... -s bench/pick-codes.lua URL -- CODES_FILE HOT_COUNT HOT_SHARE
--   HOT_COUNT 0: uniform over all codes. Otherwise HOT_SHARE of requests go to the first HOT_COUNT codes and
--   the rest are uniform over the remaining codes.
-- Requests are pre-formatted in init so that request() costs one random draw: wrk must not be the bottleneck.
-- done() prints one JSON line prefixed "WRK_JSON"; wrk itself counts only status > 399 as errors, so the
-- status classes are counted here, per thread, in response().

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests = {}
local total, hot, hot_share = 0, 0, 0

function init(args)
  local file = assert(io.open(args[1], "r"), "cannot open codes file " .. tostring(args[1]))
  local headers = { ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36" }
  for code in file:lines() do
    if code ~= "" then
      total = total + 1
      requests[total] = wrk.format("GET", "/" .. code, headers)
    end
  end
  file:close()
  hot = tonumber(args[2]) or 0
  hot_share = tonumber(args[3]) or 0.9
  -- Seeded per thread, so threads do not replay the same sequence.
  math.randomseed(os.time() * 1000 + id * 7919)
  status_3xx, status_other = 0, 0
end

function request()
  if hot > 0 then
    if math.random() < hot_share then
      return requests[math.random(1, hot)]
    end
    return requests[math.random(hot + 1, total)]
  end
  return requests[math.random(1, total)]
end

function response(status, headers, body)
  if status >= 300 and status < 400 then
    status_3xx = status_3xx + 1
  else
    status_other = status_other + 1
  end
end

function done(summary, latency, requests)
  local ok, other = 0, 0
  for _, thread in ipairs(threads) do
    ok = ok + (thread:get("status_3xx") or 0)
    other = other + (thread:get("status_other") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"status_3xx":%d,"status_other":%d,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},"latency_us":{"p50":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, ok, other, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
