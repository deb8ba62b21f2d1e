// SPDX-License-Identifier: Apache-2.0
// Random bytes into parse_head (default and small limits) and, after a complete chunked
// head, into chunked_decoder; also the raw bytes straight into chunked_decoder. Every
// answer must keep the invariants of fuzz_common.hpp, and parsing twice must agree.
#include "fuzz_common.hpp"

#include <cstdint>

namespace {

using namespace opreg::http;
using namespace opreg::http::fuzz;

void decode_and_check(std::string_view body_bytes, const limits& lim) {
    const exact_copy copy(body_bytes);
    chunked_decoder dec(lim);
    std::string body;
    const body_result b = dec.feed(copy.view(), body);
    check_feed(copy.view(), b, body.size(), lim);
    // Once finished, the decoder repeats its answer and consumes nothing.
    if (b.st != status::incomplete) {
        const body_result again = dec.feed(copy.view(), body);
        FUZZ_CHECK(again.st == b.st && again.http_status == b.http_status && again.consumed == 0);
    }
}

void parse_and_check(std::string_view in, const limits& lim) {
    request r;
    const head_result h = parse_head(in, r, lim);
    check_head(in, h, r, lim);

    request r2;
    const head_result h2 = parse_head(in, r2, lim);
    FUZZ_CHECK(h2.st == h.st && h2.consumed == h.consumed && h2.http_status == h.http_status);

    if (h.st == status::complete && r.chunked) decode_and_check(in.substr(h.consumed), lim);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    parse_and_check(in, limits{});
    parse_and_check(in, small_limits());
    decode_and_check(in, limits{});
    decode_and_check(in, small_limits());
    return 0;
}
