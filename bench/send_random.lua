-- POST /send-code by SMS (console delivery) for a random user and a random valid US number each
-- request: the whole send path with its limits charged.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

math.randomseed(os.time())

request = function()
  local body = string.format(
    '{"user_id":"bench-%d","method":"sms","phone":"+1415%d%06d","client_ip":"198.51.%d.%d"}',
    math.random(1, 1000000000), math.random(2, 9), math.random(0, 999999),
    math.random(0, 255), math.random(1, 254))
  return wrk.format(nil, "/send-code", nil, body)
end

done = function(summary, latency, requests)
  io.write(string.format("p50_us %d\np99_us %d\np999_us %d\nnon2xx_3xx %d\n",
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.errors.status))
end
