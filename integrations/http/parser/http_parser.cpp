// SPDX-License-Identifier: Apache-2.0
// The contract is in http_parser.hpp. Every check below fires at the byte that decides it
// (never at "end of buffer"), which is what makes parse_head prefix-consistent.
#include "http_parser.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <limits>

namespace opreg::http {
namespace {

// ---- character classes (RFC 9110 §5.6.2, §5.5; RFC 3986 §3.2.2) -------------------------

enum : std::uint8_t {
    k_tchar = 1,   // token characters
    k_vchar = 2,   // visible ASCII, 0x21..0x7E
    k_field = 4,   // inside a field value: VCHAR, obs-text, SP, HT
    k_host = 8,    // authority characters allowed in Host
    k_hex = 16,
    k_qdtext = 32, // inside a quoted-string, besides quoted-pair
};

constexpr std::array<std::uint8_t, 256> make_classes() {
    std::array<std::uint8_t, 256> t{};
    for (int c = 0; c < 256; ++c) {
        std::uint8_t m = 0;
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool digit = c >= '0' && c <= '9';
        if (alpha || digit || std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos)
            m |= k_tchar;
        if (c >= 0x21 && c <= 0x7E) m |= k_vchar;
        if ((c >= 0x21 && c <= 0x7E) || c >= 0x80 || c == ' ' || c == '\t') m |= k_field;
        if (alpha || digit || std::string_view("-._~!$&'()*+,;=%:[]").find(char(c)) != std::string_view::npos)
            m |= k_host;
        if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) m |= k_hex;
        if (c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E) || c >= 0x80)
            m |= k_qdtext;
        t[std::size_t(c)] = m;
    }
    return t;
}
constexpr auto classes = make_classes();

constexpr bool is(unsigned char c, std::uint8_t cls) { return (classes[c] & cls) != 0; }
constexpr bool is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

constexpr char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

// `lower_literal` is already lower case.
constexpr bool iequals(std::string_view s, std::string_view lower_literal) {
    if (s.size() != lower_literal.size()) return false;
    for (std::size_t k = 0; k < s.size(); ++k)
        if (lower(s[k]) != lower_literal[k]) return false;
    return true;
}

constexpr std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && is_ows(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

constexpr bool all_of_class(std::string_view s, std::uint8_t cls) {
    for (char c : s)
        if (!is(static_cast<unsigned char>(c), cls)) return false;
    return true;
}

// Calls f(element) for each non-empty, OWS-trimmed element of a comma list (RFC 9110 §5.6.1:
// empty elements are ignored). Stops early and returns false when f does.
template <class F>
constexpr bool for_each_element(std::string_view list, F&& f) {
    for (;;) {
        const std::size_t comma = list.find(',');
        const std::string_view elem = trim_ows(list.substr(0, comma));
        if (!elem.empty() && !f(elem)) return false;
        if (comma == std::string_view::npos) return true;
        list.remove_prefix(comma + 1);
    }
}

// Whether a comma list has an empty element (",a", "a,", "a, ,b"); an empty list has one.
constexpr bool has_empty_element(std::string_view list) {
    for (;;) {
        const std::size_t comma = list.find(',');
        if (trim_ows(list.substr(0, comma)).empty()) return true;
        if (comma == std::string_view::npos) return false;
        list.remove_prefix(comma + 1);
    }
}

constexpr head_result need_more() {
    return {status::incomplete, 0, 0, {}};
}
constexpr head_result fail(std::size_t at, int code, std::string_view why) {
    return {status::error, at, code, why};
}

// ---- request head ---------------------------------------------------------------------------

class head_parser {
public:
    head_parser(std::string_view buf, request& out, const limits& lim)
        : bytes_(reinterpret_cast<const unsigned char*>(buf.data())),
          end_(buf.size()),
          buf_(buf),
          out_(out),
          lim_(lim) {}

    head_result run() {
        reset();
        head_result r = request_line();
        if (r.st != status::complete) return r;
        return header_section(r.consumed);
    }

private:
    void reset() {
        out_.method = {};
        out_.target = {};
        out_.path = {};
        out_.version_minor = 1;
        out_.header_count = 0;
        out_.keep_alive = true;
        out_.chunked = false;
        out_.content_length = 0;
        out_.has_content_length = false;
        out_.expect_continue = false;
        out_.host = {};
    }

    std::string_view view(std::size_t from, std::size_t to) const { return buf_.substr(from, to - from); }

    // Byte `at` of the request line proper (not its CR LF). Over the limit is 414 as soon as
    // such a byte exists; its absence is `incomplete`.
    bool request_line_byte(std::size_t at, head_result& r) const {
        if (at >= end_) {
            r = need_more();
            return false;
        }
        if (at >= lim_.max_request_line) {
            r = fail(at, 414, "request line too long");
            return false;
        }
        return true;
    }

    // RFC 9112 §3.2: origin-form ("/path?query") for every method but CONNECT; absolute-form
    // ("http://authority/path?query", any scheme case) also, routed by its path and answered
    // for its authority, which replaces Host; asterisk-form ("*") for OPTIONS only;
    // authority-form ("host:port") for CONNECT only, and CONNECT takes nothing else. Sets
    // out_.path (and out_.host for absolute-form). Empty when the form is right, else why not.
    std::string_view target_form() {
        const std::string_view t = out_.target;
        const bool connect = out_.method == "CONNECT";
        if (connect) {
            const std::size_t colon = t.rfind(':');
            if (colon == std::string_view::npos || colon == 0 || colon + 1 == t.size() ||
                !all_of_class(t.substr(0, colon), k_host) ||
                !std::all_of(t.begin() + std::ptrdiff_t(colon) + 1, t.end(),
                             [](char c) { return c >= '0' && c <= '9'; }))
                return "CONNECT needs an authority-form target (host:port)";
            out_.path = {};
            absolute_authority_ = t;
            return {};
        }
        if (t.front() == '/') {
            out_.path = t;
            return {};
        }
        if (t == "*") {
            if (out_.method != "OPTIONS") return "asterisk-form target for a method other than OPTIONS";
            out_.path = t;
            return {};
        }
        // absolute-form: only http and https name a resource this server can answer for.
        const std::size_t sep = t.find("://");
        if (sep == std::string_view::npos) return "request-target is not origin-form or absolute-form";
        const std::string_view scheme = t.substr(0, sep);
        if (!iequals(scheme, "http") && !iequals(scheme, "https"))
            return "absolute-form target with a scheme other than http or https";
        const std::string_view rest = t.substr(sep + 3);
        const std::size_t path_at = rest.find_first_of("/?");
        const std::string_view authority = rest.substr(0, path_at);
        // k_host has no '@': userinfo is refused (RFC 9110 §4.2.4 says to treat it as an error).
        if (authority.empty() || !all_of_class(authority, k_host))
            return "invalid authority in an absolute-form target";
        absolute_authority_ = authority;
        if (path_at == std::string_view::npos) out_.path = "/";
        else if (rest[path_at] == '?') out_.path = "/";  // an empty path is "/" (RFC 9110 §4.2.3)
        else out_.path = rest.substr(path_at);
        return {};
    }

    static bool is_known_method(std::string_view m) {
        // RFC 9110 §9.3 and PATCH (RFC 5789); anything else is 501 (RFC 9110 §9.1).
        constexpr std::string_view known[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                              "CONNECT", "OPTIONS", "TRACE", "PATCH"};
        return std::find(std::begin(known), std::end(known), m) != std::end(known);
    }

    head_result request_line() {
        head_result r;
        std::size_t i = 0;
        // RFC 9112 §2.2: ignore empty lines before the request line. They count toward the
        // line limit so that an endless run of them is still bounded.
        for (;;) {
            if (!request_line_byte(i, r)) return r;
            if (bytes_[i] != '\r') break;
            if (i + 1 >= end_) return need_more();
            if (bytes_[i + 1] != '\n') return fail(i + 1, 400, "CR not followed by LF");
            i += 2;
        }

        const std::size_t method_start = i;
        for (;; ++i) {
            if (!request_line_byte(i, r)) return r;
            if (!is(bytes_[i], k_tchar)) break;
        }
        if (bytes_[i] != ' ' || i == method_start)
            return fail(i, 400, bytes_[i] == '\n' ? "bare LF" : "invalid method");
        out_.method = view(method_start, i);
        // Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET. Decided at its SP.
        if (!is_known_method(out_.method)) return fail(i, 501, "unknown method");
        ++i;

        const std::size_t target_start = i;
        for (;; ++i) {
            if (!request_line_byte(i, r)) return r;
            if (!is(bytes_[i], k_vchar)) break;
            // A fragment is the client's own (RFC 3986 §3.5): a target never carries one, and
            // stripping it would route what another parser may read differently.
            if (bytes_[i] == '#') return fail(i, 400, "fragment in request-target");
        }
        if (bytes_[i] != ' ' || i == target_start) return fail(i, 400, "invalid request-target");
        out_.target = view(target_start, i);
        // Its form must suit the method (RFC 9112 §3.2); decided at the SP that ends it.
        if (const std::string_view why = target_form(); !why.empty()) return fail(i, 400, why);
        ++i;

        constexpr std::string_view prefix = "HTTP/";
        for (char want : prefix) {
            if (!request_line_byte(i, r)) return r;
            if (bytes_[i] != static_cast<unsigned char>(want))
                return fail(i, 400, "invalid HTTP version");
            ++i;
        }
        unsigned char major = 0, minor = 0;
        for (int k = 0; k < 3; ++k, ++i) {  // DIGIT "." DIGIT
            if (!request_line_byte(i, r)) return r;
            const unsigned char c = bytes_[i];
            if (k == 1 ? c != '.' : (c < '0' || c > '9')) return fail(i, 400, "invalid HTTP version");
            (k == 0 ? major : minor) = c;
        }
        // Decided at the minor digit: whatever follows, this request is not one we serve.
        if (major != '1' || (minor != '0' && minor != '1')) return fail(i - 1, 505, "HTTP version not supported");
        out_.version_minor = minor - '0';

        // The CR may sit right at the limit: the limit is on the line, not its terminator.
        if (i >= end_) return need_more();
        if (bytes_[i] != '\r')
            return fail(i, 400, bytes_[i] == '\n' ? "bare LF" : "invalid HTTP version");
        if (i + 1 >= end_) return need_more();
        if (bytes_[i + 1] != '\n') return fail(i + 1, 400, "CR not followed by LF");
        return {status::complete, i + 2, 0, {}};
    }

    // Byte `at` of the header section (which starts at section_start). Same idea as
    // request_line_byte, with 431.
    bool header_byte(std::size_t at, std::size_t section_start, head_result& r) const {
        if (at >= end_) {
            r = need_more();
            return false;
        }
        if (at - section_start >= lim_.max_header_bytes) {
            r = fail(at, 431, "header section too large");
            return false;
        }
        return true;
    }

    head_result header_section(const std::size_t section_start) {
        const std::size_t max_fields = std::min(lim_.max_headers, std::size(out_.headers));
        head_result r;
        std::size_t i = section_start;
        for (;;) {
            if (!header_byte(i, section_start, r)) return r;
            const unsigned char first = bytes_[i];
            if (first == '\r') {
                if (!header_byte(i + 1, section_start, r)) return r;
                if (bytes_[i + 1] != '\n') return fail(i + 1, 400, "CR not followed by LF");
                return finish(i + 2);
            }
            if (is_ows(first))
                return fail(i, 400, "whitespace at the start of a field line (obs-fold)");
            if (first == '\n') return fail(i, 400, "bare LF");
            if (out_.header_count >= max_fields) return fail(i, 431, "too many header fields");

            const std::size_t name_start = i;
            for (;; ++i) {
                if (!header_byte(i, section_start, r)) return r;
                if (!is(bytes_[i], k_tchar)) break;
            }
            if (bytes_[i] != ':') {
                if (is_ows(bytes_[i]) && i != name_start)
                    return fail(i, 400, "whitespace between field name and colon");
                return fail(i, 400, "invalid character in field name");
            }
            if (i == name_start) return fail(i, 400, "empty field name");
            const std::string_view name = view(name_start, i);
            ++i;

            bool tab_around = false;  // an HT in the OWS before or after the value
            for (;; ++i) {
                if (!header_byte(i, section_start, r)) return r;
                if (!is_ows(bytes_[i])) break;
                tab_around = tab_around || bytes_[i] == '\t';
            }
            const std::size_t value_start = i;
            std::size_t v_end = i;  // one past the last byte that is not OWS
            bool tab_after = false;  // an HT since v_end
            for (;; ++i) {
                if (!header_byte(i, section_start, r)) return r;
                const unsigned char c = bytes_[i];
                if (c == '\r') break;
                if (!is(c, k_field)) return fail(i, 400, c == '\n' ? "bare LF" : "control character in field value");
                if (!is_ows(c)) {
                    v_end = i + 1;
                    tab_after = false;
                } else if (c == '\t') {
                    tab_after = true;
                }
            }
            tab_around = tab_around || tab_after;
            if (!header_byte(i + 1, section_start, r)) return r;
            if (bytes_[i + 1] != '\n') return fail(i + 1, 400, "CR not followed by LF");

            header& h = out_.headers[out_.header_count++];
            h = {name, view(value_start, v_end)};
            // Decided at the LF that ends the field line.
            if (const head_result bad = field_semantics(h, tab_around, i + 1); bad.st == status::error)
                return bad;
            i += 2;
        }
    }

    head_result field_semantics(const header& h, bool tab_around, std::size_t at) {
        const std::string_view v = h.value;
        const bool framing = iequals(h.name, "content-length") || iequals(h.name, "transfer-encoding");
        // RFC 9110 allows HT in OWS; node's and nginx's parsers refuse it around the framing
        // fields, and opreg must not frame a byte stream differently from a proxy in front.
        if (framing && tab_around) return fail(at, 400, "tab around a framing field's value");
        if (iequals(h.name, "content-length")) {
            if (out_.has_content_length) return fail(at, 400, "more than one Content-Length");
            if (v.empty()) return fail(at, 400, "empty Content-Length");
            std::size_t len = 0;
            for (char ch : v) {
                if (ch < '0' || ch > '9') return fail(at, 400, "Content-Length is not a decimal number");
                const std::size_t d = std::size_t(ch - '0');
                if (len > (std::numeric_limits<std::size_t>::max() - d) / 10)
                    return fail(at, 400, "Content-Length overflow");
                len = len * 10 + d;
            }
            out_.has_content_length = true;
            out_.content_length = len;
        } else if (iequals(h.name, "transfer-encoding")) {
            te_seen_ = true;
            // RFC 9110 §5.6.1 lets a recipient skip empty list elements; node and nginx
            // refuse them in Transfer-Encoding, and so does opreg (same framing as a proxy).
            if (v.empty()) return fail(at, 400, "empty Transfer-Encoding");
            if (has_empty_element(v)) return fail(at, 400, "empty element in Transfer-Encoding");
            head_result bad;
            for_each_element(v, [&](std::string_view elem) {
                const std::size_t semi = elem.find(';');
                const std::string_view coding = trim_ows(elem.substr(0, semi));
                if (coding.empty() || !all_of_class(coding, k_tchar))
                    bad = fail(at, 400, "malformed Transfer-Encoding");
                else if (te_chunked_)  // chunked twice, or a coding after it
                    bad = fail(at, 400, "chunked is not the final transfer coding");
                else if (!iequals(coding, "chunked"))
                    bad = fail(at, 501, "unsupported transfer coding");
                else if (semi != std::string_view::npos)
                    bad = fail(at, 400, "chunked takes no parameters");
                else
                    te_chunked_ = true;
                return bad.st != status::error;
            });
            if (bad.st == status::error) return bad;
        } else if (iequals(h.name, "host")) {
            if (host_seen_) return fail(at, 400, "more than one Host");
            if (!all_of_class(v, k_host)) return fail(at, 400, "invalid Host");
            host_seen_ = true;
            out_.host = v;
        } else if (iequals(h.name, "connection")) {
            for_each_element(v, [&](std::string_view opt) {
                if (iequals(opt, "close")) conn_close_ = true;
                else if (iequals(opt, "keep-alive")) conn_keep_alive_ = true;
                return true;
            });
        } else if (iequals(h.name, "expect")) {
            for_each_element(v, [&](std::string_view e) {
                if (iequals(e, "100-continue")) expect_continue_ = true;
                return true;
            });
        }
        return {};
    }

    // Checks that need the whole header section; decided at the empty line's LF.
    head_result finish(std::size_t end) {
        const std::size_t at = end - 1;
        if (te_seen_ && out_.has_content_length) return fail(at, 400, "Content-Length with Transfer-Encoding");
        if (te_seen_ && out_.version_minor == 0) return fail(at, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (out_.version_minor == 1 && !host_seen_) return fail(at, 400, "missing Host header");
        if (out_.has_content_length && out_.content_length > lim_.max_body)
            return fail(at, 413, "declared body too large");
        // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host (which must still
        // be sent, and valid, in HTTP/1.1).
        if (!absolute_authority_.empty()) out_.host = absolute_authority_;
        out_.chunked = te_chunked_;  // te_seen_ without chunked was refused at its field line
        out_.keep_alive = out_.version_minor == 1 ? !conn_close_ : (conn_keep_alive_ && !conn_close_);
        // RFC 9110 §10.1.1: an HTTP/1.0 client cannot wait for a 100; ignore the expectation.
        out_.expect_continue = expect_continue_ && out_.version_minor == 1;
        return {status::complete, end, 0, {}};
    }

    const unsigned char* bytes_;  // buf_ as unsigned bytes, for the class table
    std::size_t end_;             // buf_.size(): every index is checked against it first
    std::string_view buf_;
    request& out_;
    const limits& lim_;
    std::string_view absolute_authority_;  // of an absolute-form or authority-form target
    bool te_seen_ = false;
    bool te_chunked_ = false;
    bool host_seen_ = false;
    bool conn_close_ = false;
    bool conn_keep_alive_ = false;
    bool expect_continue_ = false;
};

// A chunk-size line (size and extensions) longer than this is refused: extensions are
// ignored, so without a bound a peer could stream them forever without making progress.
constexpr std::size_t max_chunk_line = 4096;

}  // namespace

head_result parse_head(std::string_view buf, request& out, const limits& lim) {
    return head_parser(buf, out, lim).run();
}

// ---- chunked body ---------------------------------------------------------------------------

enum class chunked_decoder::state : std::uint8_t {
    size,             // chunk-size hex digits
    ext_name_start,   // after ';': a token
    ext_name,
    ext_value_start,  // after '=': a token or a quoted-string
    ext_token_value,
    ext_quoted,
    ext_quoted_pair,
    ext_after_quoted,
    size_lf,          // CR seen at the end of the chunk-size line
    data,
    data_cr,
    data_lf,
    trailer_start,    // start of a trailer field line, or the final empty line
    trailer_name,
    trailer_value,
    trailer_lf,
    final_lf,
    done,
    failed,
};

chunked_decoder::chunked_decoder(const limits& lim) : lim_(lim), st_(state::size) {}

body_result chunked_decoder::feed(std::string_view in, std::string& body) {
    if (st_ == state::done || st_ == state::failed) {
        body_result r = final_;
        r.consumed = 0;
        return r;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    const std::size_t n = in.size();
    auto failed = [&](std::size_t at, int code, std::string_view why) {
        st_ = state::failed;
        final_ = {status::error, at, code, why};
        return final_;
    };
    // Ends the chunk-size line's size digits at byte `c` (position i): a size that is
    // malformed, overflowed or takes the body past max_body is refused here.
    auto end_of_size = [&](std::size_t i, unsigned char c, body_result& bad) {
        if (c != ';' && c != '\r') {
            bad = failed(i, 400, c == '\n'    ? "bare LF after chunk size"
                                 : is_ows(c) ? "whitespace after chunk size"
                                             : "invalid character in chunk size");
            return false;
        }
        if (size_digits_ == 0) {
            bad = failed(i, 400, "missing chunk size");
            return false;
        }
        if (size_overflow_) {
            bad = failed(i, 400, "chunk size overflow");
            return false;
        }
        if (size_ > lim_.max_body - decoded_) {
            bad = failed(i, 413, "chunked body too large");
            return false;
        }
        return true;
    };

    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        // Chunk-size line states are the ones before size_lf; bound the line.
        if (st_ <= state::size_lf && ++line_len_ > max_chunk_line)
            return failed(i, 400, "chunk-size line too long");
        // Framing (size lines, extensions, the CRLF after each chunk) may outgrow the payload by
        // a fixed allowance only: a body cannot be mostly extensions or 1-byte chunks.
        if (st_ <= state::size_lf || st_ == state::data_cr || st_ == state::data_lf) {
            if (framing_ >= decoded_ + lim_.chunk_framing_allowance)
                return failed(i, 400, "chunk framing out of proportion to the payload");
            ++framing_;
        }
        if (st_ >= state::trailer_start && st_ <= state::final_lf) {
            if (trailer_len_ >= lim_.max_header_bytes) return failed(i, 431, "trailer section too large");
            ++trailer_len_;
        }
        switch (st_) {
        case state::size:
            if (is(c, k_hex)) {
                const unsigned d = c <= '9' ? unsigned(c - '0') : unsigned(lower(char(c)) - 'a' + 10);
                if (size_ > (std::numeric_limits<std::uint64_t>::max() >> 4)) size_overflow_ = true;
                size_ = (size_ << 4) | d;
                ++size_digits_;
                break;
            }
            {
                body_result bad;
                if (!end_of_size(i, c, bad)) return bad;
            }
            st_ = c == ';' ? state::ext_name_start : state::size_lf;
            break;
        // Extensions: no whitespace anywhere (RFC 9112 allows BWS around ';' and '='; node
        // and nginx refuse it, and a proxy in front must frame the body as opreg does).
        case state::ext_name_start:
            if (is(c, k_tchar)) st_ = state::ext_name;
            else return failed(i, 400, "invalid chunk extension name");
            break;
        case state::ext_name:
            if (c == ';') st_ = state::ext_name_start;
            else if (c == '=') st_ = state::ext_value_start;
            else if (c == '\r') st_ = state::size_lf;
            else if (!is(c, k_tchar)) return failed(i, 400, "invalid chunk extension name");
            break;
        case state::ext_value_start:
            if (c == '"') st_ = state::ext_quoted;
            else if (is(c, k_tchar)) st_ = state::ext_token_value;
            else return failed(i, 400, "invalid chunk extension value");
            break;
        case state::ext_token_value:
            if (c == ';') st_ = state::ext_name_start;
            else if (c == '\r') st_ = state::size_lf;
            else if (!is(c, k_tchar)) return failed(i, 400, "invalid chunk extension value");
            break;
        case state::ext_quoted:
            if (c == '"') st_ = state::ext_after_quoted;
            else if (c == '\\') st_ = state::ext_quoted_pair;
            else if (!is(c, k_qdtext)) return failed(i, 400, "invalid character in quoted chunk extension");
            break;
        case state::ext_quoted_pair:
            if (!is(c, k_field)) return failed(i, 400, "invalid quoted-pair in chunk extension");
            st_ = state::ext_quoted;
            break;
        case state::ext_after_quoted:
            if (c == ';') st_ = state::ext_name_start;
            else if (c == '\r') st_ = state::size_lf;
            else return failed(i, 400, "invalid character after chunk extension");
            break;
        case state::size_lf:
            if (c != '\n') return failed(i, 400, "CR not followed by LF after chunk size");
            st_ = size_ == 0 ? state::trailer_start : state::data;
            break;
        case state::data: {
            // Bulk copy; the only state that consumes more than one byte per step.
            const std::size_t take = std::size_t(std::min<std::uint64_t>(size_, n - i));
            body.append(in.data() + i, take);
            decoded_ += take;
            size_ -= take;
            i += take;
            if (size_ == 0) st_ = state::data_cr;
            continue;
        }
        case state::data_cr:
            if (c != '\r') return failed(i, 400, "chunk data not followed by CRLF");
            st_ = state::data_lf;
            break;
        case state::data_lf:
            if (c != '\n') return failed(i, 400, "chunk data not followed by CRLF");
            st_ = state::size;
            size_ = 0;
            size_digits_ = 0;
            size_overflow_ = false;
            line_len_ = 0;
            break;
        case state::trailer_start:
            if (c == '\r') {
                st_ = state::final_lf;
            } else if (is(c, k_tchar)) {
                st_ = state::trailer_name;
                name_len_ = 0;
                name_[name_len_++] = lower(char(c));
            } else if (is_ows(c)) {
                return failed(i, 400, "whitespace at the start of a trailer line (obs-fold)");
            } else {
                return failed(i, 400, c == '\n' ? "bare LF in trailer section" : "invalid trailer field name");
            }
            break;
        case state::trailer_name:
            if (c == ':') {
                // Framing belongs in the head: a trailer that could re-frame the message (RFC
                // 9110 §6.5.1) is refused, not ignored, as node and nginx do.
                const std::string_view name(name_, name_len_ <= sizeof name_ ? name_len_ : 0);
                if (name == "content-length" || name == "transfer-encoding")
                    return failed(i, 400, "framing field in the trailer section");
                st_ = state::trailer_value;
            } else if (is_ows(c)) {
                return failed(i, 400, "whitespace between trailer field name and colon");
            } else if (!is(c, k_tchar)) {
                return failed(i, 400, "invalid trailer field name");
            } else if (name_len_ < sizeof name_) {
                name_[name_len_++] = lower(char(c));
            } else {
                name_len_ = sizeof name_ + 1;  // longer than any name it looks for
            }
            break;
        case state::trailer_value:
            if (c == '\r') st_ = state::trailer_lf;
            else if (!is(c, k_field))
                return failed(i, 400, c == '\n' ? "bare LF in trailer section" : "control character in trailer value");
            break;
        case state::trailer_lf:
            if (c != '\n') return failed(i, 400, "CR not followed by LF in trailer section");
            st_ = state::trailer_start;
            break;
        case state::final_lf:
            if (c != '\n') return failed(i, 400, "CR not followed by LF at the end of the chunked body");
            st_ = state::done;
            final_ = {status::complete, i + 1, 0, {}};
            return final_;
        case state::done:
        case state::failed:
            break;  // unreachable: handled before the loop
        }
        ++i;
    }
    return {status::incomplete, n, 0, {}};
}

std::string_view reason_phrase(int http_status) noexcept {
    switch (http_status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return {};
    }
}

}  // namespace opreg::http
