#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two builds of opreg-bench, A (before) and B (after), run in alternation in one script so
# that both see the same machine: A B A B ... for ROUNDS rounds, each round one pass of the
# benchmarks FILTER selects. Prints, per benchmark, the median of A, the median of B and
# B/A (above 1: B is faster; for memory rows, B/A of bytes); writes every run's JSON and the
# table under OUT.
set -euo pipefail

usage() {
    cat <<EOF
usage: bench/ab.sh [--rounds N] [--filter REGEX] [--min-time S] [--out DIR] A_BENCH B_BENCH

  A_BENCH, B_BENCH   two opreg-bench binaries (say, one built from main, one from a branch)
  --rounds N         alternations, A then B each round (default 5)
  --filter REGEX     --benchmark_filter for both (default: the registry and reactor rows)
  --min-time S       --benchmark_min_time per benchmark (default 0.2)
  --out DIR          where the JSON runs and table.md go (default: a new directory in /tmp)

The machine is shared and noisy: read the ratios, not the absolute numbers, and only
those that repeat.
EOF
}

rounds=5
filter='^(registry/[^/]+/(arm_fire|arm_cancel|cross_thread|mixed)(/real_time)?(/threads:(1|2))?$|registry/[^/]+/memory|reactor/)'
min_time=0.2
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --filter) filter="$2"; shift 2 ;;
        --min-time) min_time="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --*) echo "ab.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -eq 2 ] || { usage >&2; exit 2; }
a="$1"; b="$2"
for bin in "$a" "$b"; do
    [ -x "$bin" ] || { echo "ab.sh: $bin is not an executable" >&2; exit 2; }
done
[ -n "$out" ] || out=$(mktemp -d /tmp/opreg-ab.XXXXXX)
mkdir -p "$out"

for ((r = 1; r <= rounds; ++r)); do
    for side in A B; do
        bin=$a; [ "$side" = B ] && bin=$b
        echo "ab.sh: round $r/$rounds, $side" >&2
        "$bin" --benchmark_filter="$filter" --benchmark_min_time="$min_time" \
            --benchmark_format=json --benchmark_out="$out/$side-$r.json" >/dev/null
    done
done

python3 "$(dirname "${BASH_SOURCE[0]}")/summarize.py" ab "$out" "$rounds" | tee "$out/table.md"
echo "ab.sh: runs and table in $out" >&2
