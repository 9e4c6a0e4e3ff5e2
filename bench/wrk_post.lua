-- wrk posting the benchmark payload with the header set libwebhook sends.
-- The body is read from the file named by WH_BENCH_BODY (bench/run writes it
-- with `bench_deliver payload`).
local f = assert(io.open(assert(os.getenv("WH_BENCH_BODY"), "WH_BENCH_BODY is not set"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "libwebhook/1.0.0"
wrk.headers["webhook-id"] = "msg_2fVOdTfPjyeZoUyVt0aUlaVK7kq"
wrk.headers["webhook-timestamp"] = "1711479196"
wrk.headers["webhook-signature"] = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="

-- Answers other than 2xx/3xx, and socket errors, so a misconfigured receiver shows.
-- (No response() hook: it would make wrk parse every answer in Lua.)
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT wrk_errors %d\n", e.status + e.connect + e.read + e.write + e.timeout))
end
