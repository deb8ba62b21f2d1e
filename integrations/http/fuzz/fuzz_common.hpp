// SPDX-License-Identifier: Apache-2.0
// fuzz_common.hpp — what both fuzz targets check: the invariants every parse_head and
// chunked_decoder answer must keep, whatever the input, and exact-size input copies.
#pragma once

#include "http_parser.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

// Aborts (a crash libFuzzer records, with the input) when an invariant fails.
#define FUZZ_CHECK(cond)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            std::fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);   \
            std::abort();                                                                        \
        }                                                                                        \
    } while (0)

namespace opreg::http::fuzz {

// A heap copy exactly as long as the input: libFuzzer's own buffer is, but a prefix or a
// piece of it is not, and ASan flags a read past an allocation, not past a view.
class exact_copy {
public:
    explicit exact_copy(std::string_view s) : bytes_(new char[s.size()]), size_(s.size()) {
        if (size_ != 0) std::memcpy(bytes_.get(), s.data(), size_);
    }
    std::string_view view() const { return {bytes_.get(), size_}; }

private:
    std::unique_ptr<char[]> bytes_;
    std::size_t size_;
};

inline bool inside(std::string_view part, std::string_view whole) {
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

inline bool no_control_bytes(std::string_view s) {
    for (unsigned char c : s)
        if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
    return true;
}

inline bool is_reason(std::string_view s) { return !s.empty() && no_control_bytes(s); }

// The head answer's invariants; `in` is what was parsed.
inline void check_head(std::string_view in, const head_result& h, const request& r, const limits& lim) {
    switch (h.st) {
    case status::incomplete:
        FUZZ_CHECK(h.http_status == 0);
        break;
    case status::error:
        FUZZ_CHECK(h.http_status == 400 || h.http_status == 413 || h.http_status == 414 ||
                   h.http_status == 431 || h.http_status == 501 || h.http_status == 505);
        FUZZ_CHECK(h.consumed < in.size());  // the deciding byte was read, so it exists
        FUZZ_CHECK(is_reason(h.reason));
        FUZZ_CHECK(!reason_phrase(h.http_status).empty());
        break;
    case status::complete: {
        FUZZ_CHECK(h.http_status == 0);
        FUZZ_CHECK(h.consumed >= 4 && h.consumed <= in.size());
        const std::string_view head = in.substr(0, h.consumed);
        FUZZ_CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
        for (std::size_t k = 0; k < head.size(); ++k) {  // CR and LF only ever as a pair
            if (head[k] == '\r') FUZZ_CHECK(k + 1 < head.size() && head[k + 1] == '\n');
            if (head[k] == '\n') FUZZ_CHECK(k > 0 && head[k - 1] == '\r');
        }
        FUZZ_CHECK(!r.method.empty() && inside(r.method, head));
        FUZZ_CHECK(!r.target.empty() && inside(r.target, head));
        FUZZ_CHECK(r.version_minor == 0 || r.version_minor == 1);
        FUZZ_CHECK(r.header_count <= std::size(r.headers) && r.header_count <= lim.max_headers);
        for (std::size_t k = 0; k < r.header_count; ++k) {
            const header& f = r.headers[k];
            FUZZ_CHECK(!f.name.empty() && inside(f.name, head) && inside(f.value, head));
            FUZZ_CHECK(no_control_bytes(f.value));
            FUZZ_CHECK(f.value.empty() || (f.value.front() != ' ' && f.value.back() != ' '));
        }
        FUZZ_CHECK(r.host.empty() || inside(r.host, head));
        std::size_t hosts = 0;
        for (std::size_t k = 0; k < r.header_count; ++k) {
            const std::string_view n = r.headers[k].name;
            hosts += n.size() == 4 && (n[0] | 0x20) == 'h' && (n[1] | 0x20) == 'o' && (n[2] | 0x20) == 's' &&
                     (n[3] | 0x20) == 't';
        }
        FUZZ_CHECK(hosts <= 1 && (r.version_minor == 0 || hosts == 1));
        FUZZ_CHECK(!(r.chunked && r.has_content_length));
        FUZZ_CHECK(!r.has_content_length || r.content_length <= lim.max_body);
        FUZZ_CHECK(!r.chunked || r.version_minor == 1);
        break;
    }
    default:
        FUZZ_CHECK(!"status out of range");
    }
}

// One feed's answer; `in` is what that feed was given.
inline void check_feed(std::string_view in, const body_result& b, std::size_t body_size,
                       const limits& lim) {
    FUZZ_CHECK(b.consumed <= in.size());
    FUZZ_CHECK(body_size <= lim.max_body);
    switch (b.st) {
    case status::incomplete:
        FUZZ_CHECK(b.consumed == in.size() && b.http_status == 0);
        break;
    case status::error:
        FUZZ_CHECK(b.http_status == 400 || b.http_status == 413 || b.http_status == 431);
        FUZZ_CHECK(b.consumed < in.size());
        FUZZ_CHECK(is_reason(b.reason));
        break;
    case status::complete:
        FUZZ_CHECK(b.http_status == 0);
        break;
    default:
        FUZZ_CHECK(!"status out of range");
    }
}

// Small limits that random inputs can reach, so the 413/414/431 paths are fuzzed too.
inline limits small_limits() {
    limits lim;
    lim.max_request_line = 64;
    lim.max_header_bytes = 128;
    lim.max_headers = 4;
    lim.max_body = 32;
    return lim;
}

}  // namespace opreg::http::fuzz
