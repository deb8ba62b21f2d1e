#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""opreg-httpd against real clients, on 127.0.0.1 only.

Starts the server once per registry strategy (the names `opreg-httpd --list` prints), once
with --model thread-per-conn, once with --backend io_uring and, with lighter checks, under
the diagnosis flags; and checks it with curl, Python's http.client, wrk, h2load
and raw sockets: keep-alive, chunked upload, pipelining, the limits and error statuses
(each error response closes the connection), slow clients that must not delay others,
the connection limit, timeouts, and a graceful SIGTERM. Every load run is bounded in
count and time. Prints one line per check, then "N passed, N failed, N skipped"; exits
non-zero on any failure.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

RESULTS = {"passed": 0, "failed": 0, "skipped": 0}


def report(name, ok, detail=""):
    key = "passed" if ok else "failed"
    RESULTS[key] += 1
    print(f"{'PASS' if ok else 'FAIL'} {name}{(': ' + detail) if detail else ''}", flush=True)


def skip(name, why):
    RESULTS["skipped"] += 1
    print(f"SKIP {name}: {why}", flush=True)


class Server:
    def __init__(self, binary, *args):
        self.argv = [binary, *args]  # what starts another server like this one
        self.proc = subprocess.Popen([binary, "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(m.group(1))

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def raw_exchange(port, data, timeout=3.0):
    """Sends data on a fresh connection; returns (bytes received, closed_by_server)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        got = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return got, False
            except ConnectionResetError:
                return got, True
            if not chunk:
                return got, True
            got += chunk
        return got, False
    finally:
        s.close()


def status_of(response):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    return int(m.group(1)) if m else None


def check_basics(srv, tag):
    # http.client: routes, statuses, keep-alive reuse, HEAD, /stats.
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    c.request("GET", "/")
    r = c.getresponse()
    body = r.read()
    report(f"{tag} http.client GET /", r.status == 200 and body == b"Hello, World!", f"{r.status} {body!r}")
    sock_before = c.sock
    c.request("GET", "/users/42")
    r = c.getresponse()
    body = r.read()
    report(f"{tag} http.client GET /users/42 on the same connection",
           r.status == 200 and json.loads(body) == {"id": "42"} and c.sock is sock_before, body.decode())
    c.request("GET", "/json")
    r = c.getresponse()
    report(f"{tag} http.client GET /json", json.loads(r.read()) == {"message": "Hello, World!"})
    c.request("GET", "/nope")
    r = c.getresponse()
    r.read()
    report(f"{tag} 404 for an unknown path", r.status == 404)
    c.request("POST", "/", body=b"x")
    r = c.getresponse()
    r.read()
    report(f"{tag} 405 with Allow for a known path", r.status == 405 and "GET" in (r.getheader("Allow") or ""))
    c.request("HEAD", "/")
    r = c.getresponse()
    report(f"{tag} HEAD has headers and no body", r.status == 200 and r.read() == b"" and r.getheader("Content-Length") == "13")
    c.request("GET", "/stats")
    r = c.getresponse()
    st = json.loads(r.read())
    report(f"{tag} /stats is JSON with registry counters",
           r.status == 200 and "armed" in st and "stale_dropped" in st and st.get("requests", 0) >= 5, json.dumps(st))
    c.close()


def check_curl(srv, tag):
    if not shutil.which("curl"):
        skip(f"{tag} curl", "curl not installed")
        return
    p = subprocess.run(["curl", "-sv", srv.url("/"), srv.url("/json")], capture_output=True, text=True, timeout=20)
    report(f"{tag} curl keep-alive reuses the connection",
           p.returncode == 0 and "Hello, World!" in p.stdout and re.search(r"Re-using existing connection", p.stderr) is not None,
           p.stderr[-300:] if p.returncode else "")
    payload = os.urandom(200_000)
    p = subprocess.run(["curl", "-s", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", srv.url("/echo")],
                       input=payload, capture_output=True, timeout=20)
    report(f"{tag} curl chunked upload is echoed", p.returncode == 0 and p.stdout == payload, f"{len(p.stdout)} bytes")
    p = subprocess.run(["curl", "-s", "--data-binary", "@-", srv.url("/echo")], input=payload, capture_output=True, timeout=20)
    report(f"{tag} curl Content-Length upload (Expect: 100-continue) is echoed", p.returncode == 0 and p.stdout == payload)


def check_pipelining(srv, tag):
    req = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    got, _ = raw_exchange(srv.port, req * 15 + b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    report(f"{tag} 16 pipelined requests get 16 responses in order, then close",
           got.count(b"HTTP/1.1 200 OK") == 16 and got.endswith(b"Hello, World!"), f"{got.count(b'HTTP/1.1 200')} responses")


ERROR_CASES = [
    ("request line over 8 KiB", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    ("header section over 16 KiB", b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n", 431),
    ("over 100 header fields", b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
    ("body over the limit", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 413),
    ("Content-Length with Transfer-Encoding", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("conflicting Content-Length", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    ("Content-Length list", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
    ("bad chunk size", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n  folded\r\n\r\n", 400),
    ("space before colon", b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    ("missing Host in HTTP/1.1", b"GET / HTTP/1.1\r\nX-A: a\r\n\r\n", 400),
    ("unknown transfer coding", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ("unsupported version", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ("malformed request line", b"GET/ HTTP/1.1\r\nHost: t\r\n\r\n", 400),
]


def check_errors(srv, tag):
    for name, data, want in ERROR_CASES:
        got, closed = raw_exchange(srv.port, data)
        st = status_of(got)
        report(f"{tag} {name} -> {want} and close", st == want and closed, f"got {st}, closed={closed}")
    # The server is still fine.
    got, _ = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    report(f"{tag} still serving after the bad requests", status_of(got) == 200)


def check_fin_with_the_bytes(srv, tag, rounds=10):
    # The last bytes and the FIN in one segment (TCP_CORK, then shutdown), after the server
    # has armed its read: one edge brings both and none follows. A request cut short must
    # still get its 400 and a complete one its answer, each followed by a close at once,
    # not when a timeout fires.
    cases = [("cut short", b"PUT / HTTP/1.1\r\nHost: t\r\nContent-Leng", 400),
             ("complete", b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 200)]
    for name, data, want in cases:
        bad = []
        worst = 0.0
        for i in range(rounds):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
            try:
                time.sleep(0.05)  # accepted, read to EAGAIN, armed (else: the accept path)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
                s.sendall(data)
                t0 = time.time()
                s.shutdown(socket.SHUT_WR)  # sends the corked bytes with the FIN
                got, closed = b"", False
                try:
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            closed = True
                            break
                        got += chunk
                except (socket.timeout, ConnectionResetError) as e:
                    closed = isinstance(e, ConnectionResetError)
                worst = max(worst, time.time() - t0)
                if status_of(got) != want or not closed:
                    bad.append(f"round {i}: {status_of(got)}, closed={closed}")
            finally:
                s.close()
        report(f"{tag} bytes and FIN in one segment, {name}: {want} and close, {rounds}x",
               not bad, "; ".join(bad[:3]) or f"slowest {worst * 1000:.1f} ms")


def check_slow_clients(srv, tag, count=300):
    held = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")  # half a request, then nothing
            held.append(s)
        t0 = time.time()
        got, _ = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        dt = time.time() - t0
        report(f"{tag} {count} half-sent requests do not delay a normal one", status_of(got) == 200 and dt < 1.0, f"{dt * 1000:.1f} ms")
    finally:
        for s in held:
            s.close()


def check_wrk(srv, tag):
    if not shutil.which("wrk"):
        skip(f"{tag} wrk", "wrk not installed")
        return
    p = subprocess.run(["wrk", "-t1", "-c20", "-d1s", srv.url("/")], capture_output=True, text=True, timeout=30)
    m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
    bad = re.search(r"Non-2xx|Socket errors", p.stdout)
    report(f"{tag} wrk 1 s, 20 connections, no errors", p.returncode == 0 and m is not None and bad is None,
           (m.group(1) + " req/s") if m else p.stdout[-200:])


def check_h2load(srv, tag):
    if not shutil.which("h2load"):
        skip(f"{tag} h2load", "h2load not installed (nghttp2-client)")
        return
    p = subprocess.run(["h2load", "--h1", "-n", "4000", "-c", "10", "-m", "16", srv.url("/")],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", p.stdout)
    ok = m is not None and m.group(3) == "4000" and m.group(4) == "0" and m.group(5) == "0"
    report(f"{tag} h2load --h1 -m 16 pipelined: 4000 requests succeed", p.returncode == 0 and ok, m.group(0) if m else p.stdout[-300:])


def check_connection_limit(binary, args, tag):
    srv = Server(binary, *args, "--max-conns", "4")
    held = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            held.append(s)
        time.sleep(0.2)
        got, closed = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        report(f"{tag} over the connection limit: 503 and a clean close", status_of(got) == 503 and closed, f"{got[:40]!r}")
        for s in held:
            s.close()
        held = []
        time.sleep(0.3)
        got, _ = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        report(f"{tag} room again once connections close", status_of(got) == 200)
    finally:
        for s in held:
            s.close()
        srv.stop()


def check_timeouts(binary, args, tag):
    srv = Server(binary, *args, "--header-timeout", "1", "--idle-timeout", "2")
    try:
        slow = socket.create_connection(("127.0.0.1", srv.port), timeout=6)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
        idle = socket.create_connection(("127.0.0.1", srv.port), timeout=6)
        idle.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        idle.recv(4096)
        t0 = time.time()
        slow_closed = slow.recv(1) == b""
        t_slow = time.time() - t0
        idle_closed = idle.recv(1) == b""
        t_idle = time.time() - t0
        report(f"{tag} an incomplete request is closed after the header timeout", slow_closed and t_slow < 4, f"{t_slow:.1f} s")
        report(f"{tag} an idle keep-alive connection is closed after the idle timeout", idle_closed and t_idle < 5, f"{t_idle:.1f} s")
    except socket.timeout:
        report(f"{tag} timeouts close slow and idle connections", False, "not closed in time")
    finally:
        srv.stop()


def check_graceful_stop(binary, args, tag):
    srv = Server(binary, *args)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello")
    time.sleep(0.2)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    s.sendall(b"world")
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    s.close()
    code = srv.stop(timeout=10)
    report(f"{tag} SIGTERM lets the response in flight complete, then exits 0",
           status_of(got) == 200 and got.endswith(b"helloworld") and code == 0, f"exit {code}, {got[-20:]!r}")


ONLY = ""
NATIVE_BACKEND = "epoll"  # main() sets it from --backends


def check_backend(srv, tag, args):
    """The server runs on the backend asked for: a refused one falls back with a note on
    stderr, which would make every check after this one test another backend."""
    if "--model" in args and args[args.index("--model") + 1] == "thread-per-conn":
        want = "blocking"
    elif "--backend" in args:
        want = args[args.index("--backend") + 1]
    else:
        want = NATIVE_BACKEND
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request("GET", "/stats")
    got = json.loads(c.getresponse().read()).get("backend")
    c.close()
    report(f"{tag} runs on the backend asked for ({want})", got == want, f"runs on {got}")


def run_suite(binary, tag, args, checks, full=False):
    if ONLY not in tag:
        return
    srv = Server(binary, *args)
    try:
        check_backend(srv, tag, args)
        for check in checks:
            check(srv, tag)
    finally:
        code = srv.stop()
        report(f"{tag} exits 0 on SIGTERM", code == 0, f"exit {code}")
    if full:
        check_connection_limit(binary, args, tag)
        check_timeouts(binary, args, tag)
        check_graceful_stop(binary, args, tag)


FULL_CHECKS = [check_basics, check_pipelining, check_errors, check_fin_with_the_bytes,
               check_curl, check_slow_clients, check_wrk, check_h2load]
# The framing, error and hang-up paths, for configurations the full suites do not run.
LIGHT_CHECKS = [check_pipelining, check_errors, check_fin_with_the_bytes]

LIGHT_SUITES = [
    ("[io_uring mutex_map]", ["--backend", "io_uring", "--registry", "mutex_map"]),
    ("[io_uring mpsc_queue]", ["--backend", "io_uring", "--registry", "mpsc_queue", "--threads", "2"]),
    ("[--rearm-per-op]", ["--rearm-per-op"]),
    ("[--shared-registry]", ["--registry", "sharded_map", "--threads", "2", "--shared-registry"]),
    ("[--std-function]", ["--std-function"]),
    ("[--write-per-part --nagle]", ["--write-per-part", "--nagle"]),
    ("[every diagnosis]", ["--registry", "mutex_map", "--std-function", "--rearm-per-op", "--nagle",
                           "--write-per-part"]),
]


def registry_names(binary):
    """The strategies, as the server lists them (opreg-httpd --list)."""
    p = subprocess.run([binary, "--list"], capture_output=True, text=True, timeout=10)
    names = p.stdout.split()
    if p.returncode != 0 or not names:
        raise RuntimeError(f"{binary} --list: exit {p.returncode}, {p.stdout!r} {p.stderr!r}")
    return names


def check_refused(binary, args, why_word, name):
    """The server must refuse to start with `args`: exit 2 and one line naming `why_word`."""
    p = subprocess.run([binary, "--port", "0", *args], capture_output=True, text=True, timeout=10)
    lines = p.stderr.strip().splitlines()
    report(f"{name}: exit 2 and one line saying why",
           p.returncode == 2 and len(lines) == 1 and why_word in lines[0] and not p.stdout,
           f"exit {p.returncode}, {p.stderr.strip()!r}")


def check_refused_flags(binary):
    # Re-registering per operation is exact only where a removal is synchronous (epoll,
    # kqueue): with io_uring the server must refuse to start, saying why in one line.
    check_refused(binary, ["--backend", "io_uring", "--rearm-per-op"], "io_uring",
                  "--rearm-per-op with io_uring")
    # The diagnosis flags re-create the readiness model's costs: completion mode refuses them.
    check_refused(binary, ["--backend", "io_uring-completion", "--write-per-part"],
                  "io_uring-completion", "--write-per-part with io_uring-completion")


# --matrix quick: completion mode with one strategy that ends ops directly and one that hands
# them off to the owning thread, instead of every strategy (the default backend still runs
# every strategy). --matrix full: every strategy in completion mode too.
QUICK_STRATEGIES = ("slot_array", "mpsc_queue")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, help="path to opreg-httpd")
    ap.add_argument("--quick", action="store_true", help="one strategy only")
    ap.add_argument("--matrix", choices=("quick", "full"), default="full",
                    help="full: every strategy on the default backend and in completion mode "
                         "(default); quick: completion mode with slot_array and mpsc_queue only")
    ap.add_argument("--strategies", default="",
                    help="comma list: run these strategies only (default: all the server lists)")
    ap.add_argument("--backends", default="epoll,io_uring,io_uring-completion",
                    help="comma list of the backends this build has (default epoll,io_uring,"
                         "io_uring-completion; kqueue in the kqueue configuration): the suites "
                         "that ask for another are not run")
    ap.add_argument("--only", default="", help="only the suites whose tag contains this text")
    a = ap.parse_args()
    global ONLY
    ONLY = a.only
    registries = ["slot_array"] if a.quick else registry_names(a.server)
    if a.strategies:
        unknown = set(a.strategies.split(",")) - set(registries)
        if unknown:
            ap.error(f"--strategies: {', '.join(sorted(unknown))} not among {', '.join(registries)}")
        registries = [r for r in registries if r in a.strategies.split(",")]
    backends = a.backends.split(",")
    global NATIVE_BACKEND
    NATIVE_BACKEND = backends[0]  # the build's own: epoll on Linux, kqueue in the kqueue build
    completion = registries if a.matrix == "full" else [r for r in registries if r in QUICK_STRATEGIES]
    if "io_uring-completion" not in backends:
        completion = []
    if "io_uring" in backends:
        check_refused_flags(a.server)
    for i, r in enumerate(registries):
        run_suite(a.server, f"[{r}]", ["--registry", r, "--threads", "2"], FULL_CHECKS,
                  full=(i == len(registries) - 1))
    if "io_uring" in backends:
        run_suite(a.server, "[io_uring]", ["--backend", "io_uring", "--registry", "slot_array"], FULL_CHECKS)
    # Completion mode: the kernel reads and writes (recv and send ops).
    for i, r in enumerate(completion):
        run_suite(a.server, f"[io_uring-completion {r}]",
                  ["--backend", "io_uring-completion", "--registry", r, "--threads", "2"],
                  FULL_CHECKS, full=(i == len(completion) - 1))
    run_suite(a.server, "[thread-per-conn]", ["--model", "thread-per-conn"], FULL_CHECKS, full=True)
    if not a.quick:
        for tag, args in LIGHT_SUITES:
            if "--backend" not in args or args[args.index("--backend") + 1] in backends:
                run_suite(a.server, tag, args, LIGHT_CHECKS)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed, {RESULTS['skipped']} skipped")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
