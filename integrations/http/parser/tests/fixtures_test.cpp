// SPDX-License-Identifier: Apache-2.0
// Replays llhttp's request fixtures (read at run time from OPREG_FIXTURES_DIR, never copied
// here) through parse_head and chunked_decoder, the way a connection of opreg-httpd would:
// head, then body (Content-Length bytes or chunked), then the next pipelined request, and a
// stop after a request that does not keep the connection alive.
//
// What is checked
//   - Every case llhttp rejects is rejected by us with a 4xx/5xx status, unless it is in
//     `allowlist` below with the outcome we give instead and why (and an allowlist entry
//     that no longer matches fails the test, so the list cannot go stale).
//   - "request-lenient-<flag>" cases whose log shows no error are inputs llhttp accepts
//     only with that leniency flag set; by default it rejects them. We have no leniency
//     flags, so they must be rejected or answered, never crash (nor wait forever).
//   - Cases llhttp accepts are replayed for crashes and counted; where we are stricter
//     (missing Host, HTTP/0.9, a bare LF ...) the counts say so, nothing is asserted.
//   - Many fixtures are HTTP/1.1 requests without Host, which we refuse before looking at
//     the rest. So that the check is about the shape each case is written to exercise, a
//     request refused only for lacking Host is replayed again with a Host field added, and
//     the second answer is the one classified.
//   - The decoding of the markdown is itself checked against llhttp's logs: every
//     `off=N len=L span[...]="text"` line must name bytes equal to the decoded input's.
#include "guard_page.hpp"
#include "http_parser.hpp"
#include "llhttp_fixtures.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace opreg::http;
namespace fx = opreg::http::test_fixtures;

const std::string fixtures_dir = std::string(OPREG_FIXTURES_DIR) + "/http/llhttp-request";

enum class outcome {
    rejected,    // a head or body was refused with a 4xx/5xx status
    accepted,    // every byte was parsed into complete requests
    closed,      // a request without keep-alive was complete and bytes followed it: the
                 // server answers it and closes, those bytes are never parsed
    incomplete,  // the input ended inside a request: the server keeps waiting (until its
                 // header or idle timeout closes the connection)
};

const char* name(outcome o) {
    switch (o) {
    case outcome::rejected: return "rejected";
    case outcome::accepted: return "accepted";
    case outcome::closed: return "closed";
    case outcome::incomplete: return "incomplete";
    }
    return "?";
}

struct replay_result {
    outcome kind = outcome::accepted;
    int http_status = 0;
    std::string reason;
    std::size_t requests = 0;  // complete requests before the outcome
    bool host_added = false;
};

constexpr std::string_view missing_host_reason = "missing Host header";
constexpr std::string_view added_host_field = "Host: fixture.test\r\n";

// Inserts a Host field after the request line of the head starting at `off`.
void add_host(std::string& raw, std::size_t off) {
    while (raw.compare(off, 2, "\r\n") == 0) off += 2;  // empty lines before the request line
    raw.insert(raw.find("\r\n", off) + 2, added_host_field);
}

replay_result replay(std::string raw) {
    replay_result out;
    std::size_t off = 0;
    bool added_here = false;
    while (off < raw.size()) {
        // Each step sees the rest of the input ending right before a guard page.
        fx::guard_page_buffer guard(raw.size() - off);
        std::string_view rest = guard.place(std::string_view(raw).substr(off));
        request req;
        const head_result head = parse_head(rest, req);
        if (head.st == status::error && head.reason == missing_host_reason && !added_here) {
            add_host(raw, off);
            added_here = out.host_added = true;
            continue;
        }
        if (head.st == status::error) return {outcome::rejected, head.http_status, std::string(head.reason), out.requests, out.host_added};
        if (head.st == status::incomplete) return {outcome::incomplete, 0, {}, out.requests, out.host_added};
        off += head.consumed;
        rest.remove_prefix(head.consumed);
        if (req.chunked) {
            chunked_decoder dec;
            std::string body;
            const body_result b = dec.feed(rest, body);
            if (b.st == status::error) return {outcome::rejected, b.http_status, std::string(b.reason), out.requests, out.host_added};
            if (b.st == status::incomplete) return {outcome::incomplete, 0, {}, out.requests, out.host_added};
            off += b.consumed;
        } else if (req.has_content_length) {
            if (rest.size() < req.content_length) return {outcome::incomplete, 0, {}, out.requests, out.host_added};
            off += req.content_length;
        }
        ++out.requests;
        added_here = false;
        if (!req.keep_alive) {
            out.kind = off < raw.size() ? outcome::closed : outcome::accepted;
            return out;
        }
    }
    return out;
}

// Cases llhttp rejects that we do not, each with the outcome we give and why.
struct allowed_difference {
    std::string_view file, title;
    outcome ours;
    std::string_view why;
};

constexpr allowed_difference allowlist[] = {
    // llhttp reports bytes after a `Connection: close` (or HTTP/1.0 without keep-alive)
    // request as an error (HPE_CLOSED_CONNECTION). We answer that request and the server
    // closes the connection; the bytes after it are never parsed. Same effect, no 4xx.
    {"connection.md", "No restart when keep-alive is off (1.0)", outcome::closed,
     "HTTP/1.0 without keep-alive: answered, then the connection is closed"},
    {"connection.md", "CRLF between requests, explicit `close`", outcome::closed,
     "Connection: close: answered, then the connection is closed"},
    {"connection.md", "CRLF between requests, explicit `close` followed by tab", outcome::closed,
     "Connection: close: answered, then the connection is closed"},
    // llhttp_finish() fails when the input ends inside a message. A parser without an EOF
    // call cannot tell; the server drops an incomplete request when the peer closes or its
    // header/idle timeout fires.
    {"finish.md", "It should be unsafe to finish after incomplete PUT request", outcome::incomplete,
     "input ends inside the body: incomplete, dropped at EOF by the server"},
    {"finish.md", "It should be unsafe to finish inside of the header", outcome::incomplete,
     "input ends inside the head: incomplete, dropped at EOF by the server"},
};

std::vector<fx::fixture_case> load_or_skip_reason(std::string& skip) {
    std::vector<fx::fixture_case> cases = fx::load_llhttp_fixtures(fixtures_dir);
    if (cases.empty()) skip = "llhttp fixtures not found in " + fixtures_dir;
    return cases;
}

bool is_lenient(const fx::fixture_case& c) { return c.meta_type.rfind("request-lenient-", 0) == 0; }

TEST(LlhttpFixtures, DecodedInputsMatchTheSpansInLlhttpLogs) {
    std::string skip;
    const auto cases = load_or_skip_reason(skip);
    if (cases.empty()) GTEST_SKIP() << skip;
    std::size_t checked = 0, skipped = 0;
    for (const fx::fixture_case& c : cases) {
        std::size_t pos = 0;
        while (pos < c.log.size()) {
            std::size_t eol = c.log.find('\n', pos);
            if (eol == std::string::npos) eol = c.log.size();
            const std::string line = c.log.substr(pos, eol - pos);
            pos = eol + 1;
            const std::size_t span = line.find(" span[");
            const std::size_t quote = line.find("]=\"");
            if (span == std::string::npos || quote == std::string::npos || line.back() != '"') continue;
            const std::size_t off = std::strtoul(line.c_str() + 4, nullptr, 10);
            const std::size_t len = std::strtoul(line.c_str() + line.find(" len=") + 5, nullptr, 10);
            std::string text = line.substr(quote + 3, line.size() - quote - 4);
            fx::detail::replace_all(text, "\\t", "\t");  // as md-test.ts does for logs
            fx::detail::replace_all(text, "\\f", "\f");
            // Non-ASCII spans are printed re-encoded, spans with line breaks across lines.
            if (text.size() != len) {
                ++skipped;
                continue;
            }
            ASSERT_LE(off + len, c.raw.size()) << c.file << ":" << c.line << " " << line;
            EXPECT_EQ(c.raw.substr(off, len), text) << c.file << ":" << c.line << " " << line;
            ++checked;
        }
    }
    std::cout << "[ fixtures ] " << cases.size() << " cases, " << checked << " log spans match the decoded input, "
              << skipped << " spans not comparable (re-encoded or multi-line)\n";
    EXPECT_GT(checked, 1000u);
}

TEST(LlhttpFixtures, EveryCaseLlhttpRejectsIsRejectedOrAllowlisted) {
    std::string skip;
    const auto cases = load_or_skip_reason(skip);
    if (cases.empty()) GTEST_SKIP() << skip;

    std::map<std::string, std::size_t> counts;
    std::vector<bool> allow_used(std::size(allowlist), false);
    std::vector<std::string> stricter, rejections;
    for (const fx::fixture_case& c : cases) {
        const replay_result r = replay(c.raw);
        const std::string where = c.file + ":" + std::to_string(c.line) + " \"" + c.title + "\" (" + c.meta_type + ")";
        if (c.llhttp_error) {
            ++counts["llhttp error"];
            if (r.kind == outcome::rejected) {
                EXPECT_GE(r.http_status, 400) << where;
                EXPECT_LT(r.http_status, 600) << where;
                ++counts[r.host_added ? "llhttp error: rejected (after adding Host)" : "llhttp error: rejected"];
                rejections.push_back(where + ": " + std::to_string(r.http_status) + " " + r.reason +
                                     (r.host_added ? " (Host added)" : ""));
                continue;
            }
            bool allowed = false;
            for (std::size_t k = 0; k < std::size(allowlist); ++k) {
                if (allowlist[k].file == c.file && allowlist[k].title == c.title) {
                    EXPECT_EQ(name(r.kind), name(allowlist[k].ours)) << where << ": allowlisted outcome changed";
                    allowed = allow_used[k] = true;
                }
            }
            if (allowed) ++counts["llhttp error: allowlisted"];
            else ADD_FAILURE() << where << ": llhttp rejects it, we give '" << name(r.kind) << "'\n" << c.log;
        } else if (is_lenient(c)) {
            ++counts["lenient-only"];
            ++counts[std::string("lenient-only: ") + name(r.kind)];
            EXPECT_NE(r.kind, outcome::incomplete) << where << ": must be rejected or answered";
        } else {
            ++counts["llhttp accepts"];
            ++counts[std::string("llhttp accepts: ") + name(r.kind) + (r.host_added ? " (after adding Host)" : "")];
            if (r.kind == outcome::rejected)
                stricter.push_back(where + ": " + std::to_string(r.http_status) + " " + r.reason);
        }
    }
    for (std::size_t k = 0; k < std::size(allowlist); ++k)
        EXPECT_TRUE(allow_used[k]) << "stale allowlist entry: " << allowlist[k].file << " \"" << allowlist[k].title << "\"";

    std::cout << "[ fixtures ] " << cases.size() << " cases\n";
    for (const auto& [what, n] : counts) std::cout << "[ fixtures ]   " << what << ": " << n << "\n";
    for (const std::string& s : rejections) std::cout << "[ rejected ]   " << s << "\n";
    for (const std::string& s : stricter) std::cout << "[ stricter ]   " << s << "\n";
}

}  // namespace
