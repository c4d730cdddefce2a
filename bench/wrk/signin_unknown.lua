-- POST /signin with a username nobody has (a fresh random one each request, so no account's own
-- failure limit is reached) and the CSRF token and form cookie of one sign-in page.
-- Environment: CSRF_TOKEN, COOKIE (the Cookie header the sign-in page set).
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Cookie"] = os.getenv("COOKIE"),
}
local token = os.getenv("CSRF_TOKEN"):gsub("[^%w%-%._~]", function(c)
  return string.format("%%%02X", string.byte(c))
end)

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  local name = string.format("nobody%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  local body = "csrf_token=" .. token .. "&username=" .. name .. "&password=not-the-password-at-all"
  return wrk.format("POST", "/signin", headers, body)
end
