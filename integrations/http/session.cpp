// SPDX-License-Identifier: Apache-2.0
#include "session.hpp"

#include <algorithm>
#include <string>

#include "held_bytes.hpp"

namespace opreg::http {

// A request whose head is complete and whose body is still arriving.
struct body_in_progress {
    held_bytes head;            // a copy of the head: `req` points into it (it never moves)
    request req;
    chunked_decoder decoder;    // when req.chunked
    std::size_t remaining = 0;  // when Content-Length: bytes still to come
    std::string body;           // the payload so far
    body_budget* budget = nullptr;
    std::size_t taken = 0;      // bytes of the budget held for `body`

    explicit body_in_progress(const limits& lim) : decoder{lim} {}
    ~body_in_progress() {
        if (budget != nullptr) budget->give(taken);
    }
    body_in_progress(const body_in_progress&) = delete;
    body_in_progress& operator=(const body_in_progress&) = delete;

    // Takes from the budget what `body` holds now (its capacity: what it costs). false: over.
    bool account() {
        // An empty string's room is inside it (no allocation): nothing to charge.
        const std::size_t need =
            body.capacity() <= std::string{}.capacity() ? 0 : body.capacity();
        if (budget == nullptr || need <= taken) return true;
        if (!budget->try_take(need - taken)) return false;
        taken = need;
        return true;
    }

    // Makes room in `body` for `extra` more bytes of a payload of at most `most` bytes,
    // taking the room from the budget before allocating it: the budget is charged for bytes
    // that arrive, not for a length a head declares (a head alone holds nothing). The room
    // doubles, so that a body arriving in k reads is copied O(body) times in all, up to
    // `most`. false: over the budget.
    bool make_room(std::size_t extra, std::size_t most) {
        const std::size_t need = body.size() + extra;
        if (need <= body.capacity()) return true;
        const std::size_t want =
            std::max(need, std::min(std::max(2 * body.capacity(), std::size_t{4096}), most));
        if (budget != nullptr && want > taken) {
            if (!budget->try_take(want - taken)) return false;
            taken = want;
        }
        std::string bigger;
        bigger.reserve(want);  // a new string gets what it asks for, not a doubled size
        bigger.append(body);
        body = std::move(bigger);
        return account();  // a library that allocates more than asked: that is charged too
    }
};

session_state::session_state() = default;
session_state::~session_state() = default;

namespace {

// An error answer ends the connection: nothing after it is read.
void refuse(session_state& st, int status, std::string_view reason, response_buffer& out) {
    app::respond_error(status, reason, out);
    st.close_after = true;
    st.body.reset();
}

constexpr std::string_view over_budget =
    "request bodies in progress are over the server's memory budget";

// Answers one complete request. false: the connection closes after this answer.
bool answer(const session_context& cx, const request& req, std::string_view body,
            response_buffer& out) {
    stats_view snapshot;  // taken only for the route that shows it
    const stats_view* shown = nullptr;
    if (cx.stats != nullptr && req.path.starts_with("/stats")) {
        snapshot = cx.stats->snapshot();
        shown = &snapshot;
    }
    return cx.application.respond(req, body, out, shown);
}

// Feeds `in` to the body in progress. Returns the bytes used; st.body is complete when
// `done` is set, and st.close_after is set on an error (answered here).
std::size_t continue_body(std::string_view in, session_state& st, response_buffer& out,
                          bool& done) {
    body_in_progress& b = *st.body;
    done = false;
    if (b.req.chunked) {
        const body_result r = b.decoder.feed(in, b.body);
        if (r.st == status::error) {
            refuse(st, r.http_status, r.reason, out);
            return in.size();
        }
        if (!b.account()) {
            refuse(st, 503, over_budget, out);
            return in.size();
        }
        done = r.st == status::complete;
        return r.consumed;
    }
    const std::size_t take = std::min(in.size(), b.remaining);
    if (!b.make_room(take, b.req.content_length)) {
        refuse(st, 503, over_budget, out);
        return in.size();
    }
    b.body.append(in.substr(0, take));
    b.remaining -= take;
    done = b.remaining == 0;
    return take;
}

} // namespace

serve_result serve_requests(const session_context& cx, std::string_view data,
                            response_buffer& out, session_state& st) {
    serve_result res;
    std::string chunked_body;  // a chunked body that arrived whole
    while (!st.close_after) {
        if (st.body) {
            bool done = false;
            res.consumed += continue_body(data.substr(res.consumed), st, out, done);
            if (st.close_after) break;
            if (!done) break;  // every byte is taken; more are needed
            const bool keep = answer(cx, st.body->req, st.body->body, out);
            ++res.requests;
            st.body.reset();
            st.sent_continue = false;
            st.close_after = !keep;
            continue;
        }
        if (res.consumed == data.size()) break;
        if (out.size() >= cx.max_output) {
            res.output_full = true;
            break;
        }
        const std::string_view rest = data.substr(res.consumed);
        request req;
        const head_result head = parse_head(rest, req, cx.lim);
        if (head.st == status::incomplete) break;
        if (head.st == status::error) {
            refuse(st, head.http_status, head.reason, out);
            break;
        }
        const std::string_view after_head = rest.substr(head.consumed);
        std::string_view body;
        std::size_t total = head.consumed;
        bool whole = true;
        chunked_decoder dec(cx.lim);
        if (req.chunked) {
            // Most bodies arrive with their head: decode them here, keep nothing.
            chunked_body.clear();
            const body_result decoded = dec.feed(after_head, chunked_body);
            if (decoded.st == status::error) {
                refuse(st, decoded.http_status, decoded.reason, out);
                break;
            }
            whole = decoded.st == status::complete;
            body = chunked_body;
            total += decoded.consumed;
        } else if (req.has_content_length) {
            whole = after_head.size() >= req.content_length;
            body = after_head.substr(0, req.content_length);
            total += req.content_length;
        }
        if (!whole) {
            // The body goes on arriving: keep the head and the body so far in the session.
            auto b = std::make_unique<body_in_progress>(cx.lim);
            b->head.assign(rest.substr(0, head.consumed));
            (void)parse_head(b->head.view(), b->req, cx.lim);  // same bytes: same request
            b->budget = cx.budget;
            if (req.chunked) {
                b->decoder = dec;  // a value: its state goes on from where it stopped
                b->body = std::move(chunked_body);
            } else {
                b->remaining = req.content_length - after_head.size();
                // A body larger than the whole budget can never fit: refused at its head,
                // before a 100 Continue asks for it.
                if ((cx.budget != nullptr && req.content_length > cx.budget->limit()) ||
                    !b->make_room(after_head.size(), req.content_length)) {
                    refuse(st, 503, over_budget, out);
                    break;
                }
                b->body.append(after_head);
            }
            if (!b->account()) {
                refuse(st, 503, over_budget, out);
                break;
            }
            if (req.expect_continue && !st.sent_continue) {
                app::respond_continue(out);
                st.sent_continue = true;
            }
            st.body = std::move(b);
            res.consumed = data.size();
            break;
        }
        const bool keep = answer(cx, req, body, out);
        ++res.requests;
        res.consumed += total;
        st.sent_continue = false;
        st.close_after = !keep;
    }
    // Nothing after an error or a closing response is answered: all of it is used up.
    if (st.close_after) res.consumed = data.size();
    st.mid_request = !st.close_after && (st.body != nullptr || res.consumed < data.size());
    return res;
}

} // namespace opreg::http
