-- wrk script for `make bench`: optional POST rotation over ids, status checks, JSON summary.
-- Environment: BENCH_EXPECT (expected status, default 200), BENCH_POST_PATH ("/handoffs/%s/claim/"),
-- BENCH_IDS (file with one target a line: whitespace-separated fields, the first one goes in the path),
-- BENCH_CSRF (CSRF token for POSTs), BENCH_POST_BODY (the form body: {csrf} and {1}, {2}… the line's
-- fields; default "csrfmiddlewaretoken={csrf}"), BENCH_THREADS (wrk's -t, default 2).
-- BENCH_IDS_ONCE=1: each target is posted once (a result is entered once); the threads share the list
-- out between them, and a thread whose share runs out sends no more POSTs: it counts past_pool, asks
-- for /healthz instead and stops at its next response. Without it the list goes round again.
-- The summary adds posts_sent (one target each) and past_pool to wrk's counts.
local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
local post_path = os.getenv("BENCH_POST_PATH")
local csrf = os.getenv("BENCH_CSRF") or ""
local body_template = os.getenv("BENCH_POST_BODY") or "csrfmiddlewaretoken={csrf}"
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local once = os.getenv("BENCH_IDS_ONCE") == "1"
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
issued = 0     -- POSTs sent, one target each
past_pool = 0  -- requests asked for after this thread's share of the targets ran out

function init(args)
  local file = os.getenv("BENCH_IDS")
  if file then
    for line in io.lines(file) do
      local fields = {}
      for value in line:gmatch("%S+") do table.insert(fields, value) end
      if #fields > 0 then table.insert(ids, fields) end
    end
  end
end

local function post(fields)
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  headers["X-CSRFToken"] = csrf
  local body = body_template:gsub("{(%w+)}", function(key)
    if key == "csrf" then return csrf end
    return fields[tonumber(key)]
  end)
  issued = issued + 1
  return wrk.format("POST", string.format(post_path, fields[1]), headers, body)
end

-- wrk calls request() once in the first thread before the run starts, to count pipelined requests, and
-- never sends what it gets: that call is answered with a request that takes no target.
local checked = false

if post_path then
  function request()
    if tid == 0 and not checked then
      checked = true
      return wrk.format("GET", "/healthz")
    end
    counter = counter + 1
    if once then
      local index = (counter - 1) * nthreads + tid + 1
      if index > #ids then
        past_pool = past_pool + 1
        return wrk.format("GET", "/healthz")
      end
      return post(ids[index])
    end
    return post(ids[((counter * nthreads + tid) % #ids) + 1])
  end
end

function response(status, headers, body)
  if status ~= expect then unexpected = unexpected + 1 end
  if past_pool > 0 then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local wrong, sent, past = 0, 0, 0
  for _, thread in ipairs(threads) do
    wrong = wrong + (thread:get("unexpected") or 0)
    sent = sent + (thread:get("issued") or 0)
    past = past + (thread:get("past_pool") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d, ' ..
    '"unexpected_status": %d, "posts_sent": %d, "past_pool": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, wrong, sent, past))
end
