#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Resident memory per idle keep-alive connection: opreg-httpd (async with three strategies,
and thread-per-conn) beside nginx (one worker).

Starts each server on 127.0.0.1, opens N connections that each send one request, read the
answer and then stay open and idle, and reports (RSS with N idle connections - RSS before)
/ N, from /proc/PID/status. Kernel socket buffers are not in a process's RSS, for either.

usage: bench/idle_memory.py [--connections 5000] [--httpd build/release/bin/opreg-httpd]
"""
import argparse
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# RSS is read this long after the connections are made and answered (and before, after the
# start), so that the server's allocations for them have happened.
SETTLE_S = 0.5
# A server that does not accept within this long after its start is an error.
START_TIMEOUT_S = 5.0
# nginx's per-worker connection limit: the open-files limit here (ulimit -n), above any
# --connections this machine can open.
NGINX_WORKER_CONNECTIONS = 20000


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(proc, port):
    """Returns once the server on 127.0.0.1:port answers a request (for nginx: once its
    worker runs); raises when proc exits first or START_TIMEOUT_S passes."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before answering")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                if c.recv(4096).startswith(b"HTTP/1.1 "):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args[0]} did not answer on port {port} within {START_TIMEOUT_S} s")


def measure(pid, port, n):
    time.sleep(SETTLE_S)
    before = rss_kib(pid)
    conns = []
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        conns.append(c)
    for c in conns:
        c.settimeout(5)
        got = b""
        while b"Hello, World!" not in got:
            got += c.recv(4096)  # one response: under 200 bytes
    time.sleep(SETTLE_S)
    after = rss_kib(pid)
    for c in conns:
        c.close()
    return before, after, (after - before) * 1024 / n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=5000)
    ap.add_argument("--httpd", default="build/release/bin/opreg-httpd")
    a = ap.parse_args()
    # Each connection is an fd here and one in the server (which inherits this limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 2 * a.connections + 100) if hard != resource.RLIM_INFINITY else 2 * a.connections + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < a.connections + 100:
        ap.error(f"--connections {a.connections} needs more open files than the hard limit {hard}")
    rows = []
    # The async model with three strategies, then the thread-per-connection model (a thread,
    # and its stack's touched pages, per connection).
    for label, args in [(f"opreg-httpd {reg}", ["--registry", reg])
                        for reg in ("slot_array", "mutex_map", "mpsc_queue")] + \
                       [("opreg-httpd thread-per-conn", ["--model", "thread-per-conn"])]:
        p = subprocess.Popen([a.httpd, "--port", "0", *args], stdout=subprocess.PIPE, text=True)
        port = int(re.search(r":(\d+)", p.stdout.readline()).group(1))
        print(f"{label}: {a.connections} connections...", file=sys.stderr, flush=True)
        rows.append((label,) + measure(p.pid, port, a.connections))
        p.terminate()
        p.wait()
    if shutil.which("nginx"):
        work = tempfile.mkdtemp()
        port = free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 1; daemon off; error_log {work}/e.log; pid {work}/n.pid;
events {{ worker_connections {NGINX_WORKER_CONNECTIONS}; }}
http {{ access_log off; keepalive_timeout 300s; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "Hello, World!"; }} }} }}
""")
        p = subprocess.Popen(["nginx", "-c", conf, "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(p, port)
        worker = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        rows.append(("nginx (1 worker)",) + measure(int(worker[0]) if worker else p.pid, port, a.connections))
        p.terminate()
        p.wait()
    print(f"{a.connections} idle keep-alive connections, RSS from /proc/PID/status\n")
    print("| server | RSS before (KiB) | RSS with the connections (KiB) | bytes per idle connection |")
    print("|---|---:|---:|---:|")
    for name, before, after, per in rows:
        print(f"| {name} | {before} | {after} | {per:.0f} |")


if __name__ == "__main__":
    main()
