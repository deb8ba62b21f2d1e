#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The examples against real clients, on 127.0.0.1 only.

Starts each example program found in --bin-dir on port 0 and talks to it with Python
sockets and curl: echo round trips with several concurrent clients, a 1 MiB echo, many
short connections in a row (fd numbers reused), the line protocol (answers, QUIT, WHO,
KICK across threads, STATS from both threads, a line too long, a client that reads
nothing for a while), idle timeouts closing a silent client within bounds while an active
one stays, the embedded reactor's ticks and status port (asio_echo), and SIGTERM and
SIGINT with clients connected (exit 0, every client sees the close). Every wait is
bounded. Prints one line per check, then "N passed, N failed, N skipped"; exits 1 on any
failure, 77 when every check was skipped (nothing to test here), 0 otherwise.
"""
import argparse
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

EXAMPLES = ["echo_epoll", "echo_kevent", "echo_uring", "line_server", "asio_echo"]
ABSENT = {
    "echo_epoll": "not built here: epoll is Linux's",
    "echo_uring": "not built here: io_uring is Linux's (and not in opreg's kqueue configuration), "
                  "or this build's preset did not ask for it",
    "echo_kevent": "not built here: it is built where the kqueue backend is "
                   "(BSD, macOS, opreg's kqueue configuration)",
    "line_server": "not built here",
    "asio_echo": "not built here: standalone Asio (asio.hpp) was not found when configuring "
                 "(Debian: libasio-dev)",
}
SANITIZER_MARKS = ("ThreadSanitizer", "AddressSanitizer", "LeakSanitizer", "runtime error:")

RESULTS = {"passed": 0, "failed": 0, "skipped": 0}
STARTED = []  # every server started, killed at the end if a check left one running
LIBKQUEUE = False  # --libkqueue: the examples' reactors run on libkqueue's kqueue emulation


def report(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {name}{(': ' + detail) if detail else ''}", flush=True)
    return ok


def skip(name, why):
    RESULTS["skipped"] += 1
    print(f"SKIP {name}: {why}", flush=True)


class Server:
    """An example started on port 0; its stderr goes to a file (a sanitizer report may be long)."""

    def __init__(self, binary, *args, start_timeout=20.0):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary, "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=self.err)
        STARTED.append(self)
        self.lines = []
        self.port = None
        buf = b""
        deadline = time.monotonic() + start_timeout
        while self.port is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if not ready:
                if self.proc.poll() is not None:
                    break
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.lines.append(line.decode(errors="replace"))
                m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", self.lines[-1])
                if m:
                    self.port = int(m.group(1))
        if self.port is None:
            self.kill()
            raise RuntimeError(f"{os.path.basename(binary)} did not say it listens: "
                               f"{self.lines!r} {self.stderr()[-2000:]}")

    def line_matching(self, pattern):
        for line in self.lines:
            m = re.fullmatch(pattern, line)
            if m:
                return m
        return None

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Sends sig and waits; the exit status, or None when it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")


class Client:
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """One recv before the deadline; False when nothing more can come (EOF or timeout)."""
        left = deadline - time.monotonic()
        if left <= 0 or self.eof:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_exactly(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n and self._fill(deadline):
            pass
        got, self.buf = self.buf[:n], self.buf[n:]
        return got

    def read_line(self, timeout=10.0):
        """The next line without its newline, or None on EOF or timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf and self._fill(deadline):
            pass
        if b"\n" not in self.buf:
            return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def wait_eof(self, timeout=10.0):
        """Reads until the server closes; (closed, data read meanwhile)."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        data, self.buf = self.buf, b""
        return self.eof, data

    def ask(self, line, timeout=10.0):
        self.send(line.encode() + b"\n")
        return self.read_line(timeout)

    def close(self):
        self.sock.close()


def run_help(binary, name):
    try:
        p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
        report(f"{name} --help", p.returncode == 0 and p.stdout.startswith("usage:"),
               f"exit {p.returncode}")
        p = subprocess.run([binary, "--no-such-flag"], capture_output=True, text=True, timeout=10)
        report(f"{name} refuses an unknown flag with exit 2 and a reason",
               p.returncode == 2 and "--no-such-flag" in p.stderr, f"exit {p.returncode}")
    except subprocess.TimeoutExpired:
        report(f"{name} --help", False, "no answer in 10 s")


def stop_checks(srv, name, clients=(), sig=signal.SIGTERM):
    """Stops srv with sig while `clients` are connected: exit 0, each client sees the close,
    no sanitizer report."""
    signame = signal.Signals(sig).name
    rc = srv.stop(sig)
    err = srv.stderr()
    report(f"{name} {signame} with {len(clients)} clients connected: exit 0", rc == 0,
           "" if rc == 0 else f"exit {rc}; stderr: {err[-3000:]!r}")
    if clients:
        closed = [c.wait_eof(timeout=5)[0] for c in clients]
        report(f"{name} {signame}: every client sees the close", all(closed), f"{closed}")
        for c in clients:
            c.close()
    marks = [m for m in SANITIZER_MARKS if m in err]
    report(f"{name} no sanitizer report on stderr", not marks, f"{marks}: {err[-3000:]!r}" if marks else "")


def stop_signals_synchronous(srv, name):
    """No handler is installed for SIGTERM or SIGINT: the program takes them synchronously
    (blocked, then sigwait() or a signal fd), and the stop checks show that it does stop on
    them. (Under ThreadSanitizer a handler runs when the runtime chooses: a handler that
    wrote to a self-pipe was seen never to run for about one SIGTERM in a hundred, the loop
    then waiting for ever.)"""
    check = f"{name} takes SIGTERM and SIGINT synchronously (no signal handler for them)"
    try:
        with open(f"/proc/{srv.proc.pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except FileNotFoundError:
        skip(check, "no /proc/PID/status here to read the caught signals from (Linux has it)")
        return
    caught = int(fields["SigCgt"], 16)
    handled = [sig.name for sig in (signal.SIGTERM, signal.SIGINT) if caught >> (sig - 1) & 1]
    report(check, not handled, f"a handler is installed for {', '.join(handled)}" if handled else "")


def stop_while_accepting(binary, name, rounds=20):
    """SIGTERM right behind fresh connections, whose accepts may still be queued: a server
    that serves them after its shutdown (or spins on its closed listener) never exits."""
    codes = []
    for _ in range(rounds):
        srv = Server(binary)
        clients = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(3)]
        codes.append(srv.stop(timeout=10))
        for c in clients:
            c.close()
    report(f"{name} SIGTERM right behind {rounds}x3 fresh connections: exit 0 every time",
           codes == [0] * rounds, "" if codes == [0] * rounds
           else f"exit statuses {codes} (None: still running after 10 s)")


def curl_telnet(port, data, max_time):
    """curl's telnet client: sends data, returns (exit status, what came back)."""
    p = subprocess.run(["curl", "--silent", "--max-time", str(max_time), f"telnet://127.0.0.1:{port}"],
                       input=data, capture_output=True, timeout=max_time + 10)
    return p.returncode, p.stdout


# ---- echo servers: echo_epoll, echo_kevent, asio_echo ------------------------------------

def echo_stream(port, payload, timeout=30.0):
    """Sends payload while reading the echo (a sender thread: neither side can fill up and
    wait for the other); the bytes that came back."""
    c = Client(port, timeout=timeout)
    err = []

    def send():
        try:
            c.send(payload)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send)
    t.start()
    got = c.read_exactly(len(payload), timeout=timeout)
    t.join(timeout)
    c.close()
    return got if not err else b""


def echo_checks(srv, name):
    c = Client(srv.port)
    c.send(b"hello\n")
    got = c.read_exactly(6)
    report(f"{name} echoes a line", got == b"hello\n", repr(got))
    c.send(b"second round on the same connection")
    got = c.read_exactly(35)
    report(f"{name} echoes again on the same connection", got == b"second round on the same connection",
           repr(got))
    c.close()

    big = os.urandom(1 << 20)
    got = echo_stream(srv.port, big)
    report(f"{name} echoes 1 MiB whole (partial writes, write readiness)", got == big,
           f"{len(got)} of {len(big)} bytes")

    rng = random.Random(7)
    payloads = [rng.randbytes(rng.randint(1, 20000)) * 4 for _ in range(8)]
    results = [None] * len(payloads)

    def one(i):
        results[i] = echo_stream(srv.port, payloads[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    ok = [results[i] == payloads[i] for i in range(len(payloads))]
    report(f"{name} {len(payloads)} concurrent clients each get their own bytes back", all(ok), f"{ok}")

    bad = 0
    for i in range(150):  # the server closes each fd; the next connection reuses its number
        c = Client(srv.port)
        msg = f"connection {i}\n".encode()
        c.send(msg)
        if c.read_exactly(len(msg), timeout=5) != msg:
            bad += 1
        c.close()
    report(f"{name} 150 short connections in a row (fd numbers reused)", bad == 0, f"{bad} wrong")

    c = Client(srv.port)
    c.send(os.urandom(300000))
    c.close()  # gone without reading its echo: the server's write fails, it closes, goes on
    c = Client(srv.port)
    c.send(b"still here\n")
    got = c.read_exactly(11)
    report(f"{name} serves on after a client left without reading", got == b"still here\n", repr(got))
    c.close()

    if shutil.which("curl"):
        rc, out = curl_telnet(srv.port, b"ping over curl\n", 2)
        # The server keeps the connection: curl ends at --max-time (28) with the echo read.
        report(f"{name} curl telnet:// gets its line back", out == b"ping over curl\n" and rc in (0, 28),
               f"exit {rc}, {out!r}")
    else:
        skip(f"{name} curl telnet://", "curl is not installed")


def echo_stop_checks(binary, srv, name):
    """SIGTERM with three clients (one mid-exchange), SIGINT idle, SIGTERM behind fresh
    connections."""
    clients = [Client(srv.port) for _ in range(3)]
    clients[0].send(b"mid-exchange")  # echoed, never read
    clients[1].send(b"x")
    clients[1].read_exactly(1)
    stop_checks(srv, name, clients)
    stop_checks(Server(binary), name, sig=signal.SIGINT)
    stop_while_accepting(binary, name)


def test_echo(binary, name):
    run_help(binary, name)
    srv = Server(binary)
    stop_signals_synchronous(srv, name)
    echo_checks(srv, name)
    echo_stop_checks(binary, srv, name)


# ---- echo_uring: completion mode -------------------------------------------------------------

def start_or_skip(binary, name, *args):
    """The server, or None (and a skip that says why) where it exits 3: no completion mode."""
    try:
        return Server(binary, *args)
    except RuntimeError:
        srv = STARTED[-1]
        if srv.proc.poll() == 3:
            skip(f"{name} (every check)", srv.stderr().strip())
            return None
        raise


def non_reader_checks(srv, name, send_timeout):
    """A client that sends and never reads its echo: the server's send stops making progress,
    another client is served meanwhile at once, and the non-reader is reset after about
    send_timeout (seen through poll, without reading, which would let the send progress)."""
    nr = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    nr.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once, never grows
    nr.settimeout(5)
    nr.connect(("127.0.0.1", srv.port))
    nr.setblocking(False)
    chunk = b"n" * 65536
    pushed = 0
    last_progress = start = time.monotonic()
    while time.monotonic() < start + 20:
        try:
            pushed += nr.send(chunk)
            last_progress = time.monotonic()
        except BlockingIOError:
            # Not writable for half a second: the server takes nothing more, since its send
            # of the echo cannot progress.
            if not select.select([], [nr], [], 0.5)[1]:
                break
    stuck = last_progress
    c = Client(srv.port)
    t0 = time.monotonic()
    c.send(b"beside\n")
    got = c.read_exactly(7, timeout=5)
    took = time.monotonic() - t0
    # Well before the non-reader's reset: a loop stuck on it would answer only after that.
    report(f"{name} a client beside one that does not read is served before its reset "
           f"(< {send_timeout / 2:.1f} s)",
           got == b"beside\n" and took < send_timeout / 2, f"{got!r} in {took:.3f} s")
    c.close()
    p = select.poll()
    p.register(nr, select.POLLERR | select.POLLHUP)
    events = p.poll((send_timeout * 3 + 3) * 1000)
    after = time.monotonic() - stuck
    report(f"{name} a client that does not read is reset after the send timeout "
           f"[{send_timeout * 0.5:.1f}, {send_timeout * 3 + 1:.1f}] s after its last byte went",
           bool(events) and send_timeout * 0.5 <= after <= send_timeout * 3 + 1,
           f"after {after:.2f} s, {pushed} bytes pushed, events {events}")
    nr.close()


def test_echo_uring(binary, name):
    run_help(binary, name)
    srv = start_or_skip(binary, name, "--idle-timeout", "1", "--send-timeout", "2")
    if srv is None:
        return
    stop_signals_synchronous(srv, name)
    echo_checks(srv, name)
    idle_checks(srv, name, 1.0, b"")
    non_reader_checks(srv, name, 2.0)
    echo_stop_checks(binary, srv, name)


# ---- line_server ---------------------------------------------------------------------------

WHO = re.compile(r"worker ([01]) conn (\d+)")


def who(c):
    m = WHO.fullmatch(c.ask("WHO") or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def line_basics(srv, name):
    c = Client(srv.port)
    c.send(b"hello\nWorld 2\n")
    got = [c.read_line(), c.read_line()]
    report(f"{name} answers each line upper-cased", got == ["HELLO", "WORLD 2"], f"{got}")
    c.send(b"spl")
    time.sleep(0.1)
    c.send(b"it\r\n")
    got = c.read_line()
    report(f"{name} a line split over two sends, CRLF", got == "SPLIT", repr(got))
    got = c.ask("QUIT")
    closed, rest = c.wait_eof(5)
    report(f"{name} QUIT answers BYE and closes", got == "BYE" and closed and rest == b"",
           f"{got!r}, closed={closed}, then {rest!r}")
    c.close()

    c = Client(srv.port)
    c.send(b"x" * 5000)
    got = c.read_line()
    closed, _ = c.wait_eof(5)
    report(f"{name} a line over 4096 bytes: ERR and close", got == "ERR line too long" and closed,
           f"{got!r}, closed={closed}")
    c.close()

    clients = [Client(srv.port) for _ in range(4)]
    seen = [who(c) for c in clients]
    workers = {w[0] for w in seen if w}
    report(f"{name} connections are spread over both reactor threads", workers == {0, 1}, f"{seen}")
    for c in clients:
        c.close()

    # Many clients at once, each with pipelined lines: every answer, in order, on its connection.
    def pipelined(i, out):
        c = Client(srv.port, timeout=30)
        lines = [f"client {i} line {j}" for j in range(200)]
        c.send("".join(f"{x}\n" for x in lines).encode())
        out[i] = [c.read_line(30) for _ in lines] == [x.upper() for x in lines]
        c.close()

    out = [False] * 12
    threads = [threading.Thread(target=pipelined, args=(i, out)) for i in range(len(out))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    report(f"{name} {len(out)} concurrent clients, 200 pipelined lines each, answered in order",
           all(out), f"{out}")

    # A client that reads nothing for a while: the server stops reading its lines once the
    # answers pile up, and reads on when they are taken. Every answer arrives.
    c = Client(srv.port, timeout=30)
    n = 100000
    sender = threading.Thread(target=c.send, args=(b"abc\n" * n,))
    sender.start()
    time.sleep(0.5)
    got = c.read_exactly(4 * n, timeout=30)
    sender.join(30)
    report(f"{name} {n} lines from a client that reads late: every answer arrives",
           got == b"ABC\n" * n, f"{len(got)} of {4 * n} bytes")
    c.close()

    if shutil.which("curl"):
        rc, out = curl_telnet(srv.port, b"curl says hi\nQUIT\n", 5)
        report(f"{name} curl telnet:// gets its answers, and BYE closes it",
               rc == 0 and out == b"CURL SAYS HI\nBYE\n", f"exit {rc}, {out!r}")
    else:
        skip(f"{name} curl telnet://", "curl is not installed")


def line_kick_and_stats(binary, name):
    srv = Server(binary)
    a, b, c, d = (Client(srv.port) for _ in range(4))
    ids = [who(x) for x in (a, b, c, d)]
    report(f"{name} a fresh server alternates connections between its threads",
           [w[0] for w in ids if w] == [0, 1, 0, 1], f"{ids}")
    if len([w for w in ids if w]) == 4:
        got = a.ask("KICK")
        closed, rest = b.wait_eof(5)
        report(f"{name} KICK from thread 0 closes thread 1's oldest connection",
               got == f"KICKED worker 1 conn {ids[1][1]}" and closed and rest == b"BYE kicked\n",
               f"{got!r}; the oldest read {rest!r}, closed={closed}")
        got = d.ask("KICK")
        closed, rest = a.wait_eof(5)
        report(f"{name} KICK from thread 1 closes thread 0's oldest connection",
               got == f"KICKED worker 0 conn {ids[0][1]}" and closed and rest == b"BYE kicked\n",
               f"{got!r}; the oldest read {rest!r}, closed={closed}")
        got = c.ask("STATS")
        m = re.fullmatch(r"STATS worker0 conns=(\d+) lines=(\d+) worker1 conns=(\d+) lines=(\d+)", got or "")
        report(f"{name} STATS gathers both threads' counts through post",
               bool(m) and (m.group(1), m.group(3)) == ("1", "1") and int(m.group(2)) >= 3
               and int(m.group(4)) >= 3, repr(got))
        report(f"{name} the others still answer", c.ask("still") == "STILL" and d.ask("here") == "HERE")
        e = Client(srv.port)  # the fifth: thread 0
        got = d.ask("KICK")
        closed, rest = c.wait_eof(5)
        report(f"{name} KICK again: thread 0's oldest is now the next", closed and got.startswith("KICKED worker 0"),
               f"{got!r}, closed={closed}")
        e.close()
    for x in (a, b, c, d):
        x.close()
    stop_checks(srv, name + " (kick server)")


def idle_checks(srv, name, timeout_s, goodbye):
    """A silent client is closed after timeout_s (within bounds) while an active one stays."""
    silent = Client(srv.port)
    start = time.monotonic()
    seen = {}

    def watch_silent():  # when the close comes, measured while the active client talks
        seen["closed"], seen["data"] = silent.wait_eof(timeout=timeout_s * 2 + 3)
        seen["took"] = time.monotonic() - start

    watcher = threading.Thread(target=watch_silent)
    watcher.start()
    active = Client(srv.port)
    answered = 0
    while time.monotonic() < start + timeout_s * 2.5:
        msg = f"tick {answered}"
        if active.ask(msg, timeout=5) not in (msg, msg.upper()):
            break
        answered += 1
        time.sleep(timeout_s / 4)
    watcher.join(timeout_s * 2 + 5)
    closed, data, took = seen.get("closed"), seen.get("data"), seen.get("took", -1)
    # The reactor's deadline is exact to its timer; the watchdog scans every quarter of it.
    report(f"{name} a client silent for {timeout_s} s is closed within bounds "
           f"[{timeout_s * 0.9:.1f}, {timeout_s * 2 + 0.5:.1f}] s",
           bool(closed) and timeout_s * 0.9 <= took <= timeout_s * 2 + 0.5 and data == goodbye,
           f"closed={closed} after {took:.2f} s, read {data!r}")
    msg = "still awake"
    report(f"{name} a client active every {timeout_s / 4} s stays open past the timeout",
           answered >= 8 and active.ask(msg) in (msg, msg.upper()), f"{answered} round trips")
    silent.close()
    active.close()


def test_line_server(binary, name):
    run_help(binary, name)
    srv = Server(binary)
    stop_signals_synchronous(srv, name)
    line_basics(srv, name)
    clients = [Client(srv.port) for _ in range(4)]
    clients[0].send(b"half a line")
    clients[1].ask("hello")
    stop_checks(srv, name, clients)
    stop_while_accepting(binary, name)
    line_kick_and_stats(binary, name)
    srv = Server(binary, "--idle-timeout", "1")
    idle_checks(srv, name, 1.0, b"BYE idle\n")
    stop_checks(srv, name + " (idle server)", sig=signal.SIGINT)


# ---- asio_echo -----------------------------------------------------------------------------

STATUS = re.compile(r"ticks=(\d+) sessions=(\d+) reads: armed=(\d+) completed=(\d+) timed_out=(\d+) closed=(\d+)")


def status_of(port):
    c = Client(port)
    closed, data = c.wait_eof(5)
    c.close()
    m = STATUS.fullmatch(data.decode(errors="replace").rstrip("\n"))
    return m if closed else None


def test_asio_echo(binary, name):
    run_help(binary, name)
    srv = Server(binary, "--tick-ms", "50")
    m = srv.line_matching(r"status on 127\.0\.0\.1:(\d+) .*")
    report(f"{name} says where its status port is", bool(m), f"{srv.lines}")
    status_port = int(m.group(1)) if m else None
    echo_checks(srv, name)
    if status_port:
        first = status_of(status_port)
        time.sleep(0.6)
        second = status_of(status_port)
        ok = first and second and int(second.group(1)) - int(first.group(1)) >= 4
        report(f"{name} the embedded reactor's timer ticks inside Asio's loop (50 ms, 0.6 s apart)", bool(ok),
               f"{first and first.group(0)!r} then {second and second.group(0)!r}")
        report(f"{name} status counts the reads the registry tracked",
               bool(second) and int(second.group(3)) > 150 and int(second.group(4)) > 150,
               f"{second and second.group(0)!r}")
        if shutil.which("curl"):
            rc, out = curl_telnet(status_port, b"", 5)
            report(f"{name} curl telnet:// reads the status line from the reactor's port",
                   rc == 0 and bool(STATUS.fullmatch(out.decode(errors='replace').rstrip("\n"))),
                   f"exit {rc}, {out!r}")
        else:
            skip(f"{name} curl telnet:// status", "curl is not installed")
    clients = [Client(srv.port) for _ in range(3)]
    clients[0].send(b"unread echo")
    stop_checks(srv, name, clients)
    stop_while_accepting(binary, name)

    # No reactor timer due for a minute: a status connection is served only if the reactor's
    # handle, readable with the connection's events, wakes Asio's loop.
    srv = Server(binary, "--tick-ms", "60000")
    m = srv.line_matching(r"status on 127\.0\.0\.1:(\d+) .*")
    if LIBKQUEUE:
        skip(f"{name} the reactor's handle wakes Asio's loop",
             "libkqueue's kqueue fd is the write end of a pipe (its src/linux/platform.c), never "
             "readable: on the kqueue configuration an embedded reactor is driven by its "
             "deadlines alone")
    elif m:
        start = time.monotonic()
        st = status_of(int(m.group(1)))
        took = time.monotonic() - start
        report(f"{name} the reactor's handle wakes Asio's loop (no timer due): status in under 2 s",
               bool(st) and took < 2, f"{st and st.group(0)!r} after {took:.2f} s")
    stop_checks(srv, name + " (handle server)")

    srv = Server(binary, "--idle-timeout", "1", "--tick-ms", "50")
    m = srv.line_matching(r"status on 127\.0\.0\.1:(\d+) .*")
    idle_checks(srv, name, 1.0, b"")
    if m:
        st = status_of(int(m.group(1)))
        report(f"{name} the watchdog's timeout shows in the registry's counts",
               bool(st) and int(st.group(5)) >= 1, f"{st and st.group(0)!r}")
    stop_checks(srv, name + " (idle server)", sig=signal.SIGINT)


TESTS = {"echo_epoll": test_echo, "echo_kevent": test_echo, "echo_uring": test_echo_uring,
         "line_server": test_line_server,
         "asio_echo": test_asio_echo}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, help="where the example programs are")
    ap.add_argument("--only", default="", help="comma-separated examples to check (default: all)")
    ap.add_argument("--missing", action="append", default=[], metavar="NAME=WHY",
                    help="why NAME is not built, for its skip line (CMake passes it)")
    ap.add_argument("--libkqueue", action="store_true",
                    help="opreg's kqueue configuration on Linux: kqueue is libkqueue's emulation")
    args = ap.parse_args()
    global LIBKQUEUE
    LIBKQUEUE = args.libkqueue
    why_missing = dict(ABSENT)
    for item in args.missing:
        k, _, v = item.partition("=")
        why_missing[k] = v
    names = [n for n in args.only.split(",") if n] or EXAMPLES
    for n in names:
        if n not in TESTS:
            ap.error(f"unknown example {n!r} (one of {', '.join(EXAMPLES)})")

    for n in names:
        binary = os.path.join(args.bin_dir, n)
        if not os.access(binary, os.X_OK):
            skip(n, why_missing[n])
            continue
        try:
            TESTS[n](binary, n)
        except Exception as e:  # a server that would not start, a client that could not connect
            report(f"{n} ran to the end", False, f"{type(e).__name__}: {e}")
        finally:
            for srv in STARTED:
                srv.kill()
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed, {RESULTS['skipped']} skipped", flush=True)
    if RESULTS["failed"]:
        return 1
    return 77 if RESULTS["passed"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
