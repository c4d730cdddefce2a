-- POST /token grant_type=client_credentials with HTTP Basic client authentication, each request
-- as a client picked at random among many (all with the same secret, as bench/seed.py makes them).
-- Environment: CLIENTS_FILE (client ids, one a line), SECRET, SCOPE, RESOURCE.
local function form(value)
  return (value:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = {}
    for k = 3, 0, -1 do
      local index = math.floor(n / 64 ^ k) % 64 + 1
      chars[#chars + 1] = alphabet:sub(index, index)
    end
    if not b then chars[3], chars[4] = "=", "=" elseif not c then chars[4] = "=" end
    out[#out + 1] = table.concat(chars)
  end
  return table.concat(out)
end

local secret = os.getenv("SECRET")
local credentials = {}
for line in io.lines(os.getenv("CLIENTS_FILE")) do
  if #line > 0 then credentials[#credentials + 1] = "Basic " .. base64(line .. ":" .. secret) end
end
assert(#credentials > 0, "CLIENTS_FILE lists no client")
local body = "grant_type=client_credentials&scope=" .. form(os.getenv("SCOPE"))
  .. "&resource=" .. form(os.getenv("RESOURCE"))
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  headers["Authorization"] = credentials[math.random(#credentials)]
  return wrk.format("POST", nil, headers, body)
end
