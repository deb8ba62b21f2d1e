#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prints a demo CSV as the table the original analysis used, with ratios to the baseline
# (the first "opreg <strategy>" row: bench/demo.sh writes the strategies in opreg-httpd
# --list's order, the baseline first), to nginx and to the epoll floor (keep-alive 100
# connections; pipelined in brackets). Where the CSV has the CPU columns (demo runs since
# they were added), the server's CPU microseconds per request stand beside the rates with
# the same ratios, and wrk's beside them; a rate wrk's CPU shows to be the client's limit is
# starred. Columns are found by name, so older CSVs still print (rates only).
# Usage: bench/table.sh FILE.csv
set -euo pipefail
export LC_ALL=C
awk -F, '
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i
          have_cpu = ("server_cpu_us_per_req_keepalive_100" in col); next }
function get(name) { return (name in col) ? $(col[name]) : "" }
{ n = NR; name[n] = $1
  a[n] = get("keepalive_100"); b[n] = get("keepalive_1000"); c[n] = get("pipelined_16x100")
  sa[n] = get("server_cpu_us_per_req_keepalive_100"); sb[n] = get("server_cpu_us_per_req_keepalive_1000")
  sc[n] = get("server_cpu_us_per_req_pipelined_16x100")
  wa[n] = get("wrk_cpu_us_per_req_keepalive_100"); wb[n] = get("wrk_cpu_us_per_req_keepalive_1000")
  wc[n] = get("wrk_cpu_us_per_req_pipelined_16x100")
  if (base == "" && $1 ~ /^opreg /) { base = $1; sub(/^opreg /, "", base); ref["base"] = n }
  if ($1 ~ /^nginx/) ref["nginx"] = n
  if ($1 == "floor (bare epoll)") ref["floor"] = n }
function ratio(x, y) { return (y != "" && x != "" && y > 0 && x > 0) ? sprintf("%.2fx", x / y) : "-" }
function ratios(i, r, x, y) { return (r in ref) ? ratio(x[i], x[ref[r]]) " (" ratio(y[i], y[ref[r]]) ")" : "- (-)" }
function us(x) { return x == "" ? "-" : sprintf("%.2f", x) }
# A rate wrk could not have gone much beyond: its CPU per request times the rate fills 90%
# of its one core.
function rate(r, w) { if (w != "" && w * r >= 0.9e6) { starred = 1; return r "*" } return sprintf("%d", r) }
END {
  if (base == "") base = "baseline"
  if (!have_cpu) {
    printf "\n| implementation | req/s keep-alive 100 | req/s 1000 conns | req/s pipelined 16 | vs %s | vs nginx | vs floor |\n", base
    printf "|---|---:|---:|---:|---:|---:|---:|\n"
    for (i = 2; i <= n; i++)
      printf "| %s | %d | %d | %d | %s | %s | %s |\n", name[i], a[i], b[i], c[i],
        ratios(i, "base", a, c), ratios(i, "nginx", a, c), ratios(i, "floor", a, c)
    printf "\nratios: keep-alive 100 connections (16-deep pipelining in brackets)\n"
    exit
  }
  printf "\n| implementation | req/s keep-alive 100 | req/s 1000 conns | req/s pipelined 16 "
  printf "| CPU us/req keep-alive 100 | CPU us/req 1000 conns | CPU us/req pipelined 16 | wrk us/req 100 / 1000 / pipelined "
  printf "| req/s vs %s | req/s vs nginx | req/s vs floor | CPU vs %s | CPU vs nginx | CPU vs floor |\n", base, base
  printf "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
  for (i = 2; i <= n; i++)
    printf "| %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s | %s | %s | %s | %s | %s |\n", name[i],
      rate(a[i], wa[i]), rate(b[i], wb[i]), rate(c[i], wc[i]), us(sa[i]), us(sb[i]), us(sc[i]),
      us(wa[i]), us(wb[i]), us(wc[i]),
      ratios(i, "base", a, c), ratios(i, "nginx", a, c), ratios(i, "floor", a, c),
      ratios(i, "base", sa, sc), ratios(i, "nginx", sa, sc), ratios(i, "floor", sa, sc)
  printf "\nCPU us/req: the server'\''s CPU time (all its threads and processes) over the wrk run, per request;\n"
  printf "wrk us/req: the load generator'\''s. req/s ratios: higher is better; CPU ratios: lower is better.\n"
  printf "Ratios: keep-alive 100 connections (16-deep pipelining in brackets).\n"
  if (starred) {
    printf "* wrk'\''s CPU per request times the rate fills 90%% or more of its core: wrk, not the server,\n"
    printf "  limited that rate; compare CPU per request instead.\n"
  }
}' "$1"
