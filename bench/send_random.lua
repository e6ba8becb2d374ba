-- POST /send-code by SMS (console delivery) for a random user and a random valid US number each
-- request: the whole send path with its limits charged. Numbers spread over 20 area codes (about
-- 1.3 million 1,000-number blocks), so the fraud guard counts every send but no block sees the
-- dozens of unverified sends in ten minutes that open its breaker.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

math.randomseed(os.time())

local areas = {201, 212, 213, 305, 312, 415, 469, 503, 512, 617,
               646, 702, 713, 718, 786, 818, 917, 929, 949, 972}

request = function()
  local body = string.format(
    '{"user_id":"bench-%d","method":"sms","phone":"+1%d%d%d%d%04d","client_ip":"198.51.%d.%d"}',
    math.random(1, 1000000000), areas[math.random(1, #areas)], math.random(2, 9),
    math.random(2, 9), math.random(0, 9), math.random(0, 9999),
    math.random(0, 255), math.random(1, 254))
  return wrk.format(nil, "/send-code", nil, body)
end

done = function(summary, latency, requests)
  io.write(string.format("p50_us %d\np99_us %d\np999_us %d\nnon2xx_3xx %d\n",
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.errors.status))
end
