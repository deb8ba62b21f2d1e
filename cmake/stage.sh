#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The minutes each stage of `make test` / `make check` takes, kept in build/stages.tsv.
#
#   stage.sh reset              forget the stages of an earlier run
#   stage.sh run NAME CMD...    run CMD as stage NAME ("<preset> <phase>", e.g. "tsan build",
#                               or one word, e.g. "install"), record its seconds and status;
#                               on failure, print the table so far, then exit with CMD's status
#   stage.sh table              print the table: minutes per preset and phase, and the total
#   stage.sh skip NAME WHY      record stage NAME as skipped, and why
#   stage.sh summary            one line over every stage: tests passed, failed and skipped,
#                               naming each skip (a skipped stage, a skipped ctest test, and
#                               the checks a passing test reports skipped in its own
#                               "N passed, N failed, N skipped" line); exit 1 on a failure
#
# Every stage's output is also kept in build/logs/<stage>.log, and test stages (ctest) write
# JUnit XML to build/junit/<preset>.xml (the Makefile asks): the summary reads both.
# OPREG_STAGES names another file.
set -uo pipefail
file=${OPREG_STAGES:-build/stages.tsv}
logs=$(dirname "$file")/logs
junit=$(dirname "$file")/junit

summary() {
  python3 - "$file" "$logs" "$junit" <<'PY'
import glob, os, re, sys
import xml.etree.ElementTree as ET
stages, logs, junit = sys.argv[1:4]
passed = failed = skipped = 0
skips, fails = [], []
line = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped", re.M)
gtest_skip = re.compile(r"^\[  SKIPPED \] (\S+)$", re.M)
def inner(name, text):
    text = text or ""
    found = line.findall(text)
    if found and int(found[-1][2]) > 0:
        p, f, k = found[-1]
        skips.append(f"{name}: {k} of its {int(p) + int(f) + int(k)} checks skipped")
    cases = sorted(set(gtest_skip.findall(text)))  # a GoogleTest binary's skipped cases
    if cases:
        skips.append(f"{name}: GoogleTest skipped {', '.join(cases)}")
for row in open(stages, encoding="utf-8") if os.path.exists(stages) else []:
    name, _, status = row.rstrip("\n").split("\t")
    if status.startswith("skipped"):
        skipped += 1
        skips.append(f"stage {name} ({status[len('skipped: '):]})")
for path in sorted(glob.glob(os.path.join(junit, "*.xml"))):
    preset = os.path.basename(path)[:-4]
    for case in ET.parse(path).getroot().iter("testcase"):
        status = case.get("status")
        name = f"{preset}: {case.get('name')}"
        if status == "run":
            passed += 1
            inner(name, case.findtext("system-out"))
        elif status in ("notrun", "disabled"):
            skipped += 1
            why = case.find("skipped")
            out = (case.findtext("system-out") or "").strip().splitlines()
            skips.append(name + (f" ({out[-1][:120]})" if out else ""))
        else:
            failed += 1
            fails.append(name)
# Stages that run checks outside ctest (the installed package, the fuzzer) count as one test.
for log in ("install", "fuzz"):
    path = os.path.join(logs, f"{log}.log")
    if os.path.exists(path):
        passed += 1
        inner(log, open(path, encoding="utf-8", errors="replace").read())
print(f"{passed} passed, {failed} failed, {skipped} skipped" +
      (f"; failed: {'; '.join(fails)}" if fails else "") +
      (f"; skipped: {'; '.join(skips)}" if skips else "; nothing skipped"))
sys.exit(1 if failed else 0)
PY
}

table() {
  [ -s "$file" ] || { echo "(no stages recorded in $file)"; return 0; }
  awk -F '\t' '
    { split($1, w, " "); row = w[1]; col = (2 in w) ? w[2] : "test"
      if (!(row in seen)) { seen[row] = 1; rows[++n] = row }
      if (!(col in cseen)) { cseen[col] = 1; cols[++m] = col }
      t[row, col] += $2; total += $2
      if ($3 != "ok" && $3 !~ /^skipped/) bad[row, col] = 1 }
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
    rm -rf "$logs" "$junit"
    ;;
  skip)
    [ $# -ge 3 ] || { echo "usage: $0 skip NAME WHY" >&2; exit 2; }
    mkdir -p "$(dirname "$file")"
    printf '%s\t0\tskipped: %s\n' "$2" "$3" >>"$file"
    echo "== $2: SKIPPED: $3 =="
    ;;
  summary)
    summary
    ;;
  run)
    [ $# -ge 3 ] || { echo "usage: $0 run NAME CMD..." >&2; exit 2; }
    name=$2
    shift 2
    mkdir -p "$(dirname "$file")"
    mkdir -p "$logs"
    start=$EPOCHREALTIME
    "$@" 2>&1 | tee "$logs/${name// /-}.log"
    rc=${PIPESTATUS[0]}
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
    echo "usage: $0 reset | run NAME CMD... | skip NAME WHY | table | summary" >&2
    exit 2
    ;;
esac
