# SPDX-License-Identifier: Apache-2.0
# Sourced by bench/demo.sh and bench/scale.sh: a free loopback port, and waiting for a
# started server to answer on it. The caller sets start_timeout_s.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PID PORT: returns once the server on 127.0.0.1:PORT answers a request; fails
# when PID exits first or start_timeout_s passes.
wait_port() {
  local pid=$1 port=$2 deadline=$((SECONDS + start_timeout_s))
  while [ "$SECONDS" -le "$deadline" ]; do
    kill -0 "$pid" 2>/dev/null || return 1
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && return 0
    sleep 0.05
  done
  return 1
}
