#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The minutes each stage of `make test` / `make check` takes, kept in build/stages.tsv.
#
#   stage.sh reset              forget the stages of an earlier run
#   stage.sh run NAME CMD...    run CMD as stage NAME ("<preset> <phase>", e.g. "tsan build",
#                               or one word, e.g. "install"), record its seconds and status;
#                               on failure, print the table so far, then exit with CMD's status
#   stage.sh table              print the table: minutes per preset and phase, and the total
#
# OPREG_STAGES names another file.
set -uo pipefail
file=${OPREG_STAGES:-build/stages.tsv}

table() {
  [ -s "$file" ] || { echo "(no stages recorded in $file)"; return 0; }
  awk -F '\t' '
    { split($1, w, " "); row = w[1]; col = (2 in w) ? w[2] : "test"
      if (!(row in seen)) { seen[row] = 1; rows[++n] = row }
      if (!(col in cseen)) { cseen[col] = 1; cols[++m] = col }
      t[row, col] += $2; total += $2
      if ($3 != "ok") bad[row, col] = 1 }
    END {
      printf "%-12s", "minutes"; for (j = 1; j <= m; j++) printf "%11s", cols[j]; printf "%11s\n", "total"
      for (i = 1; i <= n; i++) {
        printf "%-12s", rows[i]; sum = 0
        for (j = 1; j <= m; j++) {
          if ((rows[i], cols[j]) in t) {
            printf "%10.1f%s", t[rows[i], cols[j]] / 60, ((rows[i], cols[j]) in bad) ? "!" : " "
            sum += t[rows[i], cols[j]]
          } else printf "%11s", "-"
        }
        printf "%11.1f\n", sum / 60
      }
      printf "%-12s%" (11 * m) "s%11.1f\n", "all stages", "", total / 60
      for (k in bad) { print "(! : the stage failed)"; break }
    }' "$file"
}

case "${1:-}" in
  reset)
    mkdir -p "$(dirname "$file")"
    : >"$file"
    ;;
  run)
    [ $# -ge 3 ] || { echo "usage: $0 run NAME CMD..." >&2; exit 2; }
    name=$2
    shift 2
    mkdir -p "$(dirname "$file")"
    start=$EPOCHREALTIME
    "$@"
    rc=$?
    seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    printf '%s\t%s\t%s\n' "$name" "$seconds" "$([ $rc -eq 0 ] && echo ok || echo "exit $rc")" >>"$file"
    if [ $rc -ne 0 ]; then
      echo "== $name: FAILED (exit $rc) after $seconds s; the stages so far: =="
      table
    fi
    exit $rc
    ;;
  table)
    table
    ;;
  *)
    echo "usage: $0 reset | run NAME CMD... | table" >&2
    exit 2
    ;;
esac
