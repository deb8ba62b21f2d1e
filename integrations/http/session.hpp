// SPDX-License-Identifier: Apache-2.0
// The request loop both server models share: take the bytes a connection has received,
// answer every complete request in them (pipelined requests included), and say how many
// bytes were used. Responses are appended to one response_buffer so that the caller sends
// all the answers to one read in one write.
//
// A body that has not fully arrived is taken out of the caller's bytes as it comes: the
// session keeps the request's head and its body so far (chunked bodies decoded on the fly,
// each byte fed to the decoder once), and the caller keeps only the bytes of an incomplete
// head. So a body that arrives in k reads costs O(body), not O(k x body), and what a
// connection holds for it is its payload, bounded by limits::max_body and, for all
// connections together, by a body_budget.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
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

// The bytes every connection of a server together may hold for request bodies that have
// not fully arrived, charged as the bytes arrive (the room a body's buffer takes), never
// for a length a head declares: heads that declare large bodies and send none hold nothing.
// A Content-Length body's room doubles as its bytes come (at most twice what arrived, and
// never more than its declared length) and is taken before it is allocated; a chunked body's is
// charged once a read's decoded bytes are in it, so it may pass the budget by one read's
// growth before its 503. A request whose arriving body would go over it, or whose declared
// length alone is more than all of it, is answered 503 and its connection closed. Any
// thread.
class body_budget {
public:
    explicit body_budget(std::size_t limit) noexcept : limit_{limit} {}
    body_budget(const body_budget&) = delete;
    body_budget& operator=(const body_budget&) = delete;

    [[nodiscard]] bool try_take(std::size_t n) noexcept {
        std::size_t held = held_.load(std::memory_order_relaxed);
        do {
            if (n > limit_ - held) return false;
        } while (!held_.compare_exchange_weak(held, held + n, std::memory_order_relaxed));
        return true;
    }
    void give(std::size_t n) noexcept { held_.fetch_sub(n, std::memory_order_relaxed); }
    [[nodiscard]] std::size_t held() const noexcept { return held_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

private:
    const std::size_t limit_;
    std::atomic<std::size_t> held_{0};  // a count: orders nothing
};

// Once the responses to one batch of input reach this size, the session stops answering
// and leaves the rest of the input for the next call (after the caller has written them):
// what a connection holds in unsent output is bounded by this plus one response.
inline constexpr std::size_t default_max_output = 256 * 1024;

struct session_context {
    const app& application;
    const limits& lim;
    const stats_source* stats = nullptr;  // for /stats; null: empty numbers
    body_budget* budget = nullptr;        // null: no server-wide bound on bodies
    std::size_t max_output = default_max_output;
};

struct body_in_progress;  // session.cpp

struct session_state {
    session_state();
    ~session_state();
    session_state(const session_state&) = delete;
    session_state& operator=(const session_state&) = delete;

    bool close_after = false;    // an error, "Connection: close" or HTTP/1.0: close when sent
    bool sent_continue = false;  // 100 Continue already sent for the request in progress
    bool mid_request = false;    // a request has started and is not complete yet
    // The request whose body is arriving: null otherwise, so an idle connection holds none.
    std::unique_ptr<body_in_progress> body;
};

struct serve_result {
    std::size_t consumed = 0;   // bytes of `data` used (taken into the session, or answered)
    std::uint64_t requests = 0; // requests answered
    bool output_full = false;   // stopped at max_output: call again (with no new bytes
                                // needed) once the output is written
};

// Answers the complete requests at the start of `data` (after a body in progress, which
// takes the first bytes). The caller keeps data[consumed:] and passes it again, followed by
// what arrives next; bytes before `consumed` are never needed again.
serve_result serve_requests(const session_context& cx, std::string_view data,
                            response_buffer& out, session_state& st);

} // namespace opreg::http
