#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the HTTP parser's libFuzzer targets (clang++, ASan + UBSan) into build/fuzz and
# runs each for a bounded time, seeded with h2o's HTTP/1 corpus and dictionary when the
# fixtures are there. Exits non-zero when a target crashes or breaks an invariant; the
# input that did it is left in build/fuzz/artifacts/<target>/.
#
#   FUZZ_SECONDS        seconds per target (default 20)
#   OPREG_FIXTURES_DIR  fixtures root (default: the shared/ folder beside the repository)
#
# The corpus lives in build/fuzz/corpus/<target>/ (seeds copied in, never written to the
# fixtures) and grows from run to run; delete it to start over. Without fixtures the run
# uses build/fuzz/corpus-unseeded/<target>/, emptied first.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
fixtures=${OPREG_FIXTURES_DIR:-$repo/../shared/fixtures}
seconds=${FUZZ_SECONDS:-20}
build=$repo/build/fuzz
seeds=$fixtures/http/h2o-http1-corpus
dict=$fixtures/http/h2o-http.dict

cmake -S "$repo/integrations/http/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$build" --parallel 1

dict_args=()
corpus_root=$build/corpus
if [[ -d $seeds && -f $dict ]]; then
  dict_args=(-dict="$dict")
else
  # Still a real run, from nothing: a corpus of its own, emptied first, so that a grown
  # seeded corpus does not hide the missing fixtures.
  echo "fuzz: no fixtures at $fixtures/http (set OPREG_FIXTURES_DIR): empty corpus, no dictionary"
  corpus_root=$build/corpus-unseeded
  rm -rf "$corpus_root"
fi

targets=(fuzz_parse_head fuzz_split_invariance)
# Each target on a core of its own, side by side (libFuzzer runs one process, one thread).
for target in "${targets[@]}"; do
  corpus=$corpus_root/$target
  artifacts=$build/artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  if [[ -d $seeds && -f $dict ]]; then cp -n "$seeds"/* "$corpus"/; fi
  (
    rc=0
    "$build/$target" "$corpus" "${dict_args[@]}" -max_total_time="$seconds" -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" >"$build/$target.log" 2>&1 || rc=$?
    echo "$rc" >"$build/$target.rc"
  ) &
done
wait

failed=0
for target in "${targets[@]}"; do
  corpus=$corpus_root/$target
  artifacts=$build/artifacts/$target
  log=$build/$target.log
  rc=$(cat "$build/$target.rc")
  # A run that crashes early prints none of these; they must not stop the script.
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
  kept=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
  if [[ $rc -eq 0 ]]; then
    echo "$target: ${execs:-?} execs in ${seconds}s, corpus ${kept:-?} inputs in use" \
         "($(find "$corpus" -type f | wc -l) files), coverage ${cov:-?} edges, no findings"
  else
    failed=1
    echo "$target: FAILED (exit $rc) after ${execs:-?} execs; log $log, input in $artifacts/"
    grep -m 1 -E 'ERROR: |invariant failed|runtime error' "$log" || tail -n 20 "$log" || true
  fi
done
exit $failed
