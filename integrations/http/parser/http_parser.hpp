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
//     method is 1*tchar; request-target is 1*VCHAR (no bytes >= 0x80, no controls).
//     Empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2) and count
//     toward max_request_line.
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
};

struct header {
    std::string_view name;   // as sent (compare case-insensitively)
    std::string_view value;  // leading and trailing SP/HT removed
};

// Valid only after parse_head() returned `complete`; otherwise partly filled.
struct request {
    std::string_view method;       // as sent, e.g. "GET"
    std::string_view target;       // request-target, e.g. "/users/7?x=1"
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
// Chunk extensions (`;name`, `;name=token`, `;name="quoted"`) are checked and ignored;
// trailer fields are checked like header fields and discarded.
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
    body_result final_{};           // the answer repeated once complete or failed
};

// The standard reason phrase ("OK", "Bad Request", ...); empty for a code it does not know
// (a status line may carry an empty reason phrase).
[[nodiscard]] std::string_view reason_phrase(int http_status) noexcept;

}  // namespace opreg::http
