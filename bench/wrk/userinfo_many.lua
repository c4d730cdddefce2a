-- GET /userinfo with a bearer access token picked at random per request among many (each a
-- different person's). Environment: TOKENS_FILE (access tokens, one a line).
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
end
assert(#tokens > 0, "TOKENS_FILE lists no token")
local headers = {}

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  headers["Authorization"] = tokens[math.random(#tokens)]
  return wrk.format("GET", nil, headers)
end
