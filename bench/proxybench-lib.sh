# Shared by bench/proxy-bench, bench/budget-proxy-bench and bench/profile-gate (sourced, not run).
# The caller sets NAME (for messages), TMP (a temporary directory it removes), DURATION, CONNS,
# and calls pb_init first. Every server listens on 127.0.0.1 with an ephemeral port; every wait
# is bounded; pb_cleanup stops what was started here, by process id.

PIDS=()
declare -A PORT     # target -> port
declare -A CPU_PIDS # target -> the process ids whose CPU time counts for it
CLK_TCK=$(getconf CLK_TCK)

pb_die() { echo "$NAME: $*" >&2; exit 1; }

pb_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}

# Sets PIN_PROXY and PIN_LOAD: the proxies on core 1, wrk and the mock on core 0 (2+ cores).
pb_init() {
  PIN_PROXY=""; PIN_LOAD=""
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_PROXY="taskset -c 1"; PIN_LOAD="taskset -c 0"
  fi
  trap pb_cleanup EXIT INT TERM
}

# Waits (bounded, 5 s) for a line matching "listening on ...:PORT" in a file; prints PORT.
pb_wait_port() {
  local file="$1" i p
  for i in $(seq 1 100); do
    p=$(grep -o 'listening on [a-z:/]*127.0.0.1:[0-9]*' "$file" 2>/dev/null | grep -o '[0-9]*$' | head -1 || true)
    if [ -n "$p" ]; then echo "$p"; return 0; fi
    sleep 0.05
  done
  echo "$NAME: no port in $file:" >&2; cat "$file" >&2; return 1
}

pb_free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Prints the CPU time (user + system, all threads, in clock ticks) the processes have used so
# far, from utime and stime of /proc/PID/stat. Fails when one of them is gone.
pb_cpu_ticks() {
  local total=0 p s f
  for p in "$@"; do
    s=$(</proc/"$p"/stat) || { echo "$NAME: process $p is gone" >&2; return 1; }
    s=${s##*) }            # the fields after "(comm) ", from the third (state) on
    read -r -a f <<<"$s"
    total=$((total + f[11] + f[12])) # fields 14 (utime) and 15 (stime)
  done
  echo "$total"
}

# Starts the mock provider (core 0) from build directory $1; sets MOCK_PORT.
pb_start_mock() {
  $PIN_LOAD "$1/tokengate-mock" --listen 127.0.0.1:0 --tokens 16 >"$TMP/mock.out" 2>&1 &
  PIDS+=($!)
  CPU_PIDS[mock]=$!
  MOCK_PORT=$(pb_wait_port "$TMP/mock.out")
  PORT[mock]=$MOCK_PORT
}

# Starts nginx (Debian) as a plain reverse proxy in front of the mock: 1 worker, upstream
# keepalive, an access log; core 1. Sets PORT[nginx] and CPU_PIDS[nginx] (its worker processes).
pb_start_nginx() {
  local port master i workers=""
  port=$(pb_free_port)
  mkdir -p "$TMP/nginx/logs"
  cat >"$TMP/nginx/nginx.conf" <<NGX
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $TMP/nginx/access.log combined buffer=64k;
  client_body_buffer_size 64k;
  client_max_body_size 32m;
  upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$port reuseport;
    location /v1/ {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer sk-bench-provider";
    }
  }
}
NGX
  $PIN_PROXY nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' 2>"$TMP/nginx/stderr" &
  master=$!
  PIDS+=($master)
  for i in $(seq 1 100); do
    workers=$(pgrep -P "$master" | tr '\n' ' ' || true)
    if [ -n "$workers" ] && curl -s -o /dev/null "http://127.0.0.1:$port/"; then break; fi
    sleep 0.05
  done
  [ -n "$workers" ] || { cat "$TMP/nginx/stderr" "$TMP/nginx/error.log" >&2 2>/dev/null; pb_die "nginx did not start"; }
  PORT[nginx]=$port
  CPU_PIDS[nginx]=$workers
}

# Writes the gate's config for target $1 to $TMP/$1.yaml: with $2 = off, the plain gate (no org,
# an open gate); with $2 = on, the same plus an org (2 departments, 4 teams, 8 agents), a key
# per agent (tg-bench-key-0..7), token and dollar budgets on every level, prices, alerts and the
# ledger (SQLite, $TMP/$1-ledger.db). One worker; the request log in $TMP/$1-requests.jsonl.
pb_gate_yaml() {
  local name="$1" budgets="$2" a t
  {
    cat <<YAML
listen: 127.0.0.1:0
workers: 1
request_log: $TMP/$name-requests.jsonl
providers:
  mock: { base_url: "http://127.0.0.1:$MOCK_PORT/v1", format: openai, api_key_env: TG_BENCH_KEY }
YAML
    if [ "$budgets" = off ]; then
      printf 'models:\n  gpt-4o-mini: mock\n'
    else
      cat <<YAML
models:
  gpt-4o-mini:
    provider: mock
    price: { input: 0.15, output: 0.60, cached_input: 0.075 }
org: acme
departments:
  d0:
    teams:
      t0: { agents: [a0, a4] }
      t1: { agents: [a1, a5] }
  d1:
    teams:
      t2: { agents: [a2, a6] }
      t3: { agents: [a3, a7] }
keys:
YAML
      for a in 0 1 2 3 4 5 6 7; do echo "  tg-bench-key-$a: a$a"; done
      cat <<YAML
budgets:
  - { scope: org, window: month, usd: 1000000 }
  - { scope: org, window: day, tokens: 1000000000000 }
  - { scope: department:d0, window: day, usd: 100000 }
  - { scope: department:d1, window: day, usd: 100000 }
YAML
      for t in 0 1 2 3; do
        echo "  - { scope: team:t$t, window: day, tokens: 100000000000 }"
        echo "  - { scope: team:t$t, window: hour, usd: 10000 }"
      done
      for a in 0 1 2 3 4 5 6 7; do
        echo "  - { scope: agent:a$a, window: minute, tokens: 10000000000 }"
      done
      cat <<YAML
alerts:
  thresholds: [80, 95]
ledger:
  path: $TMP/$name-ledger.db
  sync: normal
YAML
    fi
  } >"$TMP/$name.yaml"
}

# Starts the gate binary $2 as target $1 with $TMP/$1.yaml, on core 1; sets PORT[$1] and
# CPU_PIDS[$1] (its one process: workers, the ledger thread and the log writer are threads).
pb_start_gate() {
  local name="$1" bin="$2"
  TG_BENCH_KEY=sk-bench-provider $PIN_PROXY "$bin" serve --config "$TMP/$name.yaml" 2>"$TMP/$name.err" &
  PIDS+=($!)
  CPU_PIDS[$name]=$!
  PORT[$name]=$(pb_wait_port "$TMP/$name.err")
}

# Writes the pool of bodies ($BODIES distinct ~4 KB chat requests, seed $SEED) to
# $TMP/bodies.jsonl, one a line, and the wrk script that sends them in turn to $TMP/post.lua.
# The requests carry "Authorization: Bearer $1".
pb_bodies() {
  node bench/bodygen.mjs --out "$TMP/bodies.jsonl" --count "$BODIES" --seed "$SEED" 2>"$TMP/bodygen.out" ||
    { cat "$TMP/bodygen.out" >&2; pb_die "no bodies"; }
  BODY_INFO=$(sed 's/^bodygen: //' "$TMP/bodygen.out")
  echo "$NAME: $BODY_INFO" >&2
  sed -n 1p "$TMP/bodies.jsonl" >"$TMP/body-first.json"
  tail -n 1 "$TMP/bodies.jsonl" >"$TMP/body-last.json"
  cat >"$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $1"
-- the pool, one body a line; each request takes the next, round the pool. The requests are
-- written out once (init) so that wrk spends no more per request than with one fixed body.
local reqs = {}
local i = 0
init = function(args)
  for line in io.lines("$TMP/bodies.jsonl") do reqs[#reqs + 1] = wrk.format(nil, nil, nil, line) end
  assert(#reqs > 0, "no bodies")
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH rps=%.1f p50=%.1f p99=%.1f requests=%d non200=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
LUA
}

# Checks that target $1 answers the first and the last body of the pool with 200 and a usage
# report (with "Authorization: Bearer $2"); with $3 = budget, also that it reserved (its
# x-tokengate-budget-remaining header).
pb_check() {
  local name="$1" key="$2" want="${3:-}" b code
  for b in first last; do
    code=$(curl -s -D "$TMP/check.h" -o "$TMP/check.json" -w '%{http_code}' --max-time 10 \
      -H 'content-type: application/json' -H "authorization: Bearer $key" \
      --data-binary @"$TMP/body-$b.json" "http://127.0.0.1:${PORT[$name]}/v1/chat/completions" || true)
    if [ "$code" != 200 ] || ! grep -q '"usage"' "$TMP/check.json"; then
      cat "$TMP/check.json" >&2; pb_die "$name (127.0.0.1:${PORT[$name]}) answered $code"
    fi
    if [ "$want" = budget ] && ! grep -qi '^x-tokengate-budget-remaining:' "$TMP/check.h"; then
      cat "$TMP/check.h" >&2; pb_die "$name, the gate with budgets, did not reserve"
    fi
  done
}

# Runs wrk ($DURATION s, $CONNS connections, one thread, core 0) against target $1 and appends
# "name rps p50_us p99_us requests cpu_ticks cpu_us_per_request" to $TMP/results; the CPU time
# is that of CPU_PIDS[$1] from just before wrk starts to just after it ends. Fails on any
# non-200 answer or socket error.
pb_run() {
  local name="$1" out c0 c1 rps p50 p99 n non200 errs cpu
  c0=$(pb_cpu_ticks ${CPU_PIDS[$name]}) || pb_die "$name is not running"
  out=$($PIN_LOAD timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$TMP/post.lua" \
    "http://127.0.0.1:${PORT[$name]}/v1/chat/completions" | grep '^BENCH' || true)
  c1=$(pb_cpu_ticks ${CPU_PIDS[$name]}) || pb_die "$name died under load"
  [ -n "$out" ] || pb_die "wrk printed nothing against $name"
  rps=$(sed 's/.*rps=\([0-9.]*\).*/\1/' <<<"$out")
  p50=$(sed 's/.*p50=\([0-9.]*\).*/\1/' <<<"$out")
  p99=$(sed 's/.*p99=\([0-9.]*\).*/\1/' <<<"$out")
  n=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$out")
  non200=$(sed 's/.*non200=\([0-9]*\).*/\1/' <<<"$out")
  errs=$(sed 's/.*errors=\([0-9]*\).*/\1/' <<<"$out")
  if [ "$non200" != 0 ] || [ "$errs" != 0 ]; then
    pb_die "$name had $non200 non-200 answers and $errs socket errors"
  fi
  [ "$n" -gt 0 ] || pb_die "$name completed no request"
  cpu=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
  echo "  $name: $out cpu_us_per_req=$cpu" >&2
  echo "$name $rps $p50 $p99 $n $((c1 - c0)) $cpu" >>"$TMP/results"
}

# Runs one round: every target in $@ once, starting with the ($1-th round mod count)-th, so
# that which goes first (and after which) moves from round to round.
pb_round() {
  local r="$1" k n
  shift
  n=$#
  local targets=("$@")
  echo "round $r" >&2
  for ((k = 0; k < n; k++)); do pb_run "${targets[$(((k + r - 1) % n))]}"; done
}
