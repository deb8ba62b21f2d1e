#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# ctest http.tools: the external clients http.clients drives (curl, wrk, h2load) are installed
# and run. A missing one is a skip here (exit 77), named, so that ctest's own count shows what
# http.clients, which reports a skip line per check it could not run and passes, left out.
# One that is installed but does not run is a failure.
missing=""
for tool in curl wrk h2load; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    missing="$missing $tool"
    continue
  fi
  case $tool in
    wrk) out=$(wrk -v 2>&1) ;;       # prints its version, exits 1
    *) out=$("$tool" --version 2>&1) || { echo "FAIL: $tool --version: $out"; exit 1; } ;;
  esac
  echo "$out" | grep -qi "$tool" || { echo "FAIL: $tool does not say what it is: $out"; exit 1; }
  echo "PASS: $tool: $(echo "$out" | head -n 1)"
done
if [ -n "$missing" ]; then
  echo "SKIPPED: not installed:$missing (cmake/deps.sh installs them): http.clients skips the checks that drive them"
  exit 77
fi
