-- wrk script for `make bench`: optional POST rotation over ids, status checks, JSON summary.
-- Environment: BENCH_EXPECT (expected status, default 200), BENCH_POST_PATH ("/handoffs/%s/claim/"),
-- BENCH_IDS (file with one id per line), BENCH_CSRF (CSRF token for POSTs).
local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
local post_path = os.getenv("BENCH_POST_PATH")
local csrf = os.getenv("BENCH_CSRF") or ""
local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local ids = {}
local counter = 0
unexpected = 0

function init(args)
  local file = os.getenv("BENCH_IDS")
  if file then
    for line in io.lines(file) do
      if line ~= "" then table.insert(ids, line) end
    end
  end
end

if post_path then
  function request()
    counter = counter + 1
    local id = ids[((counter * 2 + tid) % #ids) + 1]
    local headers = {}
    for name, value in pairs(wrk.headers) do headers[name] = value end
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["X-CSRFToken"] = csrf
    return wrk.format("POST", string.format(post_path, id), headers, "csrfmiddlewaretoken=" .. csrf)
  end
end

function response(status, headers, body)
  if status ~= expect then unexpected = unexpected + 1 end
end

function done(summary, latency, requests)
  local wrong = 0
  for _, thread in ipairs(threads) do wrong = wrong + (thread:get("unexpected") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d, ' ..
    '"unexpected_status": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, wrong))
end
