#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The backend boundary of the kqueue configuration: the object files given (opreg's library,
# the sample server's) must not call anything only Linux has. libkqueue itself is Linux
# code and is not given. Prints each offending symbol with its object; exits 1 if any.
# usage: check_linux_symbols.sh ARCHIVE_OR_OBJECT...
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 ARCHIVE_OR_OBJECT..." >&2; exit 2; }
linux_only='^(epoll_[a-z0-9_]+|eventfd[a-z0-9_]*|accept4|io_uring_[a-z0-9_]+|__io_uring_[a-z0-9_]+|signalfd[0-9]*|timerfd_[a-z0-9_]+|inotify_[a-z0-9_]+|pipe2|dup3|splice|sendfile[0-9]*|memfd_create)(@.*)?$'
found=0
checked=0
for f in "$@"; do
  [ -e "$f" ] || { echo "missing: $f" >&2; exit 2; }
  # nm -A: "archive:object: U symbol" per undefined symbol
  while read -r where kind sym; do
    [ "$kind" = U ] || continue
    if [[ "$sym" =~ $linux_only ]]; then
      echo "Linux-only symbol: $sym in ${where%:}"
      found=1
    fi
  done < <(nm -A -u "$f" 2>/dev/null | awk '{ if (NF == 3) print $1, $2, $3; else print $1, "U", $2 }')
  checked=$((checked + $(nm -A -u "$f" 2>/dev/null | wc -l)))
done
echo "checked $checked undefined symbol references in $# file(s)"
[ "$checked" -gt 0 ] || { echo "no undefined symbols at all: not a real check" >&2; exit 1; }
exit "$found"
