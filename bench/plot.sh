#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Plots a demo CSV (bench/demo.sh) as grouped bars: req/s per implementation for 100 and
# 1000 keep-alive connections and 16-deep pipelining, and below it, where the CSV has them,
# the server's CPU microseconds per request for the same loads (lower is better).
# Columns are found by name, so older CSVs (rates only) still plot.
# Usage: bench/plot.sh FILE.csv OUT.png
set -euo pipefail
csv=$1
png=$2
loads=(keepalive_100 keepalive_1000 pipelined_16x100)
titles=("keep-alive, 100 connections" "keep-alive, 1000 connections" "16-deep pipelining, 100 connections")

# column NAME: its 1-based position in the CSV's header, or nothing.
column() { head -1 "$csv" | tr -d '\r' | tr , '\n' | grep -nxF "$1" | cut -d: -f1; }

# bars PREFIX: gnuplot's plot clauses for the three loads' columns named PREFIX<load>.
bars() {
  local i c clauses
  for i in 0 1 2; do
    c=$(column "$1${loads[$i]}")
    [ -n "$c" ] || { echo "plot: $csv has no column $1${loads[$i]}" >&2; return 1; }
    if [ "$i" = 0 ]; then clauses="\"$csv\" skip 1 using $c:xtic(1)"
    else clauses+=", \"\" skip 1 using $c"; fi
    clauses+=" title \"${titles[$i]}\""
  done
  echo "$clauses"
}

rates=$(bars "")
cpu=""
[ -n "$(column server_cpu_us_per_req_keepalive_100)" ] && cpu=$(bars server_cpu_us_per_req_)
height=$([ -n "$cpu" ] && echo 1300 || echo 700)

gnuplot <<GP
set terminal pngcairo size 1400,$height font "sans,10" noenhanced
set output "$png"
set datafile separator ","
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -35 scale 0
# room on the right for the last label, which slants past the last bar
set rmargin 14
set logscale y
set grid ytics
set key top left
$([ -n "$cpu" ] && echo 'set multiplot layout 2,1')
set title "opreg-httpd: requests per second by implementation (server on 1 core, wrk on the other)"
set ylabel "requests per second"
plot $rates
$([ -n "$cpu" ] && printf '%s\n' \
  'set title "server CPU microseconds per request over the same runs (lower is better)"' \
  'set ylabel "CPU us per request"' \
  "plot $cpu" \
  'unset multiplot')
GP
