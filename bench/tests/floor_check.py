#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""opreg-floor answers like a server, on each backend it has: one answer per request head,
heads split anywhere across writes, pipelines, many connections at once, direct descriptor
slots reused (under a low open-files limit), and exit 0 on SIGTERM. The demo's floor rows
are only a ceiling if they do the same work as the servers beside them.

usage: floor_check.py --floor PATH [--backends epoll,io_uring]"""
import argparse
import re
import resource
import signal
import socket
import subprocess
import sys
import time

REQ = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
EXIT_REFUSED = 3  # opreg-floor: the kernel refuses io_uring here
failed = 0


class Refused(Exception):
    """The backend cannot run on this kernel: its checks are skipped, and say so."""


def report(name, ok, detail=""):
    global failed
    failed += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def start(floor, backend, nofile=None):
    def limit():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    p = subprocess.Popen([floor, "--port", "0", "--backend", backend], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", p.stdout.readline())
    if not m:
        p.kill()
        code = p.wait(5)
        why = p.stderr.read().strip()
        if code == EXIT_REFUSED:
            raise Refused(why)
        raise RuntimeError(f"did not start (exit {code}): {why}")
    return p, int(m.group(1))


def answers(port, parts):
    """Sends `parts` on one connection, a pause between them; counts the answers."""
    expect = b"".join(parts).count(b"\r\n\r\n")
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    got = b""
    try:
        for k, part in enumerate(parts):
            if k:
                time.sleep(0.02)  # each part a read of its own
            s.sendall(part)
        while got.count(b"Hello, World!") < expect:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    finally:
        s.close()
    return got.count(b"HTTP/1.1 200 OK"), expect


def check(floor, backend):
    p, port = start(floor, backend)
    try:
        cases = {
            "one request": [REQ],
            "16 pipelined": [REQ * 16],
            "500 pipelined": [REQ * 500],
            "a head end split 2+2": [REQ[:-2], REQ[-2:]],
            "a head end split 1+3 then 3+1": [REQ[:-3], REQ[-3:] + REQ[:-1], REQ[-1:]],
            "a byte at a time": [bytes([b]) for b in REQ * 2],
        }
        # The peer's FIN right behind its request: the answer still comes.
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.sendall(REQ)
        s.shutdown(socket.SHUT_WR)
        got = b""
        try:
            while chunk := s.recv(4096):
                got += chunk
        except socket.timeout:
            pass
        s.close()
        report(f"[{backend}] a request followed by the peer's FIN is answered",
               got.count(b"HTTP/1.1 200 OK") == 1, f"{got.count(b'HTTP/1.1 200 OK')} answered")
        for name, parts in cases.items():
            got, expect = answers(port, parts)
            report(f"[{backend}] {name}", got == expect, f"{got} of {expect} answered")
        conns = [socket.create_connection(("127.0.0.1", port), timeout=3) for _ in range(300)]
        for s in conns:
            s.sendall(REQ)
        n = 0
        for s in conns:
            try:
                n += s.recv(4096).count(b"200 OK")
            except socket.timeout:
                pass
            s.close()
        report(f"[{backend}] 300 connections at once", n == 300, f"{n} answered")
    finally:
        p.send_signal(signal.SIGTERM)
        code = p.wait(5)
    report(f"[{backend}] exits 0 on SIGTERM", code == 0, f"exit {code}")
    # 64 open files, 300 connections one after another: each closed one's slot is reused.
    p, port = start(floor, backend, nofile=64)
    n = 0
    try:
        for _ in range(300):
            got, _ = answers(port, [REQ])
            n += got
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(5)
    report(f"[{backend}] 300 connections in turn under 64 open files", n == 300, f"{n} answered")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--floor", required=True, help="path to opreg-floor")
    ap.add_argument("--backends", default="epoll,io_uring")
    a = ap.parse_args()
    for backend in a.backends.split(","):
        try:
            check(a.floor, backend)
        except Refused as e:
            print(f"SKIP [{backend}] every check: the kernel refuses io_uring here ({e})", flush=True)
        except RuntimeError as e:
            report(f"[{backend}] starts", False, str(e))
    print("failed" if failed else "passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
