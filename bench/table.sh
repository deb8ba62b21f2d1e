#!/usr/bin/env bash
# Prints a demo CSV as the table the original analysis used, with ratios to the baseline
# (the first "opreg <strategy>" row: bench/demo.sh writes the strategies in opreg-httpd
# --list's order, the baseline first), to nginx and to the floor (keep-alive 100
# connections; pipelined in brackets). Usage: bench/table.sh FILE.csv
set -euo pipefail
awk -F, '
NR == 1 { next }
{ name[NR] = $1; a[NR] = $2; b[NR] = $3; c[NR] = $4; n = NR
  if (base == "" && $1 ~ /^opreg /) { base = $1; sub(/^opreg /, "", base); base_a = $2; base_c = $4 }
  if ($1 ~ /^nginx/) { ng_a = $2; ng_c = $4 }
  if ($1 ~ /^floor/) { fl_a = $2; fl_c = $4 } }
function ratio(x, y) { return (y > 0 && x > 0) ? sprintf("%.2fx", x / y) : "-" }
END {
  if (base == "") base = "baseline"
  printf "\n| implementation | req/s keep-alive 100 | req/s 1000 conns | req/s pipelined 16 | vs %s | vs nginx | vs floor |\n", base
  printf "|---|---:|---:|---:|---:|---:|---:|\n"
  for (i = 2; i <= n; i++)
    printf "| %s | %d | %d | %d | %s (%s) | %s (%s) | %s (%s) |\n", name[i], a[i], b[i], c[i],
      ratio(a[i], base_a), ratio(c[i], base_c), ratio(a[i], ng_a), ratio(c[i], ng_c),
      ratio(a[i], fl_a), ratio(c[i], fl_c)
  printf "\nratios: keep-alive 100 connections (16-deep pipelining in brackets)\n"
}' "$1"
