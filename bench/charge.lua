-- wrk: POST one-unit charges with tokens from BENCH_TOKENS (one per line; one
-- token is "hot", many are "spread") to 1,000 phone numbers.
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  tokens[#tokens + 1] = line
end
local extra = os.getenv("BENCH_HEADER")

request = function()
  local headers = {
    ["Authorization"] = "Token " .. tokens[math.random(#tokens)],
    ["Content-Type"] = "application/json",
  }
  if extra then
    local name, value = extra:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  local body = string.format('{"phone_number": "+1415555%04d", "amount": 1}', math.random(1000, 1999))
  return wrk.format("POST", "/api/payments/phone-charge/", headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH {\"requests\": %d, \"seconds\": %f, \"p50_ms\": %f, \"p99_ms\": %f, \"non_2xx\": %d, \"socket_errors\": %d}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
