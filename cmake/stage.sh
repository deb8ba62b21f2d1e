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
#   stage.sh summary [TITLE]    one line over every stage: tests passed, failed and skipped
#                               ("== TITLE: ... ==" with a title), then each failure and each
#                               skip, grouped by reason: a skipped stage, skipped ctest tests,
#                               and the checks a passing test reports skipped in its own
#                               "N passed, N failed, N skipped" line; exit 1 on a failure
#
# Every stage's output is also kept in build/logs/<stage>.log, and test stages (ctest) write
# JUnit XML to build/junit/<preset>.xml (the Makefile asks): the summary reads both.
# OPREG_STAGES names another file.
set -uo pipefail
file=${OPREG_STAGES:-build/stages.tsv}
logs=$(dirname "$file")/logs
junit=$(dirname "$file")/junit

summary() {
  python3 - "$file" "$logs" "$junit" "${1:-}" <<'PY'
import collections, glob, os, re, sys
import xml.etree.ElementTree as ET
stages, logs, junit, title = sys.argv[1:5]
passed = failed = skipped = 0
fails, notes = [], []
groups = collections.OrderedDict()  # (preset, reason) -> names of the tests skipped for it
line = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped", re.M)
gtest_reason = re.compile(r": Skipped\n(.+)")  # GTEST_SKIP()'s message, on the next line
gtest_skip = re.compile(r"^\[  SKIPPED \] (\S+)$", re.M)
def inner(name, text):
    text = text or ""
    found = line.findall(text)
    if found and int(found[-1][2]) > 0:
        p, f, k = found[-1]
        notes.append(f"{name}: {k} of its {int(p) + int(f) + int(k)} checks skipped")
    cases = sorted(set(gtest_skip.findall(text)))  # a sharded GoogleTest binary's skips
    if cases:
        notes.append(f"{name}: GoogleTest skipped {len(cases)} cases ({', '.join(cases[:3])}"
                     f"{', ...' if len(cases) > 3 else ''})")
for row in open(stages, encoding="utf-8") if os.path.exists(stages) else []:
    name, _, status = row.rstrip("\n").split("\t")
    if status.startswith("skipped"):
        skipped += 1
        groups.setdefault(("stage", status[len("skipped: "):]), []).append(name)
for path in sorted(glob.glob(os.path.join(junit, "*.xml"))):
    preset = os.path.basename(path)[:-4]
    for case in ET.parse(path).getroot().iter("testcase"):
        status, name = case.get("status"), case.get("name")
        out = case.findtext("system-out") or ""
        if status == "run":
            passed += 1
            inner(f"{preset}: {name}", out)
        elif status in ("notrun", "disabled"):
            skipped += 1
            why = gtest_reason.search(out)
            lines = [l for l in out.strip().splitlines() if not l.startswith("[")]
            reason = why.group(1).strip() if why else (lines[-1].strip() if lines else "no reason given")
            groups.setdefault((preset, reason[:160]), []).append(re.sub(r"<.*", "", name))
        else:
            failed += 1
            fails.append(f"{preset}: {name}")
# Stages that run checks outside ctest (the installed package, the fuzzer) count as one test.
for log in ("install", "fuzz"):
    path = os.path.join(logs, f"{log}.log")
    if os.path.exists(path):
        passed += 1
        inner(log, open(path, encoding="utf-8", errors="replace").read())
counts = f"{passed} passed, {failed} failed, {skipped} skipped"
print(f"== {title}: {counts} ==" if title else counts)
for f in fails:
    print(f"  failed: {f}")
for (where, reason), names in groups.items():
    uniq = list(dict.fromkeys(names))
    shown = ", ".join(uniq[:3]) + (f" and {len(uniq) - 3} more" if len(uniq) > 3 else "")
    print(f"  skipped: {where}: {len(names)} x {reason} ({shown})")
for n in notes:
    print(f"  skipped inside a passing test: {n}")
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
    summary "${2:-}"
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
