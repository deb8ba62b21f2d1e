#!/usr/bin/env bash
# The strategy comparison (`make demo`): opreg-httpd once per registry strategy (async),
# once per diagnosis flag, once as thread-per-connection, beside nginx and h2o with one
# worker when installed and the bare epoll floor, each loaded by wrk with 100 and 1000
# keep-alive connections and with 16-deep pipelining. Server on core 1, wrk on core 0
# (2 cores here), contenders one after another in the same run, in rounds: compare
# ratios of medians. Writes bench/results/<date>-<host>.csv (medians), -runs.csv (every
# run) and .png, and prints the table; then what an idle connection costs each model
# (-idle-memory.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
  cat <<'USAGE'
usage: bench/demo.sh [--seconds S] [--repeat N] [--build DIR] [--out DIR] [--quick]

  --seconds S   wrk duration of each load (default 2)
  --repeat N    rounds over every row; the table and CSV hold each cell's median, and
                <date>-<host>-runs.csv every run (default 3)
  --build DIR   where opreg-httpd and opreg-floor are (default build/release/bin)
  --out DIR     where the CSV and PNG go (default bench/results)
  --quick       only the strategies (opreg-httpd --list), the floor, nginx and h2o, one
                round (a first look)
USAGE
}

# A server that does not answer within this long after its start is reported and skipped.
readonly start_timeout_s=5
# One wrk thread: the load generator has one core to itself, as the server has the other.
readonly wrk_threads=1

# Set by parse_args.
seconds=2 repeat=3 bin=build/release/bin out=bench/results quick=0
# Set by setup.
server_cpu=0 client_cpu=0 work="" host="" stamp=""
# The server running now: its pid and the port it serves on.
server_pid="" port=""
# The table's rows, "label|command", in order; a command is @nginx, @h2o or a program and
# its arguments (words: no spaces inside one), which start_server gives --port.
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
  if [ "$quick" = 0 ]; then
    add_row "opreg thread-per-conn" "$httpd --model thread-per-conn"
    add_row "$baseline; 2 threads share it" "$httpd --registry $baseline --threads 2 --shared-registry"
    add_row "$baseline + std::function per op" "$httpd --registry $baseline --std-function"
    add_row "$baseline + re-register per op" "$httpd --registry $baseline --rearm-per-op"
    add_row "$baseline + Nagle + write per part" "$httpd --registry $baseline --nagle --write-per-part"
    add_row "original: all of the above" "$httpd --registry $baseline --threads 2 --shared-registry --std-function --rearm-per-op --nagle --write-per-part"
  fi
  add_row "floor (bare epoll)" "$bin/opreg-floor"
  if command -v nginx >/dev/null; then add_row "nginx (1 worker)" "@nginx"; else
    echo "(nginx not installed: 'apt-get install nginx-light' adds it to the table)"; fi
  if command -v h2o >/dev/null; then add_row "h2o (1 thread)" "@h2o"; else
    echo "(h2o not installed: 'apt-get install h2o' adds it to the table)"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PID PORT: returns once the server on 127.0.0.1:PORT answers a request; fails
# when PID exits first or start_timeout_s passes.
wait_port() {
  local pid=$1 port=$2 deadline=$((SECONDS + start_timeout_s))
  while [ "$SECONDS" -le "$deadline" ]; do
    kill -0 "$pid" 2>/dev/null || return 1
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && return 0
    sleep 0.05
  done
  return 1
}

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

# load CONNS [pipeline] -> req/s on stdout
load() {
  local conns=$1 extra=()
  [ "${2:-}" = pipeline ] && extra=(-s bench/pipeline16.lua)
  taskset -c "$client_cpu" wrk -t"$wrk_threads" -c"$conns" -d"${seconds}s" "${extra[@]}" \
    "http://127.0.0.1:$port/" 2>&1 | awk '/Requests\/sec/ {print int($2)} /Non-2xx|Socket errors/ {print "ERR " $0 > "/dev/stderr"}'
}

# run_rounds RUNS_CSV: every row, round after round, so that a slow spell of the machine
# spreads over the contenders instead of landing on one; one CSV line per run.
run_rounds() {
  local runs=$1 total=$(( ${#rows[@]} * repeat )) i=0 round row label cmd a b c
  echo "round,implementation,keepalive_100,keepalive_1000,pipelined_16x100" >"$runs"
  for round in $(seq 1 "$repeat"); do
    for row in "${rows[@]}"; do
      label=${row%%|*}; cmd=${row#*|}
      start_server "$cmd" || continue
      i=$((i + 1))
      printf '[%3d/%d] round %d  %-36s' "$i" "$total" "$round" "$label" >&2
      a=$(load 100); b=$(load 1000); c=$(load 100 pipeline)
      printf ' %9s %9s %10s req/s\n' "$a" "$b" "$c" >&2
      echo "$round,$label,$a,$b,$c" >>"$runs"
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
