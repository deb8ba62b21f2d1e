#!/usr/bin/env bash
# The strategy comparison (`make demo`): opreg-httpd once per registry strategy (async),
# once per diagnosis flag, once as thread-per-connection, beside nginx and h2o with one
# worker when installed and the bare epoll floor, each loaded by wrk with 100 and 1000
# keep-alive connections and with 16-deep pipelining. Server on core 1, wrk on core 0
# (2 cores here), contenders one after another in the same run: compare ratios.
# Writes bench/results/<date>-<host>.csv and .png, and prints the table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
  cat <<'USAGE'
usage: bench/demo.sh [--seconds S] [--build DIR] [--out DIR] [--quick]

  --seconds S   wrk duration of each load (default 3)
  --build DIR   where opreg-httpd and opreg-floor are (default build/release/bin)
  --out DIR     where the CSV and PNG go (default bench/results)
  --quick       only the five strategies, the floor and nginx (a faster first look)
USAGE
}

seconds=3
bin=build/release/bin
out=bench/results
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --build) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

for tool in wrk taskset; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is missing (make deps installs it)" >&2; exit 1; }
done
[ -x "$bin/opreg-httpd" ] || { echo "demo: no $bin/opreg-httpd; run make build" >&2; exit 1; }

cores=$(nproc)
server_cpu=$(( cores > 1 ? 1 : 0 ))
client_cpu=0
host=$(hostname -s 2>/dev/null || hostname)
stamp=$(date +%Y-%m-%d)
mkdir -p "$out"
csv="$out/$stamp-$host.csv"
png="$out/$stamp-$host.png"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "machine: $host, $cores cores ($cpu_model), $(uname -sr)"
echo "load: wrk ${seconds}s per run on core $client_cpu; servers on core $server_cpu"
echo

# start NAME CMD... : starts a server pinned to the server core, waits for its port.
start_server() {
  local log="$work/server.log"
  taskset -c "$server_cpu" "$@" >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log" | head -1)
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "demo: server did not start: $*" >&2
  cat "$log" >&2
  return 1
}
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

# load CONNS [pipeline] -> req/s on stdout
load() {
  local conns=$1 extra=()
  [ "${2:-}" = pipeline ] && extra=(-s bench/pipeline16.lua)
  local threads=1
  taskset -c "$client_cpu" wrk -t"$threads" -c"$conns" -d"${seconds}s" "${extra[@]}" \
    "http://127.0.0.1:$port/" 2>&1 | awk '/Requests\/sec/ {print int($2)} /Non-2xx|Socket errors/ {print "ERR " $0 > "/dev/stderr"}'
}

nginx_conf() {
  cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
error_log $work/nginx-error.log;
pid $work/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:0;
    location / { default_type text/plain; return 200 "Hello, World!"; }
  }
}
NGINX
}

rows=()
add_row() { rows+=("$1|$2"); }  # label | command
httpd="$bin/opreg-httpd --port 0"
for r in mutex_map sharded_map tbb_map slot_array mpsc_queue; do
  add_row "opreg $r" "$httpd --registry $r"
done
if [ "$quick" = 0 ]; then
  add_row "opreg thread-per-conn" "$httpd --model thread-per-conn"
  add_row "mutex_map; 2 threads share it" "$httpd --registry mutex_map --threads 2 --shared-registry"
  add_row "mutex_map + std::function per op" "$httpd --registry mutex_map --std-function"
  add_row "mutex_map + re-register per op" "$httpd --registry mutex_map --rearm-per-op"
  add_row "mutex_map + Nagle + write per part" "$httpd --registry mutex_map --nagle --write-per-part"
  add_row "original: all of the above" "$httpd --registry mutex_map --threads 2 --shared-registry --std-function --rearm-per-op --nagle --write-per-part"
fi
add_row "floor (bare epoll)" "$bin/opreg-floor --port 0"

echo "implementation,keepalive_100,keepalive_1000,pipelined_16x100" >"$csv"
total=${#rows[@]}
have_nginx=0
if command -v nginx >/dev/null; then have_nginx=1; total=$((total + 1)); else
  echo "(nginx not installed: 'apt-get install nginx-light' adds it to the table)"; fi
if ! command -v h2o >/dev/null; then
  echo "(h2o not installed: 'apt-get install h2o' adds it to the table)"; else total=$((total + 1)); fi

i=0
run_row() {
  local label=$1
  i=$((i + 1))
  printf '[%2d/%d] %-36s' "$i" "$total" "$label" >&2
  local a b c
  a=$(load 100); b=$(load 1000); c=$(load 100 pipeline)
  printf ' %9s %9s %10s req/s\n' "$a" "$b" "$c" >&2
  echo "$label,$a,$b,$c" >>"$csv"
}
for row in "${rows[@]}"; do
  label=${row%%|*}; cmd=${row#*|}
  # shellcheck disable=SC2086
  start_server $cmd || continue
  run_row "$label"
  stop_server
done
if [ "$have_nginx" = 1 ]; then
  nginx_conf
  # nginx cannot print the port it got: give it a fixed free one.
  nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  sed -i "s/listen 127.0.0.1:0;/listen 127.0.0.1:$nport;/" "$work/nginx.conf"
  taskset -c "$server_cpu" nginx -c "$work/nginx.conf" -p "$work" >/dev/null 2>&1 &
  server_pid=$!
  port=$nport
  sleep 0.5
  run_row "nginx (1 worker)"
  stop_server
fi

have_h2o=0
command -v h2o >/dev/null && have_h2o=1
if [ "$have_h2o" = 1 ]; then
  hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$work/h2o.conf" <<H2O
num-threads: 1
listen:
  host: 127.0.0.1
  port: $hport
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
  taskset -c "$server_cpu" h2o -c "$work/h2o.conf" >/dev/null 2>&1 &
  server_pid=$!
  port=$hport
  sleep 0.5
  run_row "h2o (1 thread)"
  stop_server
fi

bash bench/table.sh "$csv"
if command -v gnuplot >/dev/null; then
  bash bench/plot.sh "$csv" "$png" && echo "plot: $png"
fi
echo "csv: $csv"
