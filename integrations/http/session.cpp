#include "session.hpp"

namespace opreg::http {

serve_result serve_requests(const app& a, const limits& lim, std::string_view data,
                            response_buffer& out, session_state& st, const stats_source* stats) {
    serve_result res;
    std::string chunked_body;
    while (res.consumed < data.size() && !st.close_after) {
        const std::string_view rest = data.substr(res.consumed);
        request req;
        const head_result head = parse_head(rest, req, lim);
        if (head.st == status::incomplete) break;
        if (head.st == status::error) {
            app::respond_error(head.http_status, head.reason, out);
            st.close_after = true;
            res.consumed = data.size();
            break;
        }
        std::string_view body;
        std::size_t total = head.consumed;
        const std::string_view after_head = rest.substr(head.consumed);
        bool waiting_for_body = false;
        if (req.chunked) {
            chunked_decoder dec(lim);
            chunked_body.clear();
            const body_result decoded = dec.feed(after_head, chunked_body);
            if (decoded.st == status::error) {
                app::respond_error(decoded.http_status, decoded.reason, out);
                st.close_after = true;
                res.consumed = data.size();
                break;
            }
            waiting_for_body = decoded.st == status::incomplete;
            body = chunked_body;
            total += decoded.consumed;
        } else if (req.has_content_length) {
            waiting_for_body = after_head.size() < req.content_length;
            body = after_head.substr(0, req.content_length);
            total += req.content_length;
        }
        if (waiting_for_body) {
            if (req.expect_continue && !st.sent_continue) {
                app::respond_continue(out);
                st.sent_continue = true;
            }
            break;
        }
        stats_view snapshot;  // taken only for the route that shows it
        const stats_view* shown = nullptr;
        if (stats != nullptr && req.target.starts_with("/stats")) {
            snapshot = stats->snapshot();
            shown = &snapshot;
        }
        const bool keep = a.respond(req, body, out, shown);
        ++res.requests;
        res.consumed += total;
        st.sent_continue = false;
        if (!keep) {
            st.close_after = true;
            res.consumed = data.size();  // nothing after a closing response is answered
        }
    }
    st.mid_request = res.consumed < data.size();
    return res;
}

} // namespace opreg::http
