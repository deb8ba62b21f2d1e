#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# How opreg-httpd scales with reactor threads. For N = 1 .. max (max = cores / 2, so that
# the server and wrk get N cores each): every strategy (`opreg-httpd --list`) serves with
# --threads N pinned to cores [0, N) while wrk with N threads, pinned to cores [N, 2N), loads
# it (100 keep-alive connections). Records req/s and the server's CPU per request (utime +
# stime from /proc/PID/stat over the wrk window, divided by the requests wrk completed;
# "per core" divides that by N). wrk often saturates its cores before the server does
# (bench/results/2026-11-29-vm-scale.md), so compare servers by CPU per request more than by
# req/s. Then opreg-bench's cross_thread scenario, one thread arming and another
# dispatching, at the thread counts opreg-bench registers (1, 2, 4, 8) up to 2N.
#
# Writes <out>/<date>-<host>-scale.csv (strategy,threads,req_s,server_cpu_us_per_req,
# server_cpu_us_per_req_per_core) and <date>-<host>-scale-cross-thread.csv
# (strategy,threads,ops_s: medians of 3 repetitions) and prints both as tables. Progress
# goes to stderr. Not run by CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
  cat <<'USAGE'
usage: bench/scale.sh [--seconds S] [--max-threads N] [--build DIR] [--out DIR]

  --seconds S       wrk duration of each load (default 2)
  --max-threads N   largest reactor thread count (default and upper bound: cores / 2)
  --build DIR       where opreg-httpd and opreg-bench are (default build/release/bin)
  --out DIR         where the CSV files go (default bench/results)
USAGE
}

# A server that does not answer within this long after its start is reported and skipped.
readonly start_timeout_s=5
readonly stop_timeout_s=10
readonly connections=100
# Beyond wrk's -d: how long a wrk or opreg-bench run may overrun before it is killed.
readonly overrun_s=20
# The registered thread counts of opreg-bench's contended scenarios (registry_bench.cpp,
# ThreadRange(1, 8)).
readonly bench_threads=(1 2 4 8)

# Set by parse_args.
seconds=2 max_threads="" bin=build/release/bin out=bench/results
# Set by setup.
cores=1 clk_tck=100 host="" stamp="" work=""
# The server running now: its pid and the port it serves on.
server_pid="" port=""

die() { echo "scale: $*" >&2; exit 1; }
note() { echo "$*" >&2; }

is_count() { case "$1" in ''|*[!0-9]*|0) return 1 ;; esac; }

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --seconds|--max-threads|--build|--out)
        [ $# -ge 2 ] || { echo "scale: $1 wants a value" >&2; usage >&2; exit 2; } ;;
    esac
    case "$1" in
      --seconds) seconds=$2; shift 2 ;;
      --max-threads) max_threads=$2; shift 2 ;;
      --build) bin=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) echo "scale: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
  done
  is_count "$seconds" || { echo "scale: --seconds wants a positive whole number" >&2; exit 2; }
  if [ -n "$max_threads" ] && ! is_count "$max_threads"; then
    echo "scale: --max-threads wants a positive count" >&2; exit 2
  fi
}

check_tools() {
  local tool
  for tool in wrk taskset curl python3 timeout; do
    command -v "$tool" >/dev/null || die "$tool is missing (cmake/deps.sh installs it)"
  done
  [ -x "$bin/opreg-httpd" ] || die "no $bin/opreg-httpd; build it (make build, or --build DIR)"
}

setup() {
  local cpu_model limit
  cores=$(nproc)
  limit=$(( cores / 2 ))
  [ "$limit" -ge 1 ] || die "$cores core(s): the server and wrk need one each at least"
  if [ -z "$max_threads" ]; then
    max_threads=$limit
  elif [ "$max_threads" -gt "$limit" ]; then
    note "scale: --max-threads $max_threads needs $((2 * max_threads)) cores; $cores here, so $limit"
    max_threads=$limit
  fi
  clk_tck=$(getconf CLK_TCK)
  host=$(hostname -s 2>/dev/null || hostname)
  stamp=$(date +%Y-%m-%d)
  mkdir -p "$out"
  work=$(mktemp -d)
  trap 'stop_server; rm -rf "$work"' EXIT
  cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  echo "machine: $host, $cores cores ($cpu_model), $(uname -sr)"
  echo "threads: 1 to $max_threads (cores / 2 = $limit: server on cores [0, N), wrk on [N, 2N))"
  if [ "$max_threads" = 1 ]; then
    echo "(only N=1 on $cores cores: one core for the server, one for wrk)"
  fi
  echo "load: wrk -c $connections -d ${seconds}s per run"
  echo
}

# cpu_list FIRST COUNT: "FIRST-LAST" for taskset.
cpu_list() { echo "$1-$(( $1 + $2 - 1 ))"; }

# free_port, wait_port
source bench/ports.sh

# start_server STRATEGY N: opreg-httpd with N reactor threads on cores [0, N); sets
# server_pid and port once it answers.
start_server() {
  local log="$work/server.log"
  port=$(free_port)
  taskset -c "$(cpu_list 0 "$2")" "$bin/opreg-httpd" --registry "$1" --threads "$2" \
    --port "$port" >"$log" 2>&1 &
  server_pid=$!
  wait_port "$server_pid" "$port" && return 0
  echo "scale: opreg-httpd --registry $1 --threads $2 did not answer on port $port" >&2
  cat "$log" >&2
  stop_server
  return 1
}

# SIGTERM lets opreg-httpd finish what is in flight (up to 5 s); one that outlives
# stop_timeout_s is killed.
stop_server() {
  [ -n "$server_pid" ] || return 0
  local deadline=$((SECONDS + stop_timeout_s))
  kill -TERM "$server_pid" 2>/dev/null || true
  while kill -0 "$server_pid" 2>/dev/null && [ "$SECONDS" -le "$deadline" ]; do sleep 0.05; done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# cpu_ticks PID: utime + stime of every thread of PID, in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the parenthesised command name, which may hold spaces).
cpu_ticks() {
  local stat rest
  stat=$(<"/proc/$1/stat")
  rest=${stat##*) }
  local -a f
  read -ra f <<<"$rest"
  echo $(( f[11] + f[12] ))
}

# load N -> "REQ_S REQUESTS CPU_TICKS" on stdout: wrk with N threads on cores [N, 2N), and
# the server's CPU over the same window.
load() {
  local n=$1 before after report req_s requests
  before=$(cpu_ticks "$server_pid")
  report=$(timeout $((seconds + overrun_s)) taskset -c "$(cpu_list "$n" "$n")" \
             wrk -t"$n" -c"$connections" -d"${seconds}s" "http://127.0.0.1:$port/" 2>&1) || true
  after=$(cpu_ticks "$server_pid")
  req_s=$(awk '/^Requests\/sec/ {print $2}' <<<"$report")
  requests=$(awk '/ requests in / {print $1}' <<<"$report")
  if grep -qE 'Non-2xx|Socket errors' <<<"$report"; then
    grep -E 'Non-2xx|Socket errors' <<<"$report" | sed 's/^/scale: wrk: /' >&2
  fi
  if [ -z "$req_s" ] || [ -z "$requests" ] || [ "$requests" = 0 ]; then
    echo "scale: wrk gave no result:" >&2
    echo "$report" >&2
    return 1
  fi
  echo "$req_s $requests $((after - before))"
}

# serve_rows CSV: every strategy at every N, one CSV line each.
serve_rows() {
  local csv=$1 strategies list n r i=0 total result req_s requests ticks us per_core
  if ! list=$("$bin/opreg-httpd" --list) || [ -z "$list" ]; then
    die "$bin/opreg-httpd --list gave no strategies"
  fi
  mapfile -t strategies <<<"$list"
  total=$(( ${#strategies[@]} * max_threads ))
  echo "strategy,threads,req_s,server_cpu_us_per_req,server_cpu_us_per_req_per_core" >"$csv"
  for n in $(seq 1 "$max_threads"); do
    for r in "${strategies[@]}"; do
      i=$((i + 1))
      printf '[%2d/%d] %-12s threads %d ' "$i" "$total" "$r" "$n" >&2
      start_server "$r" "$n" || { note "skipped"; continue; }
      if ! result=$(load "$n"); then
        stop_server
        note "no result"
        continue
      fi
      stop_server
      read -r req_s requests ticks <<<"$result"
      # ticks / clk_tck seconds, in microseconds, per request (and per server core).
      read -r us per_core < <(awk -v t="$ticks" -v hz="$clk_tck" -v q="$requests" -v n="$n" \
        'BEGIN { us = t * 1e6 / hz / q; printf "%.2f %.2f\n", us, us / n }')
      printf '%10.0f req/s  %6s us CPU/req\n' "$req_s" "$us" >&2
      echo "$r,$n,${req_s%.*},$us,$per_core" >>"$csv"
    done
  done
}

# cross_thread_rows CSV: opreg-bench's cross_thread at the registered counts up to 2N,
# pinned to the cores those counts use; medians of 3 repetitions.
cross_thread_rows() {
  local csv=$1 counts=() t json alternatives
  if [ ! -x "$bin/opreg-bench" ]; then
    note "scale: no $bin/opreg-bench: cross_thread not measured"
    return 1
  fi
  for t in "${bench_threads[@]}"; do
    [ "$t" -le $(( 2 * max_threads )) ] && counts+=("$t")
  done
  alternatives=$(IFS='|'; echo "${counts[*]}")
  note "opreg-bench cross_thread, threads ${counts[*]} (3 repetitions) ..."
  json="$work/cross_thread.json"
  timeout $(( overrun_s * 10 )) taskset -c "$(cpu_list 0 $(( 2 * max_threads )))" \
    "$bin/opreg-bench" --benchmark_filter="^registry/[a-z_]+/cross_thread/real_time/threads:($alternatives)\$" \
    --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_format=json >"$json" 2>"$work/bench.log" || {
      note "scale: opreg-bench failed:"; cat "$work/bench.log" >&2; return 1; }
  python3 - "$json" >"$csv" <<'PY'
import json, re, sys
print("strategy,threads,ops_s")
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("aggregate_name") != "median":
        continue
    m = re.match(r"registry/([^/]+)/cross_thread/real_time/threads:(\d+)", b["run_name"])
    if m:
        print(f"{m.group(1)},{m.group(2)},{b['items_per_second']:.0f}")
PY
}

# table CSV: a CSV as a markdown table.
table() {
  awk -F, 'NR == 1 { printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n|"
                     for (i = 1; i <= NF; i++) printf "---|"; printf "\n"; next }
           { printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$1"
}

main() {
  parse_args "$@"
  check_tools
  setup
  local csv="$out/$stamp-$host-scale.csv" cross="$out/$stamp-$host-scale-cross-thread.csv"
  serve_rows "$csv"
  echo "opreg-httpd, wrk -c $connections -d ${seconds}s:"
  table "$csv"
  echo "csv: $csv"
  if cross_thread_rows "$cross"; then
    echo
    echo "opreg-bench cross_thread (ops ended per second, median of 3):"
    table "$cross"
    echo "csv: $cross"
  fi
}

main "$@"
