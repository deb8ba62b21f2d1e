// SPDX-License-Identifier: Apache-2.0
// opreg-httpd's application: the routes and their responses, shared by both models.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http_parser.hpp"
#include "response_buffer.hpp"
#include "router.hpp"

namespace opreg::http {

// Registry statistics as the /stats route reports them, summed over the server's registries.
struct stats_view {
    std::string_view registry;
    std::string_view model;
    std::string_view backend;
    std::uint64_t armed = 0, completed = 0, cancelled = 0, closed = 0, timed_out = 0,
                  errors = 0, stale_dropped = 0, failures = 0, in_flight = 0;
    std::uint64_t connections = 0, requests = 0;
};

class app {
public:
    app();

    // Appends the response to `req` (body: its decoded body) to `out`, its head and its
    // body each marked as a part. Returns false when the connection must close after it.
    bool respond(const request& req, std::string_view body, response_buffer& out,
                 const stats_view* stats) const;

    // Appends an error response (400, 404, 413, 414, 431, 501, 505, 503, 408...) that
    // closes the connection.
    static void respond_error(int status, std::string_view reason, response_buffer& out);

    // 100 Continue interim response (one part).
    static void respond_continue(response_buffer& out);

private:
    enum handler : int { root, json, user, echo, stats };
    router routes_;
};

} // namespace opreg::http
