// The request loop both server models share: take the bytes a connection has received,
// answer every complete request in them (pipelined requests included), and say how many
// bytes were used. Responses are appended to one response_buffer so that the caller sends
// all the answers to one read in one write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "app.hpp"
#include "http_parser.hpp"
#include "response_buffer.hpp"

namespace opreg::http {

// Where /stats gets its numbers; called only for that route.
class stats_source {
public:
    virtual ~stats_source() = default;
    [[nodiscard]] virtual stats_view snapshot() const = 0;
};

struct session_state {
    bool close_after = false;    // an error, "Connection: close" or HTTP/1.0: close when sent
    bool sent_continue = false;  // 100 Continue already sent for the request in progress
    bool mid_request = false;    // bytes of an incomplete request are waiting
};

struct serve_result {
    std::size_t consumed = 0;
    std::uint64_t requests = 0;
};

serve_result serve_requests(const app& a, const limits& lim, std::string_view data,
                            response_buffer& out, session_state& st, const stats_source* stats);

} // namespace opreg::http
