-- POST /token grant_type=client_credentials with HTTP Basic client authentication.
-- Environment: BASIC (base64 of client_id:secret), SCOPE, RESOURCE.
local function form(value)
  return (value:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=" .. form(os.getenv("SCOPE"))
  .. "&resource=" .. form(os.getenv("RESOURCE"))
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")
