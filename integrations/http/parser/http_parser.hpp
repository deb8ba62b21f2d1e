// SPDX-License-Identifier: Apache-2.0
// opreg::http — a zero-copy, resumable HTTP/1.1 request parser (RFC 9112, strict).
//
// What it is
//   parse_head() reads one request head (request line + header section + empty line) from
//   the start of a caller-owned buffer. Nothing is copied: every string_view in `request`
//   points into that buffer, so the buffer must stay put and unchanged while they are used.
//   chunked_decoder reads a chunked message body that follows a head, byte stream in,
//   decoded payload out.
//
// Resumability and cost
//   parse_head() keeps no state between calls: `incomplete` means "call again with the same
//   bytes plus more", and each call re-parses from the start (as picohttpparser does). One
//   call is linear in buf.size(); feeding a head in k pieces costs O(k * head size), and
//   the limits below bound the head size, so the total stays bounded.
//   The result is prefix-consistent: every check fires at the byte that decides it, so if a
//   prefix of the input is `error`, every longer input is the same error, and if it is
//   `complete`, every longer input is complete with the same `consumed`. A caller may stop
//   at the first answer that is not `incomplete`.
//   chunked_decoder is a true streaming state machine: feed() consumes bytes and never
//   needs them again, so its total cost is linear in the body.
//
// Strictness (why: a lenient parser in front of, or behind, another lenient parser is how
// request smuggling happens; every shape below is refused rather than guessed at)
//   - Lines end in CRLF. A bare LF or a CR not followed by LF is 400; this parser never
//     accepts LF alone as a line ending, although RFC 9112 §2.2 lets a recipient do so.
//   - request-line = method SP request-target SP "HTTP/1." DIGIT CRLF, single spaces;
//     method is 1*tchar; request-target is 1*VCHAR but '#' (no bytes >= 0x80, no controls).
//     Empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2) and count
//     toward max_request_line.
//   - Methods are case-sensitive (RFC 9110 §9.1): GET, HEAD, POST, PUT, DELETE, CONNECT,
//     OPTIONS, TRACE and PATCH are known; any other token ("get", "GeT", "GET!", "FOO") is
//     501, decided at the SP after it.
//   - The request-target's form must suit the method (RFC 9112 §3.2), else 400, decided at
//     the SP after it: origin-form ("/" ...) for any method but CONNECT; absolute-form
//     ("http://authority/path", "https://", the scheme in any case) likewise, and `path` is
//     its path and query ("/" when empty) and `host` its authority, which replaces Host
//     (RFC 9112 §3.2.2; Host must still be present in HTTP/1.1); asterisk-form ("*") for
//     OPTIONS only; authority-form ("host:port") for CONNECT only, and CONNECT takes only
//     that. A relative target ("users/7"), another scheme, an empty authority or userinfo
//     ("http://u@h/", RFC 9110 §4.2.4) is 400.
//   - HTTP/1.0 and HTTP/1.1 only; another well-formed version is 505 (decided as soon as
//     its minor digit arrives); anything else where the version belongs is 400.
//   - field-line = field-name ":" OWS field-value OWS CRLF; field-name is 1*tchar (so no
//     whitespace before the colon, no empty name); the value may hold SP, HT, VCHAR and
//     obs-text (>= 0x80), no other control byte. A line starting with SP/HT (obs-fold, or
//     whitespace before the first field) is 400.
//   - Framing: Content-Length is 1*DIGIT (no sign, no list, not twice, no overflow) else
//     400; Content-Length together with Transfer-Encoding is 400; Transfer-Encoding in an
//     HTTP/1.0 request is 400 (RFC 9112 §6.1: its framing cannot be trusted); a transfer
//     coding other than "chunked" is 501, "chunked" twice, with parameters, or followed by
//     another coding is 400, an empty Transfer-Encoding is 400.
//   Where RFC 9112 lets a recipient be lenient but node's llhttp and nginx refuse, this
//   parser refuses too (400): a proxy in front and opreg must never frame one byte stream
//   differently. So: an HT in the whitespace around a Content-Length or Transfer-Encoding
//   value; an empty element in Transfer-Encoding (", chunked", "chunked,"); whitespace
//   anywhere in a chunk-size line (after the size, around ';' and '='); Content-Length or
//   Transfer-Encoding in a trailer section.
//   Stricter than node's llhttp, on purpose (each a 4xx/5xx where node accepts; the
//   differential test tests/framing_diff.py names every such case with its rule):
//     - a method outside the list above (501, RFC 9110 §9.1), and CONNECT (501 from the
//       application: no tunnels);
//     - a target whose form does not suit the method, an absolute-form target that is not
//       http(s) or has userinfo, a '#' in the target (400: RFC 3986 §3.5, a fragment is never
//       sent; stripping it would route what another parser reads differently);
//     - two spaces in the request line; a version other than 1.0 and 1.1 (505), HTTP/0.9;
//     - a missing Host in HTTP/1.1, more than one Host, an invalid Host (400, RFC 9112 §3.2);
//     - bare LF, or CR alone, as a line ending, also before the request line (400);
//     - HT around a Content-Length or Transfer-Encoding value (node takes HT after the colon;
//       nginx takes it as part of the value and refuses it); an empty element anywhere in
//       Transfer-Encoding (node refuses a trailing one only; nginx takes only "chunked");
//     - a transfer coding other than chunked (501), Transfer-Encoding in HTTP/1.0, an empty
//       Transfer-Encoding (400);
//     - an empty chunk-extension value, a chunk-size line over 4 KiB, a chunked body whose
//       framing outgrows its payload (`chunk_framing_allowance`) (400);
//     - the limits (414, 431, 413).
//   - HTTP/1.1 needs exactly one Host; more than one Host is 400 in any version; its value
//     may hold only authority characters (RFC 3986 host [":" port]).
//   - Limits (see `limits`): 414, 431, 413.
//   When an input breaks several rules, the first byte that breaks one decides. The checks
//   that need the whole header section are made at its final LF, in this order: Content-
//   Length with Transfer-Encoding, Transfer-Encoding in HTTP/1.0, missing Host, then 413.
//
// When not to use it: for responses, HTTP/0.9 or HTTP/2; or where inputs that real peers
// send but RFC 9112 forbids must be tolerated (a proxy in front of legacy clients): it has
// no leniency switches, by design.
//
// Thread safety: parse_head() is reentrant; a chunked_decoder belongs to one caller at a
// time. Nothing allocates except chunked_decoder::feed appending to the caller's string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace opreg::http {

// Bounds on what one request may make the server hold or scan. All sizes are in bytes.
struct limits {
    // Request line without its CRLF (plus any empty lines skipped before it). Longer: 414.
    std::size_t max_request_line = 8 * 1024;
    // Header section: from the first byte after the request line's CRLF through the empty
    // line's CRLF. Longer: 431. Also bounds a chunked body's trailer section (431 there too).
    std::size_t max_header_bytes = 16 * 1024;
    // Field lines in the header section. More: 431. Capped at std::size(request::headers).
    std::size_t max_headers = 100;
    // Declared Content-Length, or the sum of decoded chunk sizes. Larger: 413.
    std::size_t max_body = 1024 * 1024;
    // A chunked body's framing (chunk-size lines with their extensions, and the CRLF after
    // each chunk's data) may exceed the payload decoded so far by at most this much. Over:
    // 400. A body of long extensions or 1-byte chunks is refused early, so that what a peer
    // sends stays within (2 x payload + this) bytes; every client that sends sensible chunks
    // (curl: 64 KiB) is far inside it.
    std::size_t chunk_framing_allowance = 16 * 1024;
};

struct header {
    std::string_view name;   // as sent (compare case-insensitively)
    std::string_view value;  // leading and trailing SP/HT removed
};

// Valid only after parse_head() returned `complete`; otherwise partly filled.
struct request {
    std::string_view method;       // as sent, e.g. "GET"
    std::string_view target;       // request-target as sent, e.g. "/users/7?x=1"
    std::string_view path;         // what to route: origin-form path and query ("/users/7?x=1"),
                                   // also for an absolute-form target; "*" for OPTIONS *;
                                   // empty for CONNECT's authority-form
    int version_minor = 1;         // HTTP/1.<minor>; only 1.0 and 1.1 are accepted
    header headers[100];           // views into the caller's buffer (zero-copy)
    std::size_t header_count = 0;
    // Derived while parsing:
    bool keep_alive = true;        // 1.1: true unless "Connection: close"; 1.0: false unless
                                   // "Connection: keep-alive" (token lists, case-insensitive)
    bool chunked = false;          // Transfer-Encoding: chunked (final coding)
    std::size_t content_length = 0;// valid when has_content_length
    bool has_content_length = false;
    bool expect_continue = false;  // Expect: 100-continue, in an HTTP/1.1 request (ignored
                                   // in HTTP/1.0, RFC 9110 §10.1.1); other expectations
                                   // are ignored
    std::string_view host;         // the Host value; empty when absent (HTTP/1.0 only)
};

enum class status : std::uint8_t { complete, incomplete, error };

// What parse_head() says about the start of a buffer.
struct head_result {
    status st = status::incomplete;
    std::size_t consumed = 0;      // when complete: bytes of the head, through the empty line.
                                   // When error: the offset of the byte that decided it (for
                                   // logs and tests). 0 when incomplete.
    int http_status = 0;           // when error: 400, 413, 414, 431, 501 or 505
    std::string_view reason;       // when error: short human reason, a string literal
};

// What one chunked_decoder::feed() did with its input.
struct body_result {
    status st = status::incomplete;
    std::size_t consumed = 0;  // when complete: input bytes through the final CRLF (what
                               // follows belongs to the next request). When incomplete:
                               // all of the input. When error: the offset of the byte
                               // that decided it, within this feed's input.
    int http_status = 0;       // when error: 400, 413 or 431
    std::string_view reason;   // when error: short human reason, a string literal
};

// Parses one request head from the start of `buf`. Zero-copy: `out` points into buf.
// Resumable: call again with the same bytes plus more; `incomplete` means need more (but a
// request line or header section already over its limit is an error at once, even before
// it is complete). Never reads past buf.size(). Error statuses: 400, 413, 414, 431, 501,
// 505. After `complete`, the body (if any) starts at buf[consumed]: content_length bytes
// when has_content_length, a chunked body when chunked, nothing otherwise.
[[nodiscard]] head_result parse_head(std::string_view buf, request& out, const limits& lim = {});

// Resumable chunked-body decoder: feed it whatever bytes follow the head; it appends decoded
// payload to `body` and returns how many input bytes it consumed. status complete after the
// last-chunk and trailers' terminating CRLF (bytes after that belong to the next request);
// incomplete when every byte was consumed and more are needed; error with http_status 400
// (bad chunk size, extension or framing; a chunk-size line over 4 KiB), 413 (decoded body
// over max_body, decided as each chunk-size line ends) or 431 (trailer section over
// max_header_bytes). On error, `body` may hold the payload decoded before it. Once complete
// or failed, further feeds consume nothing and repeat the answer.
// Chunk extensions (`;name`, `;name=token`, `;name="quoted"`, no whitespace) are checked and
// ignored; trailer fields are checked like header fields and discarded (Content-Length or
// Transfer-Encoding there is 400). Framing beyond the payload plus chunk_framing_allowance
// is 400. State lives in the decoder, so a body fed in k pieces costs O(body), not O(k x body).
class chunked_decoder {
public:
    explicit chunked_decoder(const limits& lim = {});
    [[nodiscard]] body_result feed(std::string_view in, std::string& body);

private:
    enum class state : std::uint8_t;
    limits lim_;                    // a copy: the decoder outlives any caller's temporary
    state st_;
    std::uint64_t size_ = 0;        // current chunk size, then bytes of it still to copy
    std::size_t size_digits_ = 0;
    bool size_overflow_ = false;
    std::size_t line_len_ = 0;      // bytes of the current chunk-size line (bounded)
    std::size_t decoded_ = 0;       // payload bytes so far, for max_body
    std::size_t trailer_len_ = 0;   // bytes of the trailer section, for max_header_bytes
    std::size_t framing_ = 0;       // bytes of size lines, extensions and data CRLFs
    char name_[17];                 // a trailer field name's first bytes, lower case
    std::size_t name_len_ = 0;      // its length; sizeof name_ + 1 once longer
    body_result final_{};           // the answer repeated once complete or failed
};

// The standard reason phrase ("OK", "Bad Request", ...); empty for a code it does not know
// (a status line may carry an empty reason phrase).
[[nodiscard]] std::string_view reason_phrase(int http_status) noexcept;

}  // namespace opreg::http
