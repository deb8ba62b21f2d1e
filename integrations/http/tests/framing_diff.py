#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Framing differential test: opreg-httpd against node's strict llhttp parser.

Each case below is the raw bytes a client sends. node_verdicts.js (next to this file) asks
llhttp, with no leniency flags, whether it accepts the first request in them, and with what
method, URL and body, and how many bytes that request took; the bytes after it are asked
about again, so that pipelined requests are judged one by one. opreg-httpd gets the same
bytes on a fresh connection (then our side of it is shut, so the server answers at once),
and its responses are read until it closes.

For each request, in order:
  agree               both accept and opreg answered what its routes give for node's method,
                      path and body (the /users/{id} JSON and the /echo body show the path and
                      the body it framed), or both refuse
  stricter            node accepts, opreg refuses (400, 413, 414, 431, 501, 505, no answer)
  lenient             node refuses, opreg accepts (2xx, 404 or 405)
  routed-differently  both accept, but opreg's answer is not the one node's parse implies,
                      or opreg answered more requests than node framed
The first request that does not agree decides the case. Prints one line per case that does
not agree (every case with --verbose) and "N agree, N stricter, N lenient, N routed
differently". Exits 1 when a case is lenient or routed differently, or stricter without an
entry in STRICTER_BY_DESIGN; 0 otherwise; 77 (SKIP) when node or its parser binding is
missing; 2 on a usage or setup error.
"""
import argparse
import base64
import json
import os
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

DEADLINE = 0.0  # time.monotonic() by which the last case must have started; set in main()
HERE = os.path.dirname(os.path.abspath(__file__))
NODE_SCRIPT = os.path.join(HERE, "node_verdicts.js")

RUN_BUDGET_S = 40       # the whole run up to the last case (then at most one case's time
                        # and the server's stop: under 50 s in all)
CASE_BUDGET_S = 3.0     # one case's connection, send to close
SOCKET_TIMEOUT_S = 2.0  # each connect/recv
NODE_TIMEOUT_S = 10     # one node run (all cases at once), and never past the budget
SERVER_START_S = 10     # until "listening on"
SERVER_STOP_S = 3       # SIGTERM to exit, then SIGKILL
MAX_MESSAGES = 6        # pipelined requests followed per case

# Cases where opreg refuses what llhttp accepts, on purpose; each reason is a rule of the
# parser's contract (integrations/http/parser/http_parser.hpp, "Stricter than node's llhttp").
_UNKNOWN_METHOD = "501: not a method opreg knows; methods are case-sensitive tokens (RFC 9110 §9.1)"
_HOST = "400: HTTP/1.1 needs exactly one valid Host (RFC 9112 §3.2)"
_BARE_LINE_END = "400: lines end in CRLF; RFC 9112 §2.2 lets a recipient take LF alone, opreg never does"
_OTHER_CODING = "501: no transfer coding but chunked is implemented (RFC 9112 §6.1)"
_FRAMING_TAB = ("400: HT around a framing field's value; nginx takes the HT as part of the value "
                "and refuses it, and opreg frames as the strictest proxy in front of it would")
_TE_EMPTY_ELEMENT = ("400: empty element in Transfer-Encoding; nginx accepts only 'chunked' itself, "
                     "node refuses a trailing one")
# The llhttp the list was made against. Another version may accept other shapes: there an
# unlisted stricter case is printed, not failed (lenient and routed-differently still fail).
LLHTTP_LISTED = "9.3.1"
STRICTER_BY_DESIGN = {
    "rl-ext-propfind": _UNKNOWN_METHOD,
    "rl-ext-m-search": _UNKNOWN_METHOD,
    "rl-ext-purge": _UNKNOWN_METHOD,
    "rl-ext-source": _UNKNOWN_METHOD,
    "rl-ext-query": _UNKNOWN_METHOD,
    "rl-two-spaces-after-method": "400: the request line has single spaces (RFC 9112 §3)",
    "rl-two-spaces-before-version": "400: the request line has single spaces (RFC 9112 §3)",
    "rl-http09-no-version": "400: HTTP/0.9 requests are not served",
    "rl-http20": "505: only HTTP/1.0 and HTTP/1.1 are served",
    "rl-http09-version": "505: only HTTP/1.0 and HTTP/1.1 are served",
    "rl-leading-lf": _BARE_LINE_END,
    "rl-leading-cr": _BARE_LINE_END,
    "pp-lf-between": _BARE_LINE_END,
    "tg-origin-fragment": "400: a fragment is not part of a request-target (RFC 9112 §3.2, RFC 3986 §3.5)",
    "tg-absolute-userinfo": "400: userinfo in an http(s) URI is an error (RFC 9110 §4.2.4)",
    "tg-absolute-ftp": "400: an absolute-form target must be http or https, what this server answers for",
    "tg-asterisk-get": "400: the asterisk-form is for OPTIONS only (RFC 9112 §3.2.4)",
    "tg-connect-origin": "400: CONNECT takes the authority-form only (RFC 9112 §3.2.3)",
    "tg-authority-connect": "501: CONNECT (tunnels) is not offered",
    "tg-long-9k": "414: request line over limits::max_request_line (8 KiB)",
    "hd-101-fields": "431: more than limits::max_headers (100) fields",
    "ho-missing-11": _HOST,
    "ho-twice-same": _HOST,
    "ho-twice-different": _HOST,
    "ho-twice-10": "400: more than one Host, in any version (RFC 9112 §3.2)",
    "ho-space-inside": _HOST,
    "ho-slash": _HOST,
    "ho-userinfo": _HOST,
    "ho-high-byte": _HOST,
    "cl-tab-after-colon": _FRAMING_TAB,
    "te-tab-after-colon": _FRAMING_TAB,
    "te-leading-comma": _TE_EMPTY_ELEMENT,
    "te-double-comma-first": _TE_EMPTY_ELEMENT,
    "te-gzip-chunked": _OTHER_CODING,
    "te-twice-gzip-then-chunked": _OTHER_CODING,
    "te-gzip-parameter-chunked": _OTHER_CODING,
    "te-identity-chunked": _OTHER_CODING,
    "te-http10": "400: Transfer-Encoding in an HTTP/1.0 request cannot be trusted (RFC 9112 §6.1)",
    "te-empty": "400: an empty Transfer-Encoding frames nothing",
    "ch-ext-empty-value": "400: a chunk-ext-val is a token or quoted-string, not empty (RFC 9112 §7.1.1)",
    "ch-ext-5k": "400: a chunk-size line over 4 KiB (its extensions are ignored, so they are bounded)",
}

# opreg statuses that mean "framed and routed"; anything else (or no answer) is a refusal.
ACCEPTED_STATUSES = {404, 405}  # plus every 2xx


def is_accepted_status(status):
    return status is not None and (200 <= status < 300 or status in ACCEPTED_STATUSES)


# ---------------------------------------------------------------------------------------
# Cases. Helpers build the common shapes; odd line endings are written out in full.

CRLF = b"\r\n"
CASES = []  # (name, bytes)


def case(name, data):
    assert all(name != n for n, _ in CASES), f"duplicate case name {name}"
    CASES.append((name, data))


def msg(start, fields=(), body=b"", host=True):
    """A request: start line, Host (unless host=False), the fields, empty line, body."""
    lines = [start] + ([b"Host: h"] if host else []) + list(fields)
    return CRLF.join(lines) + CRLF + CRLF + body


def get(target=b"/users/v", fields=(), version=b"HTTP/1.1", method=b"GET", host=True):
    return msg(method + b" " + target + b" " + version, fields, host=host)


def post_cl(value, body=b"abc", start=b"POST /echo HTTP/1.1", fields=()):
    """POST /echo framed by Content-Length `value`."""
    return msg(start, [b"Content-Length: " + value] + list(fields), body)


def post_te(value, chunks=b"3\r\nabc\r\n0\r\n\r\n", start=b"POST /echo HTTP/1.1", fields=()):
    """POST /echo framed by Transfer-Encoding `value`."""
    return msg(start, [b"Transfer-Encoding: " + value] + list(fields), chunks)


def chunked(chunks, start=b"POST /echo HTTP/1.1", fields=()):
    return post_te(b"chunked", chunks, start, fields)


CLOSE = get(b"/users/z", [b"Connection: close"])  # a final pipelined request

# Request line: methods.
case("rl-get-root", get(b"/"))
case("rl-get-json", get(b"/json"))
case("rl-get-user", get(b"/users/v"))
case("rl-get-stats", get(b"/stats"))
case("rl-get-unknown-path", get(b"/nope"))
case("rl-head-root", get(b"/", method=b"HEAD"))
case("rl-head-user", get(b"/users/v", method=b"HEAD"))
case("rl-post-root", post_cl(b"3", start=b"POST / HTTP/1.1"))
case("rl-post-echo-no-body", msg(b"POST /echo HTTP/1.1"))
case("rl-put-user", post_cl(b"3", start=b"PUT /users/v HTTP/1.1"))
case("rl-options-root", get(b"/", method=b"OPTIONS"))
case("rl-patch-json", post_cl(b"3", start=b"PATCH /json HTTP/1.1"))
case("rl-lower-get", get(method=b"get"))
case("rl-lower-post", post_cl(b"3", start=b"post /echo HTTP/1.1"))
case("rl-mixed-get", get(method=b"GeT"))
case("rl-get-bang", get(method=b"GET!"))
case("rl-unknown-foo", get(method=b"FOO"))
case("rl-token-dash", get(method=b"MY-METHOD"))
for m in [b"PROPFIND", b"M-SEARCH", b"PURGE", b"SOURCE", b"QUERY", b"PRI"]:
    case("rl-ext-" + m.decode().lower(), get(method=m))
case("rl-method-nul", get(method=b"G\x00ET"))
case("rl-method-only", b"GET\r\nHost: h\r\n\r\n")
# Request line: spaces.
case("rl-leading-space", b" " + get())
case("rl-two-spaces-after-method", b"GET  /users/v HTTP/1.1\r\nHost: h\r\n\r\n")
case("rl-two-spaces-before-version", b"GET /users/v  HTTP/1.1\r\nHost: h\r\n\r\n")
case("rl-tab-after-method", b"GET\t/users/v HTTP/1.1\r\nHost: h\r\n\r\n")
case("rl-tab-before-version", b"GET /users/v\tHTTP/1.1\r\nHost: h\r\n\r\n")
case("rl-trailing-space", b"GET /users/v HTTP/1.1 \r\nHost: h\r\n\r\n")
# Request line: versions.
case("rl-http09-no-version", b"GET /users/v\r\n\r\n")
case("rl-http10", get(version=b"HTTP/1.0"))
case("rl-http10-no-host", get(version=b"HTTP/1.0", host=False))
case("rl-http12", get(version=b"HTTP/1.2"))
case("rl-http20", get(version=b"HTTP/2.0"))
case("rl-http09-version", get(version=b"HTTP/0.9"))
case("rl-version-lower", get(version=b"http/1.1"))
case("rl-version-two-digits", get(version=b"HTTP/1.10"))
case("rl-version-no-minor", get(version=b"HTTP/1"))
case("rl-version-letter", get(version=b"HTTP/1.x"))
case("rl-version-leading-zero", get(version=b"HTTP/01.1"))
case("rl-version-space", get(version=b"HTTP/ 1.1"))
# Request line: line endings.
case("rl-bare-lf-request-line", b"GET /users/v HTTP/1.1\nHost: h\r\n\r\n")
case("rl-bare-lf-everywhere", b"GET /users/v HTTP/1.1\nHost: h\n\n")
case("rl-cr-alone-request-line", b"GET /users/v HTTP/1.1\rHost: h\r\n\r\n")
case("rl-cr-cr-lf", b"GET /users/v HTTP/1.1\r\r\nHost: h\r\n\r\n")
case("rl-leading-crlf", CRLF + get())
case("rl-leading-lf", b"\n" + get())
case("rl-leading-cr", b"\r" + get())
case("rl-leading-space-line", b" \r\n" + get())
case("rl-only-empty-lines", CRLF + CRLF)

# Request target.
case("tg-origin", get(b"/users/v"))
case("tg-origin-query", get(b"/users/v?x=1&y=2"))
case("tg-origin-fragment", get(b"/users/v#f"))
case("tg-origin-double-slash", get(b"//users/v"))
case("tg-origin-trailing-slash", get(b"/users/v/"))
case("tg-origin-empty-id", get(b"/users/"))
case("tg-origin-quote", get(b'/users/"v"'))
case("tg-origin-high-byte", get(b"/users/caf\xc3\xa9"))
case("tg-origin-ctl", get(b"/users/v\x01"))
case("tg-origin-tab", get(b"/users/v\tw"))
case("tg-absolute", get(b"http://h/users/v"))
case("tg-absolute-upper-scheme", get(b"HTTP://h/users/v"))
case("tg-absolute-https", get(b"https://h/users/v"))
case("tg-absolute-query", get(b"http://h/users/v?x=1"))
case("tg-absolute-root", get(b"http://h/"))
case("tg-absolute-empty-path", get(b"http://h"))
case("tg-absolute-port", get(b"http://h:8080/users/v"))
case("tg-absolute-userinfo", get(b"http://u@h/users/v"))
case("tg-absolute-post-echo", post_cl(b"3", start=b"POST http://h/echo HTTP/1.1"))
case("tg-absolute-one-slash", get(b"http:/users/v"))
case("tg-absolute-ftp", get(b"ftp://h/users/v"))
case("tg-asterisk-options", get(b"*", method=b"OPTIONS"))
case("tg-asterisk-get", get(b"*"))
case("tg-authority-connect", get(b"h:80", method=b"CONNECT"))
case("tg-authority-get", get(b"h:80"))
case("tg-connect-origin", get(b"/users/v", method=b"CONNECT"))
case("tg-relative", get(b"users/v"))
case("tg-query-only", get(b"?x=1"))
case("tg-empty", b"GET  HTTP/1.1\r\nHost: h\r\n\r\n")
case("tg-long-9k", get(b"/users/" + b"v" * 9000))

# Header syntax.
case("hd-plain", get(fields=[b"X: y"]))
case("hd-obs-fold-space", get(fields=[b"X: a", b" b"]))
case("hd-obs-fold-tab", get(fields=[b"X: a", b"\tb"]))
case("hd-obs-fold-host", b"GET /users/v HTTP/1.1\r\nHost: h\r\n x\r\n\r\n")
case("hd-ws-before-first-field", b"GET /users/v HTTP/1.1\r\n X: y\r\nHost: h\r\n\r\n")
case("hd-space-before-colon", get(fields=[b"X : y"]))
case("hd-tab-before-colon", get(fields=[b"X\t: y"]))
case("hd-space-before-colon-host", get(fields=[b"Host : h"], host=False))
case("hd-space-before-colon-cl", msg(b"POST /echo HTTP/1.1", [b"Content-Length : 3"], b"abc"))
case("hd-empty-name", get(fields=[b": y"]))
case("hd-no-colon", get(fields=[b"Xyz"]))
case("hd-name-space-inside", get(fields=[b"X Y: z"]))
case("hd-name-slash", get(fields=[b"X/Y: z"]))
case("hd-name-all-tchars", get(fields=[b"!#$%&'*+-.^_`|~09aZ: z"]))
case("hd-name-ctl", get(fields=[b"X\x01: z"]))
case("hd-value-ctl", get(fields=[b"X: a\x01b"]))
case("hd-value-obs-text", get(fields=[b"X: caf\xe9"]))
case("hd-value-cr", get(fields=[b"X: a\rb"]))
case("hd-value-bare-lf", b"GET /users/v HTTP/1.1\r\nX: y\nHost: h\r\n\r\n")
case("hd-bare-lf-end", b"GET /users/v HTTP/1.1\r\nHost: h\r\n\n")
case("hd-cr-cr-lf-end", b"GET /users/v HTTP/1.1\r\nHost: h\r\n\r\r\n")
case("hd-tab-after-colon", get(fields=[b"X:\ty"]))
case("hd-tabs-around-value", get(fields=[b"X:\t y \t"]))
case("hd-empty-value", get(fields=[b"X:"]))
case("hd-connection-close", get(fields=[b"Connection: close"]))
case("hd-expect-continue", post_cl(b"3", fields=[b"Expect: 100-continue"]))
case("hd-value-17k", get(fields=[b"X: " + b"y" * 17000]))
case("hd-101-fields", get(fields=[b"X%d: y" % i for i in range(101)]))

# Host.
case("ho-missing-11", get(host=False))
case("ho-twice-same", get(fields=[b"Host: h"]))
case("ho-twice-different", get(fields=[b"Host: other"]))
case("ho-twice-10", get(version=b"HTTP/1.0", fields=[b"Host: h"]))
case("ho-empty", get(fields=[b"Host:"], host=False))
case("ho-port", get(fields=[b"Host: h:8080"], host=False))
case("ho-ipv6", get(fields=[b"Host: [::1]:80"], host=False))
case("ho-space-inside", get(fields=[b"Host: a b"], host=False))
case("ho-slash", get(fields=[b"Host: h/x"], host=False))
case("ho-userinfo", get(fields=[b"Host: u@h"], host=False))
case("ho-high-byte", get(fields=[b"Host: caf\xe9"], host=False))
case("ho-tab-value", get(fields=[b"Host:\th\t"], host=False))

# Content-Length (POST /echo, body "abc").
case("cl-basic", post_cl(b"3"))
case("cl-zero", post_cl(b"0", b""))
case("cl-leading-zeros", post_cl(b"003"))
case("cl-plus", post_cl(b"+3"))
case("cl-minus", post_cl(b"-3"))
case("cl-list-same", post_cl(b"3, 3"))
case("cl-list-different", post_cl(b"3, 4"))
case("cl-twice-same", post_cl(b"3", fields=[b"Content-Length: 3"]))
case("cl-twice-different", post_cl(b"3", fields=[b"Content-Length: 4"]))
case("cl-spaces-around", post_cl(b"  3  "))
case("cl-tab-after-colon", msg(b"POST /echo HTTP/1.1", [b"Content-Length:\t3"], b"abc"))
case("cl-tab-trailing", post_cl(b"3\t"))
case("cl-space-inside", post_cl(b"3 3"))
case("cl-hex", post_cl(b"0x3"))
case("cl-empty", post_cl(b""))
case("cl-overflow-2-64", post_cl(b"18446744073709551616"))
case("cl-over-max-body", post_cl(b"2000000"))
case("cl-with-te", post_cl(b"3", b"3\r\nabc\r\n0\r\n\r\n", fields=[b"Transfer-Encoding: chunked"]))
case("cl-after-te", post_te(b"chunked", fields=[b"Content-Length: 3"]))
case("cl-with-te-identity", post_cl(b"3", fields=[b"Transfer-Encoding: identity"]))
case("cl-get-with-body", post_cl(b"3", start=b"GET /users/v HTTP/1.1"))
case("cl-http10", post_cl(b"3", start=b"POST /echo HTTP/1.0"))
case("cl-obs-fold", msg(b"POST /echo HTTP/1.1", [b"Content-Length:", b" 3"], b"abc"))
case("cl-body-short", post_cl(b"5", b"ab"))
case("cl-body-long", post_cl(b"2", b"abcd"))

# Transfer-Encoding (POST /echo, body chunks "abc").
case("te-chunked", post_te(b"chunked"))
case("te-chunked-title-case", post_te(b"Chunked"))
case("te-leading-comma", post_te(b", chunked"))
case("te-trailing-comma", post_te(b"chunked,"))
case("te-empty-elements", post_te(b"chunked, ,"))
case("te-double-comma-first", post_te(b",,chunked"))
case("te-gzip-chunked", post_te(b"gzip, chunked"))
case("te-chunked-gzip", post_te(b"chunked, gzip"))
case("te-chunked-chunked", post_te(b"chunked, chunked"))
case("te-twice-chunked", post_te(b"chunked", fields=[b"Transfer-Encoding: chunked"]))
case("te-twice-gzip-then-chunked", post_te(b"gzip", fields=[b"Transfer-Encoding: chunked"]))
case("te-twice-chunked-then-gzip", post_te(b"chunked", fields=[b"Transfer-Encoding: gzip"]))
case("te-tab-after-colon", msg(b"POST /echo HTTP/1.1", [b"Transfer-Encoding:\tchunked"],
                               b"3\r\nabc\r\n0\r\n\r\n"))
case("te-trailing-ws", post_te(b"chunked \t"))
case("te-http10", post_te(b"chunked", start=b"POST /echo HTTP/1.0"))
case("te-parameter", post_te(b"chunked;a=b"))
case("te-gzip-parameter-chunked", post_te(b"gzip;q=1, chunked"))
case("te-identity", post_te(b"identity"))
case("te-identity-chunked", post_te(b"identity, chunked"))
case("te-unknown", post_te(b"foo"))
case("te-empty", post_te(b""))
case("te-chunkedx", post_te(b"chunkedx"))
case("te-quoted", post_te(b'"chunked"'))
case("te-obs-fold", msg(b"POST /echo HTTP/1.1", [b"Transfer-Encoding:", b" chunked"],
                        b"3\r\nabc\r\n0\r\n\r\n"))
case("te-space-before-colon", msg(b"POST /echo HTTP/1.1", [b"Transfer-Encoding : chunked"],
                                  b"3\r\nabc\r\n0\r\n\r\n"))
case("te-upper-name", msg(b"POST /echo HTTP/1.1", [b"TRANSFER-ENCODING: chunked"],
                          b"3\r\nabc\r\n0\r\n\r\n"))
case("te-get-chunked", chunked(b"3\r\nabc\r\n0\r\n\r\n", start=b"GET /users/v HTTP/1.1"))

# Chunked bodies (POST /echo).
case("ch-basic", chunked(b"3\r\nabc\r\n0\r\n\r\n"))
case("ch-two-chunks", chunked(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"))
case("ch-empty-body", chunked(b"0\r\n\r\n"))
case("ch-upper-hex", chunked(b"A\r\n0123456789\r\n0\r\n\r\n"))
case("ch-lower-hex", chunked(b"a\r\n0123456789\r\n0\r\n\r\n"))
case("ch-leading-zeros", chunked(b"0003\r\nabc\r\n0\r\n\r\n"))
case("ch-many-leading-zeros", chunked(b"00000000000000000000003\r\nabc\r\n0\r\n\r\n"))
case("ch-last-chunk-zeros", chunked(b"3\r\nabc\r\n000\r\n\r\n"))
case("ch-big-chunk", chunked(b"400\r\n" + b"q" * 1024 + b"\r\n0\r\n\r\n"))
case("ch-space-after-size", chunked(b"3 \r\nabc\r\n0\r\n\r\n"))
case("ch-tab-after-size", chunked(b"3\t\r\nabc\r\n0\r\n\r\n"))
case("ch-space-before-size", chunked(b" 3\r\nabc\r\n0\r\n\r\n"))
case("ch-space-before-semicolon", chunked(b"3 ;a=b\r\nabc\r\n0\r\n\r\n"))
case("ch-tab-before-semicolon", chunked(b"3\t;a\r\nabc\r\n0\r\n\r\n"))
case("ch-ext-name", chunked(b"3;a\r\nabc\r\n0\r\n\r\n"))
case("ch-ext-token-value", chunked(b"3;a=b\r\nabc\r\n0\r\n\r\n"))
case("ch-ext-quoted-value", chunked(b'3;a="b c"\r\nabc\r\n0\r\n\r\n'))
case("ch-ext-quoted-escape", chunked(b'3;a="b\\"c"\r\nabc\r\n0\r\n\r\n'))
case("ch-ext-several", chunked(b'3;a=b;c;d="e"\r\nabc\r\n0\r\n\r\n'))
case("ch-ext-bws-around-eq", chunked(b"3;a = b\r\nabc\r\n0\r\n\r\n"))
case("ch-ext-bws-before-eq", chunked(b"3;a =b\r\nabc\r\n0\r\n\r\n"))
case("ch-ext-bws-after-eq", chunked(b"3;a= b\r\nabc\r\n0\r\n\r\n"))
case("ch-ext-bws-after-semicolon", chunked(b"3; a=b\r\nabc\r\n0\r\n\r\n"))
case("ch-ext-ctl", chunked(b"3;a=b\x01\r\nabc\r\n0\r\n\r\n"))
case("ch-ext-at-sign", chunked(b"3;a@b\r\nabc\r\n0\r\n\r\n"))
case("ch-ext-empty-name", chunked(b"3;\r\nabc\r\n0\r\n\r\n"))
case("ch-ext-empty-value", chunked(b"3;a=\r\nabc\r\n0\r\n\r\n"))
case("ch-ext-open-quote", chunked(b'3;a="b\r\nabc\r\n0\r\n\r\n'))
case("ch-ext-quoted-ctl", chunked(b'3;a="b\x01"\r\nabc\r\n0\r\n\r\n'))
case("ch-ext-on-last-chunk", chunked(b"3\r\nabc\r\n0;a=b\r\n\r\n"))
case("ch-ext-5k", chunked(b"3;a=" + b"b" * 5000 + b"\r\nabc\r\n0\r\n\r\n"))
case("ch-no-crlf-after-data", chunked(b"3\r\nabc0\r\n\r\n"))
case("ch-lf-after-data", chunked(b"3\r\nabc\n0\r\n\r\n"))
case("ch-data-longer", chunked(b"3\r\nabcd\r\n0\r\n\r\n"))
case("ch-data-shorter", chunked(b"3\r\nab\r\n0\r\n\r\n"))
case("ch-bare-lf-size", chunked(b"3\nabc\r\n0\r\n\r\n"))
case("ch-bare-lf-last-chunk", chunked(b"3\r\nabc\r\n0\n\r\n"))
case("ch-cr-alone-size", chunked(b"3\rabc\r\n0\r\n\r\n"))
case("ch-size-17-hex-digits", chunked(b"fffffffffffffffff\r\nabc\r\n0\r\n\r\n"))
case("ch-size-max-u64", chunked(b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n"))
case("ch-size-over-max-body", chunked(b"200000\r\nabc\r\n0\r\n\r\n"))
case("ch-size-negative", chunked(b"-3\r\nabc\r\n0\r\n\r\n"))
case("ch-size-0x", chunked(b"0x3\r\nabc\r\n0\r\n\r\n"))
case("ch-size-empty", chunked(b"\r\nabc\r\n0\r\n\r\n"))
case("ch-no-last-chunk", chunked(b"3\r\nabc\r\n"))
case("ch-no-final-crlf", chunked(b"3\r\nabc\r\n0\r\n"))
case("ch-trailer", chunked(b"3\r\nabc\r\n0\r\nX: y\r\n\r\n"))
case("ch-trailer-content-length", chunked(b"3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n"))
case("ch-trailer-transfer-encoding",
     chunked(b"3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"))
case("ch-trailer-host", chunked(b"3\r\nabc\r\n0\r\nHost: other\r\n\r\n"))
case("ch-trailer-obs-fold", chunked(b"3\r\nabc\r\n0\r\nX: a\r\n b\r\n\r\n"))
case("ch-trailer-space-before-colon", chunked(b"3\r\nabc\r\n0\r\nX : y\r\n\r\n"))
case("ch-trailer-empty-name", chunked(b"3\r\nabc\r\n0\r\n: y\r\n\r\n"))
case("ch-trailer-ctl", chunked(b"3\r\nabc\r\n0\r\nX: a\x01\r\n\r\n"))
case("ch-trailer-bare-lf", chunked(b"3\r\nabc\r\n0\r\nX: y\n\r\n"))

# Pipelined requests: the second (and third) must be framed where node frames them.
case("pp-get-get", get(b"/users/a") + CLOSE)
case("pp-get-get-get", get(b"/users/a") + get(b"/users/b") + CLOSE)
case("pp-cl-get", post_cl(b"3") + CLOSE)
case("pp-get-with-body-get", post_cl(b"3", start=b"GET /users/a HTTP/1.1") + CLOSE)
case("pp-chunked-get", chunked(b"3\r\nabc\r\n0\r\n\r\n") + CLOSE)
case("pp-chunked-ext-get", chunked(b"3;a=b\r\nabc\r\n0;c\r\n\r\n") + CLOSE)
case("pp-trailer-get", chunked(b"3\r\nabc\r\n0\r\nX: y\r\n\r\n") + CLOSE)
case("pp-head-get", get(b"/", method=b"HEAD") + CLOSE)
case("pp-http10-get", get(b"/users/a", version=b"HTTP/1.0") + CLOSE)
case("pp-http10-keep-alive-get",
     get(b"/users/a", [b"Connection: keep-alive"], version=b"HTTP/1.0") + CLOSE)
case("pp-close-get", get(b"/users/a", [b"Connection: close"]) + CLOSE)
case("pp-crlf-between", get(b"/users/a") + CRLF + CLOSE)
case("pp-lf-between", get(b"/users/a") + b"\n" + CLOSE)
case("pp-lower-second", get(b"/users/a") + get(b"/users/z", [b"Connection: close"],
                                                method=b"get"))
case("pp-absolute-second", get(b"/users/a") + get(b"http://h/users/z", [b"Connection: close"]))
case("pp-cl-longer-than-body", post_cl(b"2") + CLOSE)
case("pp-space-after-size-get", chunked(b"3 \r\nabc\r\n0\r\n\r\n") + CLOSE)
case("pp-trailer-cl-get", chunked(b"3\r\nabc\r\n0\r\nContent-Length: 40\r\n\r\n") + CLOSE)
case("pp-te-list-get", post_te(b"chunked, ,") + CLOSE)
case("pp-expect-get", post_cl(b"3", fields=[b"Expect: 100-continue"]) + CLOSE)
case("pp-get-junk", get(b"/users/a") + b"junk\r\n\r\n")


# ---------------------------------------------------------------------------------------
# What opreg's routes answer (mirrors integrations/http/app.cpp and router.cpp): the
# status, and the body when it shows the routed path or the framed body (None: not
# compared). HEAD is routed like GET and gets no body.

def json_string(raw):
    """app.cpp's append_json_string: escape '"' and '\\', \\u00XX below 0x20, rest raw."""
    out = bytearray(b'"')
    for c in raw:
        if c in (0x22, 0x5C):
            out += b"\\" + bytes([c])
        elif c < 0x20:
            out += b"\\u%04x" % c
        else:
            out.append(c)
    return bytes(out + b'"')


def expected_answer(method, path, body):
    if not path.startswith(b"/"):
        return 404, None
    segs = [] if path == b"/" else path[1:].split(b"/")
    if segs == []:
        allowed, answer = "GET", b"Hello, World!"
    elif segs == [b"json"]:
        allowed, answer = "GET", b'{"message":"Hello, World!"}'
    elif len(segs) == 2 and segs[0] == b"users" and segs[1] != b"":
        allowed, answer = "GET", b'{"id":' + json_string(segs[1]) + b"}"
    elif segs == [b"echo"]:
        allowed, answer = "POST", body
    elif segs == [b"stats"]:
        allowed, answer = "GET", None  # counters change: status only
    else:
        return 404, None
    if method == allowed:
        return 200, answer
    if method == "HEAD" and allowed == "GET":
        return 200, b""
    return 405, None


SCHEME_RE = re.compile(rb"^[A-Za-z][A-Za-z0-9+.-]*://")


def routed_path(url):
    """The path node's URL names: up to '?' or '#'; for absolute-form, the path after the
    authority ("" counts as "/"); asterisk and authority-form are returned as they are."""
    if url.startswith(b"/"):
        return re.split(rb"[?#]", url, maxsplit=1)[0]
    m = SCHEME_RE.match(url)
    if m:
        rest = url[m.end():]
        start = re.search(rb"[/?#]", rest)
        path = b"" if start is None else rest[start.start():]
        path = re.split(rb"[?#]", path, maxsplit=1)[0]
        return path or b"/"
    return url


# ---------------------------------------------------------------------------------------
# node

def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def node_timeout():
    return max(1.0, min(NODE_TIMEOUT_S, DEADLINE - time.monotonic()))


def node_available(node):
    """None when node and its llhttp binding work, else why not."""
    if node is None:
        return "node not found on PATH"
    if not os.path.isfile(NODE_SCRIPT):
        return f"{NODE_SCRIPT} is missing"
    try:
        r = subprocess.run([node, NODE_SCRIPT, "--probe"], capture_output=True, text=True,
                           timeout=node_timeout())
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run {node}: {e}"
    if r.returncode != 0 or r.stdout.strip() != "ok":
        lines = (r.stderr.strip() or r.stdout.strip()).splitlines()
        errors = [ln for ln in lines if "Error" in ln or "failed" in ln]
        said = (errors or lines or [f"exit status {r.returncode}"])[0].strip()[:300]
        return f"{node} {os.path.basename(NODE_SCRIPT)} --probe failed (no usable " \
               f"process.binding('http_parser')?): {said}"
    return None


def llhttp_version(node):
    r = subprocess.run([node, "-p", "process.versions.llhttp"], capture_output=True, text=True,
                       timeout=node_timeout())
    return r.stdout.strip() or "unknown"


def node_verdicts(node, inputs):
    payload = json.dumps([base64.b64encode(b).decode() for b in inputs])
    r = subprocess.run([node, NODE_SCRIPT], input=payload, capture_output=True, text=True,
                       timeout=node_timeout())
    if r.returncode != 0:
        raise RuntimeError(f"node_verdicts.js failed ({r.returncode}): {r.stderr.strip()}")
    out = json.loads(r.stdout)
    if len(out) != len(inputs):
        raise RuntimeError("node_verdicts.js gave the wrong number of verdicts")
    return out


def node_chains(node):
    """Per case, node's verdicts on its requests in order: the first request, then the
    bytes after each accepted one, while the connection would stay open. One node run per
    position, all cases at once."""
    chains = [[] for _ in CASES]
    offsets = [0] * len(CASES)
    todo = list(range(len(CASES)))
    while todo:
        verdicts = node_verdicts(node, [CASES[i][1][offsets[i]:] for i in todo])
        next_todo = []
        for i, v in zip(todo, verdicts):
            chains[i].append(v)
            if not v["accepted"]:
                continue
            offsets[i] += v["consumed"]
            v["rest"] = len(CASES[i][1]) - offsets[i]
            # After a message that closes the connection or switches protocols (CONNECT),
            # the bytes that follow are not HTTP requests to this parser.
            if (v["rest"] > 0 and v["keep_alive"] and not v["upgrade"]
                    and len(chains[i]) < MAX_MESSAGES):
                next_todo.append(i)
        todo = next_todo
    return chains


# ---------------------------------------------------------------------------------------
# opreg-httpd

class Server:
    """One opreg-httpd for the whole run, on a port it picks."""

    def __init__(self, binary):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary, "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        line = b""
        deadline = time.monotonic() + SERVER_START_S
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    break
                line += ch
        m = re.match(rb"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError(f"server did not start: {line!r} {self.stderr_tail()}")
        self.port = int(m.group(1))
        # Keep reading stdout so that the server never blocks writing to it.
        threading.Thread(target=lambda: self.proc.stdout.read(), daemon=True).start()

    def stderr_tail(self):
        self.log.seek(0)
        return self.log.read()[-2000:].decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=SERVER_STOP_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def exchange(port, data):
    """Sends `data` on a fresh connection, shuts our side, and reads until the server closes.
    Returns (bytes read, whether the case's time ran out before the close)."""
    deadline = time.monotonic() + CASE_BUDGET_S
    got = bytearray()
    timed_out = True
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered early and closed; read what it sent
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, min(SOCKET_TIMEOUT_S, deadline - time.monotonic())))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                timed_out = False
                break  # reset: keep what came before it
            if not chunk:
                timed_out = False
                break
            got += chunk
    return bytes(got), timed_out


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


def parse_responses(data, is_head):
    """The final (non-1xx) responses in `data`, in order. is_head(k): whether the k-th
    request was HEAD (its response has no body)."""
    out = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = data[pos:end].split(b"\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3}) ", lines[0])
        if not m:
            break
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        pos = end + 4
        status = int(m.group(1))
        if 100 <= status < 200:
            continue
        length = 0 if is_head(len(out)) else int(headers.get(b"content-length", b"0"))
        out.append(Response(status, headers, data[pos:pos + length]))
        pos += length
    return out


# ---------------------------------------------------------------------------------------
# Comparison

def first_method_is_head(data):
    return data.lstrip(b"\r\n").startswith(b"HEAD ")


def describe_node(v):
    if not v["accepted"]:
        return v["code"]
    return f"{v['method']} {v['url'][:60]} body={v['body_len']}"


def describe_opreg(r):
    if r is None:
        return "no answer"
    text = f"{r.status}"
    if r.status == 200:
        body = r.body[:60].decode("latin-1")
        text += f" {body!r}" if r.body.startswith(b'{"id"') else f" body={len(r.body)}"
    return text


def judge(chain, responses):
    """(kind, message index, detail) for one case."""
    for k, v in enumerate(chain):
        r = responses[k] if k < len(responses) else None
        node_ok = v["accepted"]
        opreg_ok = r is not None and is_accepted_status(r.status)
        detail = f"node: {describe_node(v)}  opreg: {describe_opreg(r)}"
        if not node_ok and not opreg_ok:
            return "agree", k, detail
        if node_ok and not opreg_ok:
            return "stricter", k, detail
        if not node_ok and opreg_ok:
            return "lenient", k, detail
        url = v["url"].encode("latin-1", errors="replace")
        want_status, want_body = expected_answer(v["method"], routed_path(url),
                                                 base64.b64decode(v["body"]))
        if r.status != want_status or (want_body is not None and r.body != want_body):
            want = describe_opreg(Response(want_status, {}, want_body or b""))
            return "routed-differently", k, detail + f"  (node's parse implies {want})"
    # Every request node framed agrees. More answers from opreg mean it framed the bytes
    # into more requests than node did (or kept a connection node would close).
    last = chain[-1]
    if last["accepted"] and not last["upgrade"] and len(responses) > len(chain):
        extra = responses[len(chain)]
        return ("routed-differently", len(chain),
                f"node: framed {len(chain)} request(s), {last['rest']} byte(s) after  "
                f"opreg: answered {len(responses)}, next {describe_opreg(extra)}")
    return "agree", len(chain) - 1, f"node: {describe_node(last)}"


def main():
    ap = argparse.ArgumentParser(
        description="Framing differential test: opreg-httpd against node's strict llhttp "
                    "parser. Exit 0: every case agrees or is an allowed stricter one; 1: "
                    "a disagreement; 77: skipped (no node or no llhttp binding).")
    ap.add_argument("--server", required=True, help="path to the opreg-httpd binary")
    ap.add_argument("--node", default=None, help="node binary (default: node on PATH)")
    ap.add_argument("--verbose", action="store_true", help="print every case, not only "
                    "those that do not agree")
    args = ap.parse_args()
    start = time.monotonic()
    global DEADLINE
    DEADLINE = start + RUN_BUDGET_S

    if not (os.path.isfile(args.server) and os.access(args.server, os.X_OK)):
        print(f"error: {args.server} is not an executable file", file=sys.stderr)
        return 2
    node = args.node if args.node else shutil.which("node")
    if args.node and not shutil.which(args.node):
        skip(f"{args.node} not found")
    why = node_available(node)
    if why:
        skip(why)
    for name in STRICTER_BY_DESIGN:
        if all(name != n for n, _ in CASES):
            print(f"warning: STRICTER_BY_DESIGN names no case: {name}")

    llhttp = llhttp_version(node)
    print(f"node {node}, llhttp {llhttp}")
    try:
        chains = node_chains(node)
    except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
        print(f"error: node verdicts: {e}")
        return 1

    try:
        server = Server(args.server)
    except (OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = {"agree": 0, "stricter": 0, "lenient": 0, "routed-differently": 0}
    stricter_seen = set()
    failed = False
    try:
        for (name, data), chain in zip(CASES, chains):
            if time.monotonic() > DEADLINE:
                print(f"error: out of time ({RUN_BUDGET_S} s) at case {name}")
                return 1
            try:
                raw, timed_out = exchange(server.port, data)
            except OSError as e:
                print(f"error: {name}: cannot talk to the server: {e} "
                      f"{server.stderr_tail()}")
                return 1

            def is_head(k, data=data, chain=chain):
                if k == 0:
                    return first_method_is_head(data)
                return k < len(chain) and chain[k].get("method") == "HEAD"

            kind, k, detail = judge(chain, parse_responses(raw, is_head))
            counts[kind] += 1
            note = ""
            if timed_out:
                # Every case ends with our FIN, so the server must answer and close at once.
                failed = True
                note += f"  [no close within {CASE_BUDGET_S} s]"
            if kind in ("lenient", "routed-differently"):
                failed = True
            elif kind == "stricter":
                stricter_seen.add(name)
                if name in STRICTER_BY_DESIGN:
                    note += f"  [by design: {STRICTER_BY_DESIGN[name]}]"
                elif llhttp != LLHTTP_LISTED:
                    note += f"  [not in STRICTER_BY_DESIGN; llhttp {llhttp}, listed for {LLHTTP_LISTED}]"
                else:
                    failed = True
                    note += "  [not in STRICTER_BY_DESIGN]"
            if kind != "agree" or timed_out or args.verbose:
                where = f" (request {k + 1})" if k > 0 else ""
                print(f"{kind:<19} {name:<34} {detail}{where}{note}")
        if server.proc.poll() is not None:
            print(f"error: the server exited ({server.proc.returncode}): "
                  f"{server.stderr_tail()}")
            return 1
    finally:
        server.stop()

    for name in STRICTER_BY_DESIGN:
        # Not a failure: the owner may drop the entry once opreg and node agree on it.
        if name not in stricter_seen:
            print(f"note: STRICTER_BY_DESIGN entry {name} is no longer stricter")
    print(f"{counts['agree']} agree, {counts['stricter']} stricter, {counts['lenient']} "
          f"lenient, {counts['routed-differently']} routed differently "
          f"({len(CASES)} cases, {time.monotonic() - start:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
