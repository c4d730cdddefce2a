-- POST /token grant_type=refresh_token with HTTP Basic client authentication.
-- Hawiya rotates refresh tokens (each works once; presenting a spent one revokes its family), so
-- every token is presented exactly once: each thread keeps a queue, starting with its slice of
-- TOKENS, and appends the new refresh token of every answer to it. With a pool much larger than the
-- connections, each request rotates a different family; no token is ever presented twice.
-- Environment: BASIC (base64 of client_id:secret), TOKENS (a file of refresh tokens, one a line),
-- THREADS (wrk's thread count: thread i takes lines i, i + THREADS, ...); optional: ERRORS (each
-- thread writes its first non-200 answer to ERRORS.<i>). A thread whose queue runs dry (every
-- token in flight or refused) stops and sends GET /healthz.
local function form(value)
  return (value:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local queue = {}
local head, tail = 1, 0
local headers = {}
local errors = nil

local function push(token)
  tail = tail + 1
  queue[tail] = token
end

function init(args)
  local threads = tonumber(os.getenv("THREADS"))
  local n = 0
  for line in io.lines(os.getenv("TOKENS")) do
    if n % threads == id and line ~= "" then push(line) end
    n = n + 1
  end
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  headers["Authorization"] = "Basic " .. os.getenv("BASIC")
  local errors_prefix = os.getenv("ERRORS")
  if errors_prefix and errors_prefix ~= "" then
    errors = errors_prefix .. "." .. id
  end
end

function request()
  if head > tail then
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  local token = queue[head]
  queue[head] = nil
  head = head + 1
  return wrk.format("POST", "/token", headers, "grant_type=refresh_token&refresh_token=" .. form(token))
end

function response(status, response_headers, body)
  if status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then push(token) end
  elseif errors then
    local file = io.open(errors, "w")
    file:write(status, " ", body or "", "\n")
    file:close()
    errors = nil
  end
end
