#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The strategy comparison (`make demo`): opreg-httpd once per registry strategy (async),
# once per diagnosis flag, once as thread-per-connection, beside nginx, h2o and
# FastAPI/uvicorn with one worker when installed and the bare epoll floor, each loaded by
# wrk with 100 and 1000 keep-alive connections and with 16-deep pipelining. Server on
# core 1, wrk on core 0 (2 cores here), contenders one after another in the same run, in
# rounds: compare ratios of medians. Each run records the rate and what it cost: the
# server's CPU time over exactly wrk's run, and wrk's own, per request (wrk needs a core
# too, so the rate can be the client's limit; CPU per request is the server's cost whoever
# limits the rate).
# Writes bench/results/<date>-<host>.csv (medians), -runs.csv (every run) and .png, and
# prints the table; then what an idle connection costs each model (-idle-memory.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Numbers are read back from bash's time and from awk: a decimal point, whatever the locale.
export LC_ALL=C

usage() {
  cat <<'USAGE'
usage: bench/demo.sh [--seconds S] [--repeat N] [--build DIR] [--out DIR] [--quick]

  --seconds S   wrk duration of each load (default 2)
  --repeat N    rounds over every row; the table and CSV hold each cell's median, and
                <date>-<host>-runs.csv every run (default 3)
  --build DIR   where opreg-httpd and opreg-floor are (default build/release/bin)
  --out DIR     where the CSV and PNG go (default bench/results)
  --quick       only the strategies (opreg-httpd --list), io_uring's two modes, the floor,
                nginx and h2o, one round (a first look)

Each run prints, per load (keep-alive 100 connections | 1000 connections | 16-deep
pipelining on 100), req/s and the server's CPU microseconds per request, then wrk's. The
server's CPU is utime+stime of its processes (all threads; nginx's worker too), read from
/proc just before and just after the wrk run, divided by the requests wrk reports; /proc
counts in 1/CLK_TCK s (10 ms), so a row that serves few requests gets a coarse figure.
CSV columns: round, implementation, the three rates, then server_cpu_us_per_req_<load>
and wrk_cpu_us_per_req_<load> for the same three loads.
USAGE
}

# A server that does not answer within this long after its start is reported and skipped.
readonly start_timeout_s=5
# One wrk thread: the load generator has one core to itself, as the server has the other.
readonly wrk_threads=1

# Set by parse_args.
seconds=2 repeat=3 bin=build/release/bin out=bench/results quick=0
# Set by setup; clk_tck is the unit of utime and stime in /proc/PID/stat.
server_cpu=0 client_cpu=0 work="" host="" stamp="" clk_tck=100 fastapi_python=""
# The server running now: its pid and the port it serves on.
server_pid="" port=""
# The table's rows, "label|command", in order; a command is @nginx, @h2o, @fastapi or a
# program and its arguments (words: no spaces inside one), which start_server gives --port.
rows=()

parse_args() {
  local repeat_given=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --seconds) seconds=$2; shift 2 ;;
      --repeat) repeat=$2; repeat_given=1; shift 2 ;;
      --build) bin=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      --quick) quick=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) echo "demo: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
  done
  if [ "$quick" = 1 ] && [ "$repeat_given" = 0 ]; then repeat=1; fi
  case "$repeat" in ''|*[!0-9]*|0) echo "demo: --repeat wants a positive count" >&2; exit 2 ;; esac
}

check_tools() {
  local tool
  for tool in wrk taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "demo: $tool is missing (make deps installs it)" >&2; exit 1; }
  done
  [ -x "$bin/opreg-httpd" ] || { echo "demo: no $bin/opreg-httpd; run make build" >&2; exit 1; }
}

setup() {
  local cores cpu_model
  cores=$(nproc)
  server_cpu=$(( cores > 1 ? 1 : 0 ))
  client_cpu=0
  clk_tck=$(getconf CLK_TCK)
  host=$(hostname -s 2>/dev/null || hostname)
  stamp=$(date +%Y-%m-%d)
  mkdir -p "$out"
  work=$(mktemp -d)
  trap 'stop_server; rm -rf "$work"' EXIT
  cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  echo "machine: $host, $cores cores ($cpu_model), $(uname -sr)"
  echo "load: wrk ${seconds}s per run on core $client_cpu; servers on core $server_cpu; $repeat round(s)"
  echo
}

add_row() { rows+=("$1|$2"); }

# The rows: every strategy opreg-httpd lists, its first (the baseline: one mutex around a
# map, as the original design had it) also with each of the original design's choices and
# with all of them, then the floor and the other servers this machine has.
build_rows() {
  local httpd="$bin/opreg-httpd" list strategies r baseline
  if ! list=$("$httpd" --list) || [ -z "$list" ]; then
    echo "demo: $httpd --list gave no strategies" >&2
    exit 1
  fi
  mapfile -t strategies <<<"$list"
  for r in "${strategies[@]}"; do
    add_row "opreg $r" "$httpd --registry $r"
  done
  baseline=${strategies[0]}
  # The kernel interfaces, on the array: io_uring waiting for readiness, and in completion
  # mode (the kernel reads into provided buffers and sends; one submission per loop turn).
  add_row "opreg slot_array; io_uring readiness" "$httpd --registry slot_array --backend io_uring"
  add_row "opreg slot_array; io_uring completion" "$httpd --registry slot_array --backend io_uring-completion"
  if [ "$quick" = 0 ]; then
    add_row "opreg thread-per-conn" "$httpd --model thread-per-conn"
    add_row "$baseline; 2 threads share it" "$httpd --registry $baseline --threads 2 --shared-registry"
    add_row "$baseline + std::function per op" "$httpd --registry $baseline --std-function"
    add_row "$baseline + re-register per op" "$httpd --registry $baseline --rearm-per-op"
    add_row "$baseline + Nagle + write per part" "$httpd --registry $baseline --nagle --write-per-part"
    add_row "original: all of the above" "$httpd --registry $baseline --threads 2 --shared-registry --std-function --rearm-per-op --nagle --write-per-part"
  fi
  add_row "floor (bare epoll)" "$bin/opreg-floor"
  if "$bin/opreg-floor" --list | grep -qx io_uring; then
    add_row "floor (bare io_uring)" "$bin/opreg-floor --backend io_uring"; fi
  if command -v nginx >/dev/null; then add_row "nginx (1 worker)" "@nginx"; else
    echo "(nginx not installed: 'apt-get install nginx-light' adds it to the table)"; fi
  if command -v h2o >/dev/null; then add_row "h2o (1 thread)" "@h2o"; else
    echo "(h2o not installed: 'apt-get install h2o' adds it to the table)"; fi
  # The original table's fastest row.
  if fastapi_python=$(find_fastapi_python); then add_row "FastAPI/uvicorn (1 worker)" "@fastapi"
  else echo "(FastAPI not installed: 'apt-get install python3-fastapi python3-uvicorn" \
    "python3-uvloop python3-httptools' adds it to the table)"; fi
}

# find_fastapi_python: prints a Python that imports fastapi and uvicorn (Debian's packages
# are /usr/bin/python3's, which need not be the python3 first on PATH).
find_fastapi_python() {
  local py
  for py in python3 /usr/bin/python3; do
    command -v "$py" >/dev/null || continue
    "$py" -c 'import fastapi, uvicorn' 2>/dev/null && { command -v "$py"; return 0; }
  done
  return 1
}

# fastapi_argv PORT: uvicorn with one worker (one process, like the other rows' one thread),
# uvloop and httptools when the Python has them, no access log.
fastapi_argv() {
  argv=("$fastapi_python" -m uvicorn --app-dir bench fastapi_app:app --host 127.0.0.1
        --port "$1" --workers 1 --log-level warning --no-access-log)
  "$fastapi_python" -c 'import uvloop' 2>/dev/null && argv+=(--loop uvloop)
  "$fastapi_python" -c 'import httptools' 2>/dev/null && argv+=(--http httptools)
  return 0
}

# free_port, wait_port
source bench/ports.sh

# nginx_conf PORT: one worker answering every request with the text.
nginx_conf() {
  cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
error_log $work/nginx-error.log;
pid $work/nginx.pid;
# above the largest load's 1000 connections
events { worker_connections 4096; }
http {
  access_log off;
  # nginx closes a keep-alive connection after 1000 requests by default; a run must not
  # measure reconnections
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$1;
    location / { default_type text/plain; return 200 "Hello, World!"; }
  }
}
NGINX
}

# h2o_conf PORT: one thread serving the text as a static file.
h2o_conf() {
  cat >"$work/h2o.conf" <<H2O
num-threads: 1
listen:
  host: 127.0.0.1
  port: $1
error-log: $work/h2o-error.log
hosts:
  default:
    paths:
      /:
        file.dir: $work/h2o-root
H2O
  mkdir -p "$work/h2o-root"
  chmod 755 "$work" "$work/h2o-root"  # h2o serves files as nobody
  printf 'Hello, World!' >"$work/h2o-root/index.html"
}

# start_server COMMAND: starts a row's server on a free port, pinned to the server core,
# and waits until it answers; sets server_pid and port.
start_server() {
  local cmd=$1 log="$work/server.log"
  local -a argv
  port=$(free_port)
  case "$cmd" in
    @nginx) nginx_conf "$port"; argv=(nginx -c "$work/nginx.conf" -p "$work") ;;
    @h2o) h2o_conf "$port"; argv=(h2o -c "$work/h2o.conf") ;;
    @fastapi) fastapi_argv "$port" ;;
    *) read -ra argv <<<"$cmd"; argv+=(--port "$port") ;;
  esac
  taskset -c "$server_cpu" "${argv[@]}" >"$log" 2>&1 &
  server_pid=$!
  wait_port "$server_pid" "$port" && return 0
  echo "demo: server did not answer on port $port: ${argv[*]}" >&2
  cat "$log" >&2
  stop_server
  return 1
}

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# server_ticks: utime+stime of the server and every process below it (nginx's worker is the
# master's child), in clock ticks. /proc/PID/stat counts all of a process's threads, those
# that have exited too (thread-per-conn's).
server_ticks() {
  # a process that ends between the glob and cat is no error
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v root="$server_pid" '
    { pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ")  # f[k] is field k+2: comm may hold spaces
      parent[pid] = f[2]; ticks[pid] = f[12] + f[13] }         # ppid; utime, stime
    END { for (p in ticks) { q = p; while (q in parent && q != root) q = parent[q]
                             if (q == root) t += ticks[p] }
          print t + 0 }'
}

# load CONNS [pipeline]: one wrk run. Sets rate (req/s), server_us and wrk_us (CPU
# microseconds per request of the server over exactly the run, and of wrk); a figure wrk's
# output does not give is left empty.
load() {
  local conns=$1 extra=() out="$work/wrk.out" times="$work/wrk.time" before after requests
  local TIMEFORMAT='%3U %3S'  # bash's time: wrk's user and system CPU, from its rusage
  [ "${2:-}" = pipeline ] && extra=(-s bench/pipeline16.lua)
  before=$(server_ticks)
  { time taskset -c "$client_cpu" wrk -t"$wrk_threads" -c"$conns" -d"${seconds}s" "${extra[@]}" \
      "http://127.0.0.1:$port/" >"$out" 2>&1; } 2>"$times" || true
  after=$(server_ticks)
  grep -E 'Non-2xx|Socket errors' "$out" | sed 's/^/ERR /' >&2 || true
  rate=$(awk '/Requests\/sec/ {print int($2)}' "$out")
  requests=$(awk '/ requests in / {print $1}' "$out")
  # time's line is the last: under bash -x the trace lands in the same file
  read -r server_us wrk_us < <(tail -1 "$times" | awk -v r="${requests:-0}" -v d=$((after - before)) -v hz="$clk_tck" '
    { if (r > 0) printf "%.3f %.3f\n", d / hz * 1e6 / r, ($1 + $2) * 1e6 / r; else print "" }') || true
}

# run_rounds RUNS_CSV: every row, round after round, so that a slow spell of the machine
# spreads over the contenders instead of landing on one; one CSV line per run.
run_rounds() {
  local runs=$1 total=$(( ${#rows[@]} * repeat )) i=0 round row label cmd load_args
  local header=round,implementation prefix name rates servers wrks rate server_us wrk_us
  for prefix in "" server_cpu_us_per_req_ wrk_cpu_us_per_req_; do
    for name in keepalive_100 keepalive_1000 pipelined_16x100; do header+=",$prefix$name"; done
  done
  echo "$header" >"$runs"
  echo "per run: req/s and server CPU us/request for keep-alive 100 | 1000 conns | pipelined 16x100; then wrk's CPU us/request" >&2
  for round in $(seq 1 "$repeat"); do
    for row in "${rows[@]}"; do
      label=${row%%|*}; cmd=${row#*|}
      start_server "$cmd" || continue
      i=$((i + 1))
      printf '[%3d/%d] round %d  %-36s' "$i" "$total" "$round" "$label" >&2
      rates=() servers=() wrks=()
      for load_args in 100 1000 "100 pipeline"; do
        # shellcheck disable=SC2086  # "100 pipeline" is two arguments
        load $load_args
        rates+=("$rate") servers+=("$server_us") wrks+=("$wrk_us")
        printf ' %8s req/s %6s us |' "${rate:--}" "${server_us:--}" >&2
      done
      printf ' wrk %s %s %s us\n' "${wrks[0]:--}" "${wrks[1]:--}" "${wrks[2]:--}" >&2
      (IFS=,; echo "$round,$label,${rates[*]},${servers[*]},${wrks[*]}") >>"$runs"
      stop_server
    done
  done
}

main() {
  parse_args "$@"
  check_tools
  setup
  build_rows
  local runs="$out/$stamp-$host-runs.csv" csv="$out/$stamp-$host.csv" png="$out/$stamp-$host.png"
  run_rounds "$runs"
  python3 bench/summarize.py demo "$runs" >"$csv"
  echo
  echo "medians of $repeat round(s) of ${seconds}s loads; every run: $runs"
  bash bench/table.sh "$csv"
  if command -v gnuplot >/dev/null; then
    bash bench/plot.sh "$csv" "$png" && echo "plot: $png"
  fi
  echo "csv: $csv"
  idle_memory "$out/$stamp-$host-idle-memory.md"
}

# idle_memory OUT: what an idle keep-alive connection costs each model (and nginx), beside
# the rates above: the thread-per-connection row's price is a thread per connection.
idle_memory() {
  local conns=2000
  [ "$quick" = 1 ] && conns=500
  echo
  echo "RSS per idle keep-alive connection ($conns connections each):"
  if python3 bench/idle_memory.py --connections "$conns" --httpd "$bin/opreg-httpd" >"$1"; then
    cat "$1"
    echo "idle memory: $1"
  else
    rm -f "$1"
    echo "idle memory: not measured (see the error above)"
  fi
}

main "$@"
