-- wrk script: password grants, round-robin over the bench accounts.
local n = tonumber(os.getenv("BENCH_USERS") or "50")
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
  i = (i % n) + 1
  local body = "grant_type=password&username=bench" .. i .. "%40example.com&password=correct+horse+battery+staple"
  return wrk.format(nil, "/oauth2/token", nil, body)
end
