#!/usr/bin/env bash
# bench/run.sh — load benchmarks of Gatehouse against a hello-world net/http
# server, measured in one run on this machine. Prints a Markdown table for
# docs/BENCHMARKS.md.
#
#   bench/run.sh            # defaults: 10 s per wrk run, 64 connections
#   DURATION=30s bench/run.sh
#   ROUNDS=12 LOGIN_DURATION=10s LOGIN_CONNS=64 bench/run.sh   # password-grant rounds
#
# Needs wrk (apt-get install wrk). Uses SQLite in a temp dir, default settings
# except rate limits (see bench.yaml below). For PostgreSQL + Redis:
#   EXTRA_ENV="GATEHOUSE_DATABASE_URL=postgres://… GATEHOUSE_REDIS_URL=redis://…" bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-64}"
USERS="${BENCH_USERS:-50}"
export BENCH_USERS="$USERS"
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/hello" ./bench/hello
go build -o "$work/flood" ./bench/flood
go build -o "$work/argon2rate" ./bench/argon2rate
go build -o "$work/guardhello" ./bench/guardhello

GH=127.0.0.1:18080
HELLO=127.0.0.1:18081
"$work/hello" -addr "$HELLO" &
# The load comes from one address: raise the per-IP and per-account login
# limits so they do not cap the throughput being measured (the limiter's own
# cost is a Go benchmark: BenchmarkAllow). Everything else is the default.
cat >"$work/bench.yaml" <<YAML
rate_limits: {login_per_account_ip: 100000000, login_per_ip: 100000000, window: 1m}
YAML
EXTRA_ENV="${EXTRA_ENV:-}"
start_gatehouse() {
  env GATEHOUSE_DATA_DIR="$work/data" GATEHOUSE_ADDR="$GH" GATEHOUSE_LOG_FORMAT=json GATEHOUSE_CONFIG="$work/bench.yaml" $EXTRA_ENV \
    "$work/gatehouse" serve >>"$work/server.log" 2>&1 &
  GH_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://$GH/healthz" >/dev/null && return; sleep 0.1; done
  echo "gatehouse did not start" >&2; cat "$work/server.log" >&2; exit 1
}
start_gatehouse

creds=""
for i in $(seq 1 "$USERS"); do
  curl -sf "http://$GH/v1/register" -H 'Content-Type: application/json' \
    -d "{\"email\":\"bench$i@example.com\",\"password\":\"correct horse battery staple\"}" >/dev/null
  creds="$creds${creds:+,}bench$i@example.com:correct horse battery staple"
done
token=$(curl -sf "http://$GH/oauth2/token" -d grant_type=password -d username=bench1@example.com \
  -d 'password=correct horse battery staple' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
cookie=$(curl -sf -D - -o /dev/null "http://$GH/v1/sessions" -H 'Content-Type: application/json' -H 'Sec-Fetch-Site: same-origin' \
  -d '{"email":"bench2@example.com","password":"correct horse battery staple"}' | sed -nE 's/^Set-Cookie: ([^;]+);.*/\1/Ip' | head -1)

# The revocation feed's credential: an administrator's API key with scope
# introspect. And some revocations for guard's set to hold (revoked
# refresh families: session.revoked events).
printf 'correct horse battery staple\n' | env GATEHOUSE_DATA_DIR="$work/data" GATEHOUSE_CONFIG="$work/bench.yaml" $EXTRA_ENV \
  "$work/gatehouse" user create --email benchadmin@example.com --role admin --password-stdin >/dev/null
admin_cookie=$(curl -sf -D - -o /dev/null "http://$GH/v1/sessions" -H 'Content-Type: application/json' -H 'Sec-Fetch-Site: same-origin' \
  -d '{"email":"benchadmin@example.com","password":"correct horse battery staple"}' | sed -nE 's/^Set-Cookie: ([^;]+);.*/\1/Ip' | head -1)
introspect_key=$(curl -sf "http://$GH/v1/api-keys" -H 'Content-Type: application/json' -H 'Sec-Fetch-Site: same-origin' -H "Cookie: $admin_cookie" \
  -d '{"name":"bench feed","scopes":["introspect"]}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
REVOKED="${REVOKED:-200}"
for i in $(seq 1 "$REVOKED"); do
  rt=$(curl -sf "http://$GH/oauth2/token" -d grant_type=password -d "username=bench$(( (i % USERS) + 1 ))@example.com" \
    -d 'password=correct horse battery staple' | sed -E 's/.*"refresh_token":"([^"]+)".*/\1/')
  curl -sf "http://$GH/oauth2/revoke" -d "token=$rt" >/dev/null
done

rps() { awk '/Requests\/sec/ {print $2}'; }
non2xx() { awk '/Non-2xx/ {print $5}'; }

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(go version | awk '{print $3}'), wrk -t2 -c$CONNS -d$DURATION" >&2
hello=$(wrk -t2 -c"$CONNS" -d"$DURATION" "http://$HELLO/" | rps)
me_out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -H "Authorization: Bearer $token" "http://$GH/v1/me")
me=$(echo "$me_out" | rps); me_bad=$(echo "$me_out" | non2xx)
ck_out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -H "Cookie: $cookie" "http://$GH/v1/me")
ck=$(echo "$ck_out" | rps); ck_bad=$(echo "$ck_out" | non2xx)
hello2=$(wrk -t2 -c"$CONNS" -d"$DURATION" "http://$HELLO/" | rps)

"$work/guardhello" -issuer "http://localhost:${GH##*:}" -bare 127.0.0.1:18082 -guarded 127.0.0.1:18083 \
  -feed 127.0.0.1:18084 -key "$introspect_key" &
sleep 1
bare=$(wrk -t2 -c"$CONNS" -d"$DURATION" -H "Authorization: Bearer $token" "http://127.0.0.1:18082/" | rps)
guarded_out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -H "Authorization: Bearer $token" "http://127.0.0.1:18083/")
guarded=$(echo "$guarded_out" | rps); guarded_bad=$(echo "$guarded_out" | non2xx)
feed_out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -H "Authorization: Bearer $token" "http://127.0.0.1:18084/")
feed=$(echo "$feed_out" | rps); feed_bad=$(echo "$feed_out" | non2xx)
bare2=$(wrk -t2 -c"$CONNS" -d"$DURATION" -H "Authorization: Bearer $token" "http://127.0.0.1:18082/" | rps)
bare_avg=$(awk -v a="$bare" -v b="$bare2" 'BEGIN { printf "%.0f", (a+b)/2 }')

# The machine's speed drifts (a shared VM): raw hashing and password grants
# are measured in alternation, ROUNDS grant rounds each between two raw
# rounds (raw, grant, raw, grant, …, raw), and every grant round is compared
# with the mean of the raw rounds either side of it, so a drift during the
# run biases neither side.
ROUNDS="${ROUNDS:-8}"
LOGIN_CONNS="${LOGIN_CONNS:-8}"
LOGIN_DURATION="${LOGIN_DURATION:-5s}"
# Warm up first (connections, SQLite pages, the heap's steady size): the
# raw hashing loop needs none, so both sides are measured in steady state.
wrk -t2 -c"$LOGIN_CONNS" -d"$LOGIN_DURATION" -s bench/login.lua "http://$GH" >/dev/null
raw=0; login=0; login_bad=0; rounds_detail=""
prev=$("$work/argon2rate" -d "$LOGIN_DURATION")
for _ in $(seq 1 "$ROUNDS"); do
  lo=$(wrk -t2 -c"$LOGIN_CONNS" -d"$LOGIN_DURATION" -s bench/login.lua "http://$GH")
  next=$("$work/argon2rate" -d "$LOGIN_DURATION")
  l=$(echo "$lo" | rps); lb=$(echo "$lo" | non2xx)
  r=$(awk -v a="$prev" -v b="$next" 'BEGIN { printf "%.2f", (a+b)/2 }')
  raw=$(awk -v a="$raw" -v b="$r" 'BEGIN { print a+b }')
  login=$(awk -v a="$login" -v b="$l" 'BEGIN { print a+b }')
  login_bad=$((login_bad + ${lb:-0}))
  rounds_detail="$rounds_detail $l / $r ($(awk -v a="$l" -v b="$r" 'BEGIN { printf "%.1f%%", 100*a/b }'));"
  prev=$next
done
raw=$(awk -v a="$raw" -v n="$ROUNDS" 'BEGIN { printf "%.2f", a/n }')
login=$(awk -v a="$login" -v n="$ROUNDS" 'BEGIN { printf "%.2f", a/n }')

flood64=$("$work/flood" -url "http://$GH" -n 64 -users "$creds" -pid "$GH_PID")
# A fresh process for the 500-login flood, so VmHWM is the flood's peak.
kill "$GH_PID"; wait "$GH_PID" 2>/dev/null || true
start_gatehouse
flood500=$("$work/flood" -url "http://$GH" -n 500 -users "$creds" -pid "$GH_PID")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", 100*a/b }'; }
hello_avg=$(awk -v a="$hello" -v b="$hello2" 'BEGIN { printf "%.0f", (a+b)/2 }')
cat <<TABLE
| measurement | Gatehouse | baseline | ratio |
|---|---|---|---|
| bearer \`GET /v1/me\` vs hello-world (req/s, wrk -c$CONNS) | $me (non-2xx: ${me_bad:-0}) | $hello_avg (before $hello, after $hello2) | $(ratio "$me" "$hello_avg") |
| cookie \`GET /v1/me\` vs hello-world (req/s, wrk -c$CONNS) | $ck (non-2xx: ${ck_bad:-0}) | $hello_avg | $(ratio "$ck" "$hello_avg") |
| guard-protected hello vs the same handler bare (req/s, JWT) | $guarded (non-2xx: ${guarded_bad:-0}) | $bare_avg (before $bare, after $bare2) | $(ratio "$guarded" "$bare_avg") |
| the same with the revocation feed on ($REVOKED revocations held) | $feed (non-2xx: ${feed_bad:-0}) | $bare_avg | $(ratio "$feed" "$bare_avg") |
| password grant vs raw argon2id m=19456 t=2 p=1, $(nproc) workers (/s, mean of $ROUNDS grant rounds of $LOGIN_DURATION, each between two raw rounds, wrk -c$LOGIN_CONNS) | $login (non-2xx: ${login_bad:-0}) | $raw | $(ratio "$login" "$raw") |

Rounds (password grants / the mean of the raw argon2id rounds either side, per second):$rounds_detail

64 concurrent logins: \`$flood64\`

500 concurrent logins (fresh process): \`$flood500\`
TABLE
