// SPDX-License-Identifier: Apache-2.0
// parse_head and chunked_decoder: one focused case per rule of http_parser.hpp, then the
// properties every input must have (prefix consistency, no read past the input), checked
// with each input ending right before a PROT_NONE guard page.
#include "guard_page.hpp"
#include "http_parser.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::string_literals;
using namespace opreg::http;
using opreg::http::test_fixtures::guard_page_buffer;

std::string get(std::string_view extra_headers = {}, std::string_view version = "HTTP/1.1") {
    return "GET / "s + std::string(version) + "\r\nHost: h\r\n" + std::string(extra_headers) + "\r\n";
}

head_result parse(std::string_view s, request& r, const limits& lim = {}) { return parse_head(s, r, lim); }

head_result parse(std::string_view s, const limits& lim = {}) {
    request r;
    return parse_head(s, r, lim);
}

bool inside(std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// Every view of a complete request points into the buffer it was parsed from.
void expect_views_inside(const request& r, std::string_view buf) {
    EXPECT_TRUE(inside(r.method, buf));
    EXPECT_TRUE(inside(r.target, buf));
    EXPECT_TRUE(inside(r.host, buf));
    for (std::size_t k = 0; k < r.header_count; ++k) {
        EXPECT_TRUE(inside(r.headers[k].name, buf));
        EXPECT_TRUE(inside(r.headers[k].value, buf));
    }
}

void expect_same_request(const request& a, const request& b) {
    EXPECT_EQ(a.method, b.method);
    EXPECT_EQ(a.target, b.target);
    EXPECT_EQ(a.version_minor, b.version_minor);
    ASSERT_EQ(a.header_count, b.header_count);
    for (std::size_t k = 0; k < a.header_count; ++k) {
        EXPECT_EQ(a.headers[k].name, b.headers[k].name);
        EXPECT_EQ(a.headers[k].value, b.headers[k].value);
    }
    EXPECT_EQ(a.keep_alive, b.keep_alive);
    EXPECT_EQ(a.chunked, b.chunked);
    EXPECT_EQ(a.has_content_length, b.has_content_length);
    EXPECT_EQ(a.content_length, b.content_length);
    EXPECT_EQ(a.expect_continue, b.expect_continue);
    EXPECT_EQ(a.host, b.host);
}

// Parses `input` whole and then prefixes of it, each placed to end right before a guard page
// (so an over-read faults). The prefixes must all be `incomplete` until the byte that
// decides, and from there on give exactly the whole input's answer. Every prefix is tried
// for small inputs; for large ones, those near the start, the end and the deciding byte.
void expect_prefix_consistent(std::string_view input, const limits& lim = {}) {
    SCOPED_TRACE(testing::Message() << "input of " << input.size() << " bytes: "
                                    << std::string(input.substr(0, 80)));
    guard_page_buffer guard(input.size());
    // The whole input is parsed in the caller's memory: its views must outlive the guard
    // buffer's reuse for the prefixes below.
    request whole_req;
    const head_result whole = parse(input, whole_req, lim);
    if (whole.st == status::complete) expect_views_inside(whole_req, input);
    {
        request r;
        const head_result at_guard = parse(guard.place(input), r, lim);
        EXPECT_EQ(at_guard.st, whole.st);
        EXPECT_EQ(at_guard.consumed, whole.consumed);
    }
    if (whole.st == status::error) {
        EXPECT_LT(whole.consumed, input.size()) << "the deciding byte lies inside the input";
        EXPECT_FALSE(whole.reason.empty());
    }
    // The first prefix that may answer: through the deciding byte.
    const std::size_t decides = whole.st == status::complete ? whole.consumed
                                : whole.st == status::error  ? whole.consumed + 1
                                                             : input.size() + 1;

    std::vector<std::size_t> lengths;
    for (std::size_t len = 0; len <= input.size(); ++len) {
        const bool near = len < 64 || input.size() - len < 64 || (len + 64 > decides && len < decides + 64);
        if (input.size() <= 2048 || near || len % 997 == 0) lengths.push_back(len);
    }
    for (std::size_t len : lengths) {
        const std::string_view prefix = guard.place(input.substr(0, len));
        request r;
        const head_result got = parse(prefix, r, lim);
        if (len < decides) {
            ASSERT_EQ(got.st, status::incomplete) << "prefix of " << len << " bytes answered early: "
                                                  << got.http_status << " " << got.reason;
            continue;
        }
        ASSERT_EQ(got.st, whole.st) << "prefix of " << len << " bytes";
        EXPECT_EQ(got.consumed, whole.consumed) << "prefix of " << len << " bytes";
        EXPECT_EQ(got.http_status, whole.http_status) << "prefix of " << len << " bytes";
        EXPECT_EQ(got.reason, whole.reason) << "prefix of " << len << " bytes";
        if (got.st == status::complete) {
            expect_same_request(r, whole_req);
            expect_views_inside(r, prefix);
        }
    }
}

// ---- valid heads ----------------------------------------------------------------------------

TEST(ParseHead, ValidGet) {
    const std::string in = "GET /users/7?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    request r;
    const head_result res = parse(in, r);
    ASSERT_EQ(res.st, status::complete);
    EXPECT_EQ(res.consumed, in.size());
    EXPECT_EQ(res.http_status, 0);
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/users/7?x=1");
    EXPECT_EQ(r.version_minor, 1);
    ASSERT_EQ(r.header_count, 2u);
    EXPECT_EQ(r.headers[0].name, "Host");
    EXPECT_EQ(r.headers[0].value, "example.com");
    EXPECT_EQ(r.headers[1].name, "Accept");
    EXPECT_EQ(r.headers[1].value, "*/*");
    EXPECT_EQ(r.host, "example.com");
    EXPECT_TRUE(r.keep_alive);
    EXPECT_FALSE(r.chunked);
    EXPECT_FALSE(r.has_content_length);
    EXPECT_FALSE(r.expect_continue);
    expect_views_inside(r, in);
    expect_prefix_consistent(in);
}

TEST(ParseHead, IncompleteUntilTheLastByteThenSameAsWhole) {
    for (const std::string& in : {get(), get("Content-Length: 3\r\nX: y\r\n"), "\r\n\r\n"s + get(),
                                 "OPTIONS * HTTP/1.0\r\n\r\n"s}) {
        request whole;
        ASSERT_EQ(parse(in, whole).st, status::complete) << in;
        std::string fed;
        for (std::size_t k = 0; k < in.size(); ++k) {
            fed += in[k];
            request r;
            const head_result res = parse(fed, r);
            if (k + 1 < in.size()) {
                ASSERT_EQ(res.st, status::incomplete) << in << " after " << fed.size() << " bytes";
            } else {
                ASSERT_EQ(res.st, status::complete);
                EXPECT_EQ(res.consumed, in.size());
                expect_same_request(r, whole);
            }
        }
    }
}

TEST(ParseHead, ValuesAreTrimmedAndMayBeEmptyOrObsText) {
    const std::string in = get("A:  x y \t\r\nB:\r\nC: \t \r\nD: caf\xc3\xa9\xff\r\nE:\tq\r\n");
    request r;
    ASSERT_EQ(parse(in, r).st, status::complete);
    ASSERT_EQ(r.header_count, 6u);
    EXPECT_EQ(r.headers[1].value, "x y");
    EXPECT_EQ(r.headers[2].value, "");
    EXPECT_EQ(r.headers[3].value, "");
    EXPECT_EQ(r.headers[4].value, "caf\xc3\xa9\xff");
    EXPECT_EQ(r.headers[5].value, "q");
    expect_prefix_consistent(in);
}

TEST(ParseHead, TargetFormsAndWhatIsRouted) {
    struct row {
        std::string in;
        std::string_view path, host;
    };
    const row rows[] = {
        {get(), "/", "h"},
        {"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "*", "h"},
        // absolute-form: routed by its path, answered for its authority (RFC 9112 §3.2.2)
        {"GET http://a.org:1234/x?\"q\"|{} HTTP/1.1\r\nHost: h\r\n\r\n", "/x?\"q\"|{}", "a.org:1234"},
        {"GET HTTP://A.org/users/v HTTP/1.1\r\nHost: h\r\n\r\n", "/users/v", "A.org"},
        {"GET hTtPs://a/ HTTP/1.1\r\nHost: h\r\n\r\n", "/", "a"},
        {"GET http://a HTTP/1.1\r\nHost: h\r\n\r\n", "/", "a"},
        {"GET http://a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", "/", "a"},
        {"GET http://[::1]:80/v HTTP/1.0\r\n\r\n", "/v", "[::1]:80"},
        {"CONNECT a.org:443 HTTP/1.1\r\nHost: a.org:443\r\n\r\n", "", "a.org:443"},
    };
    for (const row& x : rows) {
        SCOPED_TRACE(x.in);
        request r;
        ASSERT_EQ(parse(x.in, r).st, status::complete);
        EXPECT_EQ(r.path, x.path);
        EXPECT_EQ(r.host, x.host);
        expect_prefix_consistent(x.in);
    }
}

TEST(ParseHead, KnownMethodsAreCaseSensitive) {
    for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"}) {
        const std::string in = std::string(m) + " / HTTP/1.1\r\nHost: h\r\n\r\n";
        request r;
        ASSERT_EQ(parse(in, r).st, status::complete) << m;
        EXPECT_EQ(r.method, m);
    }
    for (const char* m : {"get", "GeT", "GET!", "FOO", "M-SEARCH", "PRI", "GETGET"}) {
        const head_result res = parse(std::string(m) + " / HTTP/1.1\r\nHost: h\r\n\r\n");
        EXPECT_EQ(res.st, status::error) << m;
        EXPECT_EQ(res.http_status, 501) << m;
        EXPECT_EQ(res.consumed, std::string_view(m).size()) << m << ": decided at the SP after it";
    }
}

TEST(ParseHead, KeepAliveDefaultsAndConnectionTokens) {
    struct row { std::string in; bool keep_alive; };
    const row rows[] = {
        {get(), true},
        {get("Connection: close\r\n"), false},
        {get("Connection: Keep-Alive, CLOSE\r\n"), false},
        {get("Connection: upgrade, ,close \r\n"), false},
        {get("Connection: closed\r\n"), true},  // a different token
        {get("Connection: keep-alive\r\nConnection: close\r\n"), false},
        {get({}, "HTTP/1.0"), false},
        {get("Connection: keep-alive\r\n", "HTTP/1.0"), true},
        {get("Connection: foo,KEEP-ALIVE\r\n", "HTTP/1.0"), true},
        {get("Connection: keep-alive, close\r\n", "HTTP/1.0"), false},
        {"GET / HTTP/1.0\r\n\r\n", false},  // HTTP/1.0 needs no Host
    };
    for (const row& x : rows) {
        request r;
        ASSERT_EQ(parse(x.in, r).st, status::complete) << x.in;
        EXPECT_EQ(r.keep_alive, x.keep_alive) << x.in;
    }
}

TEST(ParseHead, LeadingEmptyLinesAreSkipped) {
    const std::string in = "\r\n\r\n" + get();
    request r;
    const head_result res = parse(in, r);
    ASSERT_EQ(res.st, status::complete);
    EXPECT_EQ(res.consumed, in.size());
    EXPECT_EQ(r.method, "GET");
    expect_prefix_consistent(in);
}

TEST(ParseHead, PipelinedHeadsOneAfterAnother) {
    const std::string a = get("Content-Length: 4\r\n");
    const std::string b = "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string c = "GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    const std::string stream = a + "abcd" + b + "3\r\nxyz\r\n0\r\n\r\n" + c;

    std::string_view rest = stream;
    request r;
    head_result res = parse(rest, r);
    ASSERT_EQ(res.st, status::complete);
    EXPECT_EQ(res.consumed, a.size());
    ASSERT_TRUE(r.has_content_length);
    EXPECT_EQ(r.content_length, 4u);
    rest.remove_prefix(res.consumed + r.content_length);

    res = parse(rest, r);
    ASSERT_EQ(res.st, status::complete);
    EXPECT_EQ(res.consumed, b.size());
    EXPECT_EQ(r.target, "/echo");
    ASSERT_TRUE(r.chunked);
    rest.remove_prefix(res.consumed);
    chunked_decoder dec;
    std::string body;
    const body_result body_res = dec.feed(rest, body);
    ASSERT_EQ(body_res.st, status::complete);
    EXPECT_EQ(body, "xyz");
    rest.remove_prefix(body_res.consumed);

    res = parse(rest, r);
    ASSERT_EQ(res.st, status::complete);
    EXPECT_EQ(res.consumed, rest.size());
    EXPECT_EQ(r.target, "/last");
    EXPECT_FALSE(r.keep_alive);
}

TEST(ParseHead, FramingFields) {
    request r;
    ASSERT_EQ(parse(get("Content-Length: 007\r\n"), r).st, status::complete);
    EXPECT_TRUE(r.has_content_length);
    EXPECT_EQ(r.content_length, 7u);
    ASSERT_EQ(parse(get("content-LENGTH:  0 \r\n"), r).st, status::complete);
    EXPECT_TRUE(r.has_content_length);
    EXPECT_EQ(r.content_length, 0u);
    ASSERT_EQ(parse(get("Transfer-Encoding: Chunked\r\n"), r).st, status::complete);
    EXPECT_TRUE(r.chunked);
    EXPECT_FALSE(r.has_content_length);
    ASSERT_EQ(parse(get("Transfer-Encoding:  chunked \r\n"), r).st, status::complete);
    EXPECT_TRUE(r.chunked);
    ASSERT_EQ(parse(get("X:\tTransfer-Encoding\t\r\n"), r).st, status::complete) << "HT is OWS elsewhere";
    ASSERT_EQ(parse(get("Expect: 100-Continue\r\n"), r).st, status::complete);
    EXPECT_TRUE(r.expect_continue);
    ASSERT_EQ(parse(get("Expect: 100-continue\r\n", "HTTP/1.0"), r).st, status::complete);
    EXPECT_FALSE(r.expect_continue) << "an HTTP/1.0 client does not wait for 100 Continue";
    const limits lim;
    ASSERT_EQ(parse(get("Content-Length: " + std::to_string(lim.max_body) + "\r\n"), r).st, status::complete);
    EXPECT_EQ(r.content_length, lim.max_body);
}

TEST(ParseHead, EmptyBufferIsIncomplete) {
    EXPECT_EQ(parse("").st, status::incomplete);
    EXPECT_EQ(parse("\r").st, status::incomplete);
    EXPECT_EQ(parse("\r\n").st, status::incomplete);
}

// ---- errors, one per rule -------------------------------------------------------------------

struct bad_case {
    const char* rule;
    std::string in;
    int status;
};

std::vector<bad_case> bad_cases() {
    const std::string cl_over = std::to_string(limits{}.max_body + 1);
    return {
        // line endings
        {"bare LF ends the request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
        {"bare LF ends a field line", "GET / HTTP/1.1\r\nHost: h\n\r\n", 400},
        {"bare LF ends the head", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
        {"bare LF as the whole head", "\n", 400},
        {"CR without LF in a value", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\rB: 2\r\n\r\n", 400},
        {"CR without LF after the version", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
        {"CR then junk instead of the empty line", "GET / HTTP/1.1\r\nHost: h\r\n\rZ", 400},
        // request line
        {"invalid method character", "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"empty method", " / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"two spaces after the method", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"tab instead of a space", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"space inside the target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"byte >= 0x80 in the target", "GET /\xce\xb4 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"control byte in the target", "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"no version (HTTP/0.9 form)", "GET /\r\n\r\n", 400},
        {"lower-case protocol", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
        {"other protocol", "GET / ICE/1.0\r\nHost: h\r\n\r\n", 400},
        {"garbage version", "GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400},
        {"two-digit major", "GET / HTTP/11.1\r\nHost: h\r\n\r\n", 400},
        {"version without minor", "GET / HTTP/2\r\nHost: h\r\n\r\n", 400},
        {"space after the version", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
        {"HTTP/0.9 spelled out", "GET / HTTP/0.9\r\n\r\n", 505},
        {"HTTP/5.6 with the head cut short", "GET / HTTP/5.6", 505},
        // field lines
        {"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n 2\r\n\r\n", 400},
        {"obs-fold with a tab", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\t2\r\n\r\n", 400},
        {"whitespace before the first field", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
        {"whitespace between name and colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
        {"tab between name and colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400},
        {"empty field name", "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400},
        {"invalid field name character", "GET / HTTP/1.1\r\nHost: h\r\nFo@: v\r\n\r\n", 400},
        {"field line without a colon", "GET / HTTP/1.1\r\nHost: h\r\nname\r\n\r\n", 400},
        {"NUL in a value", "GET / HTTP/1.1\r\nHost: h\r\nA: x\0y\r\n\r\n"s, 400},
        {"form feed in a value", "GET / HTTP/1.1\r\nHost: h\r\nA: x\fy\r\n\r\n", 400},
        {"DEL in a value", "GET / HTTP/1.1\r\nHost: h\r\nA: x\x7fy\r\n\r\n", 400},
        {"ESC in a value", "GET / HTTP/1.1\r\nHost: h\r\nA: \x1b\r\n\r\n", 400},
        // Host
        {"missing Host in HTTP/1.1", "GET / HTTP/1.1\r\nA: b\r\n\r\n", 400},
        {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
        {"two Hosts in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400},
        {"whitespace inside Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
        {"slash in Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
        // Content-Length
        {"Content-Length with Transfer-Encoding", get("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400},
        {"Transfer-Encoding with Content-Length", get("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"), 400},
        {"conflicting Content-Lengths", get("Content-Length: 5\r\nContent-Length: 6\r\n"), 400},
        {"repeated equal Content-Lengths", get("Content-Length: 5\r\nContent-Length: 5\r\n"), 400},
        {"Content-Length list", get("Content-Length: 5, 5\r\n"), 400},
        {"Content-Length with a sign", get("Content-Length: +5\r\n"), 400},
        {"negative Content-Length", get("Content-Length: -1\r\n"), 400},
        {"hex Content-Length", get("Content-Length: 0x10\r\n"), 400},
        {"Content-Length with inner space", get("Content-Length: 4 2\r\n"), 400},
        {"empty Content-Length", get("Content-Length:\r\n"), 400},
        {"Content-Length overflow", get("Content-Length: 1000000000000000000000\r\n"), 400},
        {"Content-Length of 2^64", get("Content-Length: 18446744073709551616\r\n"), 400},
        {"Content-Length over max_body", get("Content-Length: " + cl_over + "\r\n"), 413},
        // Transfer-Encoding
        {"gzip", get("Transfer-Encoding: gzip\r\n"), 501},
        {"identity", get("Transfer-Encoding: identity\r\n"), 501},
        {"unknown coding", get("Transfer-Encoding: pigeons\r\n"), 501},
        {"chunkedchunked", get("Transfer-Encoding: chunkedchunked\r\n"), 501},
        {"gzip before chunked", get("Transfer-Encoding: gzip, chunked\r\n"), 501},
        {"chunked before gzip", get("Transfer-Encoding: chunked, gzip\r\n"), 400},
        {"chunked twice", get("Transfer-Encoding: chunked, chunked\r\n"), 400},
        {"chunked on two lines", get("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400},
        {"chunked then another line", get("Transfer-Encoding: chunked\r\nTransfer-Encoding: deflate\r\n"), 400},
        {"chunked with a parameter", get("Transfer-Encoding: chunked;q=1\r\n"), 400},
        {"empty Transfer-Encoding", get("Transfer-Encoding:\r\n"), 400},
        {"malformed coding", get("Transfer-Encoding: chunked chunked\r\n"), 400},
        {"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        // where RFC 9112 allows leniency that node and nginx refuse
        {"empty element before chunked", get("Transfer-Encoding: , chunked\r\n"), 400},
        {"empty element after chunked", get("Transfer-Encoding: chunked,\r\n"), 400},
        {"empty element between", get("Transfer-Encoding: gzip, ,chunked\r\n"), 400},
        {"tab after the colon of Transfer-Encoding", get("Transfer-Encoding:\tchunked\r\n"), 400},
        {"tab after the value of Transfer-Encoding", get("Transfer-Encoding: chunked\t\r\n"), 400},
        {"tabs around Content-Length", get("Content-Length:\t5\t\r\n"), 400},
        {"tab after Content-Length", get("Content-Length: 5 \t \r\n"), 400},
        // methods (RFC 9110 §9.1: case-sensitive; unknown is 501)
        {"lower-case method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
        {"unknown token method", "GET! / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
        // request-target forms (RFC 9112 §3.2)
        {"asterisk-form on GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"authority-form on GET", "GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"relative target", "GET users/v HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"CONNECT with origin-form", "CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"CONNECT without a port", "CONNECT h HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"CONNECT with a path", "CONNECT h:80/x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"absolute-form with another scheme", "GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"absolute-form with userinfo", "GET http://u:p@h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"absolute-form with an empty authority", "GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"scheme without //", "GET http:h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"absolute-form still needs Host in HTTP/1.1", "GET http://h/x HTTP/1.1\r\n\r\n", 400},
        {"fragment in the target", "GET /users/v#f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    };
}

TEST(ParseHead, EachRuleRefusesItsShape) {
    for (const bad_case& c : bad_cases()) {
        SCOPED_TRACE(c.rule);
        const head_result res = parse(c.in);
        ASSERT_EQ(res.st, status::error);
        EXPECT_EQ(res.http_status, c.status) << res.reason;
        EXPECT_FALSE(reason_phrase(res.http_status).empty());
        expect_prefix_consistent(c.in);
    }
}

// ---- limits ---------------------------------------------------------------------------------

std::string long_target_request(std::size_t line_len) {
    const std::string fixed = "GET / HTTP/1.1";
    return "GET /" + std::string(line_len - fixed.size(), 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n";
}

TEST(ParseHeadLimits, RequestLine) {
    const limits lim;
    EXPECT_EQ(parse(long_target_request(lim.max_request_line)).st, status::complete);
    const std::string over = long_target_request(lim.max_request_line + 1);
    const head_result res = parse(over);
    ASSERT_EQ(res.st, status::error);
    EXPECT_EQ(res.http_status, 414);
    expect_prefix_consistent(over);
    // Refused as soon as the line is too long, before its end has arrived.
    EXPECT_EQ(parse(over.substr(0, lim.max_request_line + 1)).http_status, 414);
    EXPECT_EQ(parse(std::string(lim.max_request_line + 1, 'G')).http_status, 414);
    // An endless run of empty lines is bounded by the same limit.
    std::string crlfs;
    while (crlfs.size() <= lim.max_request_line) crlfs += "\r\n";
    EXPECT_EQ(parse(crlfs).http_status, 414);
}

std::string with_header_section(std::size_t section_bytes) {
    // One field "X: aaa..." sized so that the section (field line + empty line) is exact.
    const std::string host = "Host: h\r\n";
    const std::size_t fixed = host.size() + std::string("X: \r\n\r\n").size();
    return "GET / HTTP/1.1\r\n" + host + "X: " + std::string(section_bytes - fixed, 'a') + "\r\n\r\n";
}

TEST(ParseHeadLimits, HeaderSectionBytes) {
    const limits lim;
    EXPECT_EQ(parse(with_header_section(lim.max_header_bytes)).st, status::complete);
    const std::string over = with_header_section(lim.max_header_bytes + 1);
    ASSERT_EQ(parse(over).http_status, 431);
    expect_prefix_consistent(over);
    // Refused before the head is complete.
    const std::string partial = "GET / HTTP/1.1\r\nX: " + std::string(lim.max_header_bytes, 'a');
    EXPECT_EQ(parse(partial).http_status, 431);
}

std::string with_fields(std::size_t n) {
    std::string s = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (std::size_t k = 1; k < n; ++k) s += "X" + std::to_string(k) + ": v\r\n";
    return s + "\r\n";
}

TEST(ParseHeadLimits, FieldCount) {
    request r;
    ASSERT_EQ(parse(with_fields(100), r).st, status::complete);
    EXPECT_EQ(r.header_count, 100u);
    const std::string over = with_fields(101);
    ASSERT_EQ(parse(over).http_status, 431);
    expect_prefix_consistent(over);
    // A larger configured maximum is capped at the array's capacity.
    limits big;
    big.max_headers = 1000;
    EXPECT_EQ(parse(over, big).http_status, 431);
}

TEST(ParseHeadLimits, CustomLimits) {
    limits lim;
    lim.max_request_line = 16;
    lim.max_header_bytes = 32;
    lim.max_headers = 2;
    lim.max_body = 10;
    EXPECT_EQ(parse("GET /0123456789 HTTP/1.1\r\nHost: h\r\n\r\n", lim).http_status, 414);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n", lim).st, status::complete);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\nA: b\r\nC: d\r\n\r\n", lim).http_status, 431);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\nA: 0123456789012345678\r\n\r\n", lim).http_status, 431);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", lim).http_status, 413);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", lim).st, status::complete);
    for (const std::string& in : {"GET /0123456789 HTTP/1.1\r\nHost: h\r\n\r\n"s,
                                 "GET / HTTP/1.1\r\nHost: h\r\nA: 0123456789012345678\r\n\r\n"s})
        expect_prefix_consistent(in, lim);
}

// ---- properties over every input above --------------------------------------------------------

TEST(ParseHead, EveryPrefixOfValidInputsStopsAtTheGuardPage) {
    for (const std::string& in :
         {get(), get("Content-Length: 10\r\nConnection: keep-alive, close\r\nExpect: 100-continue\r\n"),
          get("Transfer-Encoding: chunked\r\nA:\r\nB: \xff\r\n"), "\r\n"s + get({}, "HTTP/1.0"),
          "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\n"s})
        expect_prefix_consistent(in);
}

// ---- chunked_decoder ------------------------------------------------------------------------

struct decoded {
    body_result res;
    std::string body;
    std::size_t consumed = 0;  // over all feeds
};

// Feeds `in` in pieces of the given sizes (the rest in one last piece), stopping at the first
// answer that is not `incomplete`, as a connection would.
decoded decode(std::string_view in, std::vector<std::size_t> pieces = {}, const limits& lim = {}) {
    chunked_decoder dec(lim);
    decoded d;
    pieces.push_back(in.size());
    std::size_t at = 0;
    for (std::size_t piece : pieces) {
        const std::size_t len = std::min(piece, in.size() - at);
        d.res = dec.feed(in.substr(at, len), d.body);
        d.consumed += d.res.consumed;
        if (d.res.st != status::incomplete) {
            if (d.res.st == status::error) d.consumed = at + d.res.consumed;
            return d;
        }
        at += len;
        if (at == in.size()) break;
    }
    return d;
}

TEST(Chunked, DecodesChunksAndStopsAtTheEnd) {
    const std::string body = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    const decoded d = decode(body + "GET / HTTP/1.1\r\n");
    ASSERT_EQ(d.res.st, status::complete);
    EXPECT_EQ(d.body, "hello world");
    EXPECT_EQ(d.consumed, body.size());
}

TEST(Chunked, HexSizesExtensionsAndTrailers) {
    struct row { std::string in, body; };
    const row rows[] = {
        {"a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", "01234567890123456789"},
        {"005\r\nhello\r\n000\r\n\r\n", "hello"},
        {"5;ilovew3;somuchlove=aretheseparametersfor;another=withvalue\r\nhello\r\n0\r\n\r\n", "hello"},
        {"5;a=\"I \\\"love\\\"; \\\\ext\\\\\";b=\"\";c\r\nhello\r\n0;z=1\r\n\r\n", "hello"},
        {"0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\n", ""},
        {"1\r\n\r\r\n0\r\nX:\r\n\r\n", "\r"},
    };
    for (const row& x : rows) {
        const decoded d = decode(x.in);
        ASSERT_EQ(d.res.st, status::complete) << x.in << ": " << d.res.reason;
        EXPECT_EQ(d.body, x.body);
        EXPECT_EQ(d.consumed, x.in.size());
    }
}

TEST(Chunked, RefusesBadFraming) {
    limits small;
    small.max_body = 8;
    small.max_header_bytes = 16;
    struct row { const char* rule; std::string in; int status; limits lim = {}; };
    const row rows[] = {
        {"missing size", "\r\nhello\r\n0\r\n\r\n", 400},
        {"missing last-chunk", "3\r\nfoo\r\n\r\n", 400},
        {"sign", "+5\r\nhello\r\n0\r\n\r\n", 400},
        {"minus", "-5\r\nhello\r\n0\r\n\r\n", 400},
        {"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 400},
        {"junk after size", "2 erfrferferf\r\naa\r\n0\r\n\r\n", 400},
        {"space before CRLF", "a \r\n0123456789\r\n0\r\n\r\n", 400},
        {"empty extension", "2;\r\naa\r\n0\r\n\r\n", 400},
        {"extension without name", "2;=x\r\naa\r\n0\r\n\r\n", 400},
        {"unbalanced quote", "5;a=\"abc\r\nhello\r\n0\r\n\r\n", 400},
        {"bare LF after size", "5\nhello\r\n0\r\n\r\n", 400},
        {"CR CR after size", "5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n", 400},
        {"data longer than size", "5\r\nhelloX\r\n0\r\n\r\n", 400},
        {"data not followed by CRLF", "5\r\nABCDE0\r\n\r\n", 400},
        {"data followed by bare LF", "5\r\nhello\n0\r\n\r\n", 400},
        {"overflow", "10000000000000000\r\nx\r\n", 400},
        {"overflow in many digits", "FFFFFFFFFFFFFFFFFFFFFFFF\r\n", 400},
        {"trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n", 400},
        {"trailer space before colon", "0\r\nA : b\r\n\r\n", 400},
        {"trailer bare LF", "0\r\nA: b\n\r\n", 400},
        {"trailer control byte", "0\r\nA: \x01\r\n\r\n", 400},
        {"bare LF at the end", "0\r\n\n", 400},
        {"chunk over max_body", "9\r\n123456789\r\n0\r\n\r\n", 413, small},
        {"chunks summing over max_body", "5\r\n12345\r\n4\r\n1234\r\n0\r\n\r\n", 413, small},
        {"trailer section over its limit", "0\r\nX: 0123456789abcdef\r\n\r\n", 431, small},
        {"endless size line", "1;" + std::string(5000, 'a') + "\r\nx\r\n0\r\n\r\n", 400},
        // where RFC 9112 allows leniency that node and nginx refuse
        {"whitespace after the size", "5 ;a=b\r\nhello\r\n0\r\n\r\n", 400},
        {"tab after the size", "5\t\r\nhello\r\n0\r\n\r\n", 400},
        {"whitespace after ';'", "5; a\r\nhello\r\n0\r\n\r\n", 400},
        {"whitespace around '='", "5;a = b\r\nhello\r\n0\r\n\r\n", 400},
        {"whitespace after a quoted value", "5;a=\"b\" \r\nhello\r\n0\r\n\r\n", 400},
        {"Content-Length in the trailer", "0\r\nContent-Length: 5\r\n\r\n", 400},
        {"Transfer-Encoding in the trailer", "0\r\ntransfer-ENCODING: chunked\r\n\r\n", 400},
        // framing out of proportion to the payload
        {"extensions with no payload", "1;" + std::string(4000, 'e') + "\r\nx\r\n" +
                                           [] {
                                               std::string s;
                                               for (int k = 0; k < 5; ++k) s += "1;" + std::string(4000, 'e') + "\r\nx\r\n";
                                               return s;
                                           }() + "0\r\n\r\n", 400},
    };
    for (const row& x : rows) {
        SCOPED_TRACE(x.rule);
        const decoded d = decode(x.in, {}, x.lim);
        ASSERT_EQ(d.res.st, status::error);
        EXPECT_EQ(d.res.http_status, x.status) << d.res.reason;
        EXPECT_FALSE(d.res.reason.empty());
    }
}

TEST(Chunked, FramingMayOutgrowThePayloadOnlyByTheAllowance) {
    limits lim;
    lim.chunk_framing_allowance = 100;
    auto one_byte_chunks = [](int n) {
        std::string s;
        for (int k = 0; k < n; ++k) s += "1\r\nx\r\n";  // 5 framing bytes per payload byte
        return s + "0\r\n\r\n";
    };
    EXPECT_EQ(decode(one_byte_chunks(20), {}, lim).res.st, status::complete);
    const decoded refused = decode(one_byte_chunks(40), {}, lim);
    ASSERT_EQ(refused.res.st, status::error);
    EXPECT_EQ(refused.res.http_status, 400);
    // Large chunks carry any sensible extension: framing stays far below the payload.
    std::string big;
    for (int k = 0; k < 50; ++k) big += "400;name=\"value\";flag\r\n" + std::string(0x400, 'p') + "\r\n";
    const decoded fine = decode(big + "0\r\n\r\n", {}, lim);
    ASSERT_EQ(fine.res.st, status::complete) << fine.res.reason;
    EXPECT_EQ(fine.body.size(), 50u * 0x400);
}

TEST(Chunked, TrailerNamesLikeTheFramingFieldsAreFine) {
    for (const char* t : {"Content-Lengths: 1", "Content-Lengt: 1", "X-Transfer-Encoding: chunked",
                          "Transfer-Encodings: x", "Content-Type: text/plain"}) {
        const decoded d = decode("0\r\n" + std::string(t) + "\r\n\r\n");
        EXPECT_EQ(d.res.st, status::complete) << t << ": " << d.res.reason;
    }
}

TEST(Chunked, SizeEqualToMaxBodyIsAccepted) {
    limits lim;
    lim.max_body = 10;
    const decoded d = decode("5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n", {}, lim);
    ASSERT_EQ(d.res.st, status::complete);
    EXPECT_EQ(d.body, "1234567890");
}

TEST(Chunked, SplitAcrossFeedsGivesTheSameResult) {
    const std::string in = "a;x=\"y\"\r\n0123456789\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\nNEXT";
    const decoded whole = decode(in);
    ASSERT_EQ(whole.res.st, status::complete);
    EXPECT_EQ(whole.body, "0123456789abc");
    for (std::size_t cut = 0; cut <= in.size(); ++cut) {
        const decoded two = decode(in, {cut});
        EXPECT_EQ(two.res.st, status::complete) << cut;
        EXPECT_EQ(two.body, whole.body) << cut;
        EXPECT_EQ(two.consumed, whole.consumed) << cut;
    }
    const decoded bytes = decode(in, std::vector<std::size_t>(in.size(), 1));
    EXPECT_EQ(bytes.res.st, status::complete);
    EXPECT_EQ(bytes.body, whole.body);
    EXPECT_EQ(bytes.consumed, whole.consumed);
    // An error is decided at the same byte however the input is cut.
    const std::string bad = "3\r\nabc\r\n4\r\nabcdX\r\n0\r\n\r\n";
    const decoded bad_whole = decode(bad);
    ASSERT_EQ(bad_whole.res.st, status::error);
    for (std::size_t cut = 0; cut <= bad.size(); ++cut) {
        const decoded two = decode(bad, {cut});
        EXPECT_EQ(two.res.http_status, bad_whole.res.http_status) << cut;
        EXPECT_EQ(two.consumed, bad_whole.consumed) << cut;
    }
}

TEST(Chunked, AfterTheEndFeedsConsumeNothing) {
    chunked_decoder dec;
    std::string body;
    ASSERT_EQ(dec.feed("0\r\n\r\n", body).st, status::complete);
    const body_result again = dec.feed("1\r\nx\r\n", body);
    EXPECT_EQ(again.st, status::complete);
    EXPECT_EQ(again.consumed, 0u);
    chunked_decoder bad;
    ASSERT_EQ(bad.feed("zz", body).st, status::error);
    const body_result still = bad.feed("0\r\n\r\n", body);
    EXPECT_EQ(still.st, status::error);
    EXPECT_EQ(still.http_status, 400);
    EXPECT_EQ(still.consumed, 0u);
}

TEST(Chunked, EveryPieceEndsAtTheGuardPage) {
    const std::string in = "5;e=\"q\"\r\nhello\r\n1a\r\n0123456789abcdef0123456789\r\n0\r\nVary: *\r\n\r\n";
    guard_page_buffer guard(in.size());
    // Fed one byte at a time, each byte alone right before the guard page.
    chunked_decoder dec;
    std::string body;
    body_result res;
    for (std::size_t k = 0; k < in.size(); ++k) {
        res = dec.feed(guard.place(std::string_view(in).substr(k, 1)), body);
        if (k + 1 < in.size()) {
            ASSERT_EQ(res.st, status::incomplete) << k;
        }
    }
    ASSERT_EQ(res.st, status::complete);
    EXPECT_EQ(body, "hello0123456789abcdef0123456789");
    // And every prefix, whole, ending at the guard page.
    for (std::size_t len = 0; len <= in.size(); ++len) {
        chunked_decoder d;
        std::string b;
        const body_result r = d.feed(guard.place(std::string_view(in).substr(0, len)), b);
        EXPECT_EQ(r.st, len == in.size() ? status::complete : status::incomplete) << len;
    }
}

TEST(ReasonPhrase, KnownAndUnknown) {
    EXPECT_EQ(reason_phrase(200), "OK");
    EXPECT_EQ(reason_phrase(400), "Bad Request");
    EXPECT_EQ(reason_phrase(404), "Not Found");
    EXPECT_EQ(reason_phrase(413), "Content Too Large");
    EXPECT_EQ(reason_phrase(414), "URI Too Long");
    EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
    EXPECT_EQ(reason_phrase(501), "Not Implemented");
    EXPECT_EQ(reason_phrase(505), "HTTP Version Not Supported");
    EXPECT_EQ(reason_phrase(299), "");
    EXPECT_EQ(reason_phrase(-1), "");
}

}  // namespace
