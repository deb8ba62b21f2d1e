// SPDX-License-Identifier: Apache-2.0
// The same bytes, whole or cut into pieces, must give the same answer: parse_head re-run
// on a growing buffer (as a connection calls it) stops at the same status, consumed and
// http_status as on the whole input, with header views of the same content; the chunked
// decoder fed piece by piece decodes the same body and stops at the same byte.
//
// Where to cut: the first 8 bytes of the input and its length seed a small generator that
// draws 1..15 cut positions (or, for short inputs one time in 16, cuts at every byte). The
// input itself stays whole as the payload, so seeds from a corpus of real requests keep
// their meaning while mutations of their first bytes move the cuts.
#include "fuzz_common.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

using namespace opreg::http;
using namespace opreg::http::fuzz;

void same_request(const request& a, const request& b) {
    FUZZ_CHECK(a.method == b.method && a.target == b.target && a.version_minor == b.version_minor);
    FUZZ_CHECK(a.header_count == b.header_count);
    for (std::size_t k = 0; k < a.header_count; ++k)
        FUZZ_CHECK(a.headers[k].name == b.headers[k].name && a.headers[k].value == b.headers[k].value);
    FUZZ_CHECK(a.keep_alive == b.keep_alive && a.chunked == b.chunked && a.expect_continue == b.expect_continue);
    FUZZ_CHECK(a.has_content_length == b.has_content_length && a.content_length == b.content_length);
    FUZZ_CHECK(a.host == b.host);
}

void head_split(std::string_view payload, const std::vector<std::size_t>& cuts, const limits& lim) {
    const exact_copy whole_copy(payload);
    request whole;
    const head_result w = parse_head(whole_copy.view(), whole, lim);
    check_head(whole_copy.view(), w, whole, lim);

    // Each cut is a moment the connection has received that many bytes.
    for (std::size_t cut : cuts) {
        const exact_copy prefix(payload.substr(0, cut));
        request r;
        const head_result p = parse_head(prefix.view(), r, lim);
        check_head(prefix.view(), p, r, lim);
        if (p.st == status::incomplete) {
            // Undecided so far: the whole input decides at or after this point.
            FUZZ_CHECK(w.st == status::incomplete ||
                       (w.st == status::complete ? w.consumed : w.consumed + 1) > cut);
            continue;
        }
        FUZZ_CHECK(p.st == w.st && p.consumed == w.consumed && p.http_status == w.http_status);
        FUZZ_CHECK(p.reason == w.reason);
        if (p.st == status::complete) same_request(r, whole);
        return;  // a connection stops at the first answer
    }
}

struct decode_result {
    body_result last;
    std::size_t stop = 0;  // input offset where decoding stopped (end, or the deciding byte)
    std::string body;
};

decode_result decode_pieces(std::string_view bytes, const std::vector<std::size_t>& cuts, const limits& lim) {
    chunked_decoder dec(lim);
    decode_result out;
    std::size_t from = 0;
    std::vector<std::size_t> ends = cuts;
    ends.push_back(bytes.size());
    for (std::size_t to : ends) {
        if (to < from) continue;
        const exact_copy piece(bytes.substr(from, to - from));
        out.last = dec.feed(piece.view(), out.body);
        check_feed(piece.view(), out.last, out.body.size(), lim);
        out.stop = from + out.last.consumed;
        if (out.last.st != status::incomplete) return out;
        from = to;
    }
    return out;
}

void chunked_split(std::string_view bytes, const std::vector<std::size_t>& cuts, const limits& lim) {
    const decode_result whole = decode_pieces(bytes, {}, lim);
    const decode_result split = decode_pieces(bytes, cuts, lim);
    FUZZ_CHECK(whole.last.st == split.last.st && whole.last.http_status == split.last.http_status);
    FUZZ_CHECK(whole.stop == split.stop && whole.body == split.body);
}

std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::vector<std::size_t> choose_cuts(std::string_view in) {
    std::uint64_t seed = 0;
    for (std::size_t k = 0; k < in.size() && k < 8; ++k) seed = seed << 8 | static_cast<unsigned char>(in[k]);
    seed ^= in.size() * 0xD6E8FEB86659FD93ull;
    std::vector<std::size_t> cuts;
    if (in.size() <= 512 && splitmix64(seed) % 16 == 0) {
        for (std::size_t k = 0; k <= in.size(); ++k) cuts.push_back(k);
        return cuts;
    }
    const std::size_t n = 1 + splitmix64(seed) % 15;
    for (std::size_t k = 0; k < n; ++k) cuts.push_back(splitmix64(seed) % (in.size() + 1));
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    return cuts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view payload(reinterpret_cast<const char*>(data), size);
    const std::vector<std::size_t> cuts = choose_cuts(payload);
    for (const limits& lim : {limits{}, small_limits()}) {
        head_split(payload, cuts, lim);
        // The decoder sees the body after a complete chunked head, and the raw payload.
        request r;
        const head_result h = parse_head(payload, r, lim);
        if (h.st == status::complete && r.chunked) {
            std::vector<std::size_t> body_cuts;
            for (std::size_t c : cuts)
                if (c > h.consumed) body_cuts.push_back(c - h.consumed);
            chunked_split(payload.substr(h.consumed), body_cuts, lim);
        }
        chunked_split(payload, cuts, lim);
    }
    return 0;
}
