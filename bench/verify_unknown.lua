-- POST /verify-code for a random unknown user each request: the 404 path, as in the issue.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- With BENCH_API_KEY set, every request carries it (the service then runs with that key).
local key = os.getenv("BENCH_API_KEY")
if key then
  wrk.headers["Authorization"] = "Bearer " .. key
end

math.randomseed(os.time())

request = function()
  local body = string.format('{"user_id":"bench-%d","passcode":"%06d"}',
    math.random(1, 1000000000), math.random(0, 999999))
  return wrk.format(nil, "/verify-code", nil, body)
end

-- Print the latency percentiles wrk's summary leaves out, in microseconds.
done = function(summary, latency, requests)
  io.write(string.format("p50_us %d\np99_us %d\np999_us %d\nnon2xx_3xx %d\n",
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.errors.status))
end
