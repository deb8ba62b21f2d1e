#!/usr/bin/env bash
# The strategy comparison (`make demo`): opreg-httpd once per registry strategy (async),
# once per diagnosis flag, once as thread-per-connection, beside nginx and h2o with one
# worker when installed and the bare epoll floor, each loaded by wrk with 100 and 1000
# keep-alive connections and with 16-deep pipelining. Server on core 1, wrk on core 0
# (2 cores here), contenders one after another in the same run, in rounds: compare
# ratios of medians. Writes bench/results/<date>-<host>.csv (medians), -runs.csv (every
# run) and .png, and prints the table.
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
  --quick       only the five strategies, the floor, nginx and h2o, one round (a first look)
USAGE
}

seconds=2
repeat=3
repeat_given=0
bin=build/release/bin
out=bench/results
quick=0
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
[ "$quick" = 1 ] && [ "$repeat_given" = 0 ] && repeat=1
case "$repeat" in ''|*[!0-9]*|0) echo "demo: --repeat wants a positive count" >&2; exit 2 ;; esac

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
echo "load: wrk ${seconds}s per run on core $client_cpu; servers on core $server_cpu; $repeat round(s)"
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
add_row() { rows+=("$1|$2"); }  # label | command (@nginx, @h2o: started below)
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
if command -v nginx >/dev/null; then add_row "nginx (1 worker)" "@nginx"; else
  echo "(nginx not installed: 'apt-get install nginx-light' adds it to the table)"; fi
if command -v h2o >/dev/null; then add_row "h2o (1 thread)" "@h2o"; else
  echo "(h2o not installed: 'apt-get install h2o' adds it to the table)"; fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
start_nginx() {
  nginx_conf
  # nginx cannot print the port it got: give it a fixed free one.
  port=$(free_port)
  sed -i "s/listen 127.0.0.1:0;/listen 127.0.0.1:$port;/" "$work/nginx.conf"
  taskset -c "$server_cpu" nginx -c "$work/nginx.conf" -p "$work" >/dev/null 2>&1 &
  server_pid=$!
  sleep 0.5
}
start_h2o() {
  port=$(free_port)
  cat >"$work/h2o.conf" <<H2O
num-threads: 1
listen:
  host: 127.0.0.1
  port: $port
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
  sleep 0.5
}

# Rounds over every row, so that a slow spell of the machine spreads over the contenders
# instead of landing on one; each cell is then the median of its rounds.
runs="$out/$stamp-$host-runs.csv"
echo "round,implementation,keepalive_100,keepalive_1000,pipelined_16x100" >"$runs"
total=$(( ${#rows[@]} * repeat ))
i=0
for round in $(seq 1 "$repeat"); do
  for row in "${rows[@]}"; do
    label=${row%%|*}; cmd=${row#*|}
    case "$cmd" in
      @nginx) start_nginx ;;
      @h2o) start_h2o ;;
      # shellcheck disable=SC2086
      *) start_server $cmd || continue ;;
    esac
    i=$((i + 1))
    printf '[%3d/%d] round %d  %-36s' "$i" "$total" "$round" "$label" >&2
    a=$(load 100); b=$(load 1000); c=$(load 100 pipeline)
    printf ' %9s %9s %10s req/s\n' "$a" "$b" "$c" >&2
    echo "$round,$label,$a,$b,$c" >>"$runs"
    stop_server
  done
done

# Medians per implementation, in row order.
python3 - "$runs" "$csv" <<'PY'
import csv, statistics, sys
runs, out = sys.argv[1], sys.argv[2]
cells, order = {}, []
with open(runs) as f:
    for r in csv.DictReader(f):
        name = r["implementation"]
        if name not in cells:
            cells[name] = {k: [] for k in ("keepalive_100", "keepalive_1000", "pipelined_16x100")}
            order.append(name)
        for k, v in cells[name].items():
            if r[k].strip().isdigit():
                v.append(int(r[k]))
with open(out, "w") as f:
    f.write("implementation,keepalive_100,keepalive_1000,pipelined_16x100\n")
    for name in order:
        c = cells[name]
        med = [str(int(statistics.median(c[k]))) if c[k] else "0" for k in c]
        f.write(",".join([name] + med) + "\n")
PY
echo
echo "medians of $repeat round(s) of ${seconds}s loads; every run: $runs"
bash bench/table.sh "$csv"
if command -v gnuplot >/dev/null; then
  bash bench/plot.sh "$csv" "$png" && echo "plot: $png"
fi
echo "csv: $csv"
