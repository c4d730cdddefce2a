-- POST /token grant_type=authorization_code with PKCE and HTTP Basic client authentication; each
-- code is presented once.
-- Environment: BASIC (base64 of client_id:secret), REDIRECT_URI, CODES (a file of "code verifier"
-- lines), THREADS (wrk's thread count: thread i takes lines i, i + THREADS, ...); optional:
-- REFRESH_OUT (each thread appends the refresh tokens it receives, one a line, to REFRESH_OUT.<i>),
-- ERRORS (each thread writes its first non-200 answer to ERRORS.<i>).
-- When a thread has spent its codes it stops and sends GET /healthz; the caller sizes CODES so this
-- never happens inside a measured run (and says so when it does).
local function form(value)
  return (value:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local bodies = {}
local position = 0
local headers = {}
local out = nil
local errors = nil

function init(args)
  local threads = tonumber(os.getenv("THREADS"))
  local redirect = form(os.getenv("REDIRECT_URI"))
  local n = 0
  for line in io.lines(os.getenv("CODES")) do
    if n % threads == id then
      local code, verifier = line:match("^(%S+) (%S+)$")
      bodies[#bodies + 1] = "grant_type=authorization_code&code=" .. form(code)
        .. "&redirect_uri=" .. redirect .. "&code_verifier=" .. form(verifier)
    end
    n = n + 1
  end
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  headers["Authorization"] = "Basic " .. os.getenv("BASIC")
  local prefix = os.getenv("REFRESH_OUT")
  if prefix and prefix ~= "" then
    out = io.open(prefix .. "." .. id, "w")
  end
  local errors_prefix = os.getenv("ERRORS")
  if errors_prefix and errors_prefix ~= "" then
    errors = errors_prefix .. "." .. id
  end
end

function request()
  position = position + 1
  local body = bodies[position]
  if body == nil then
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  return wrk.format("POST", "/token", headers, body)
end

function response(status, response_headers, body)
  if status == 200 then
    if out then
      local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
      if token then out:write(token, "\n") end
    end
  elseif errors then
    local file = io.open(errors, "w")
    file:write(status, " ", body or "", "\n")
    file:close()
    errors = nil
  end
end
