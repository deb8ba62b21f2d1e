// SPDX-License-Identifier: Apache-2.0
#include "app.hpp"

#include <charconv>
#include <cstdio>
#include <limits>

namespace opreg::http {

namespace {

void append_number(std::string& out, std::uint64_t v) {
    char buf[std::numeric_limits<std::uint64_t>::digits10 + 1];  // every digit of a uint64
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// Status line, the common headers, then the body (omitted for HEAD): two parts.
void append_response(response_buffer& buf, int status, std::string_view content_type,
                     std::string_view body, bool keep_alive, int version_minor, bool head,
                     std::string_view extra_headers = {}) {
    std::string& out = buf.bytes();
    out += version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
    append_number(out, std::uint64_t(status));
    out += ' ';
    out += reason_phrase(status);
    out += "\r\nServer: opreg-httpd\r\nContent-Type: ";
    out += content_type;
    out += "\r\nContent-Length: ";
    append_number(out, body.size());
    out += "\r\n";
    if (!keep_alive) {
        out += "Connection: close\r\n";
    } else if (version_minor == 0) {
        out += "Connection: keep-alive\r\n";
    }
    out += extra_headers;
    out += "\r\n";
    buf.end_part();
    if (!head) out += body;
    buf.end_part();
}

// JSON string escaping for the few untrusted values echoed back (path parameters).
void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char esc[sizeof "\\u0000"];
            std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned char>(c));
            out += esc;
        } else {
            out += c;
        }
    }
    out += '"';
}

} // namespace

app::app() {
    routes_.add("GET", "/", root);
    routes_.add("GET", "/json", json);
    routes_.add("GET", "/users/{id}", user);
    routes_.add("POST", "/echo", echo);
    routes_.add("GET", "/stats", stats);
}

bool app::respond(const request& req, std::string_view body, response_buffer& out,
                  const stats_view* sv) const {
    const bool head = req.method == "HEAD";
    if (req.method == "CONNECT") {  // a tunnel this server does not offer; what follows is not HTTP
        append_response(out, 501, "text/plain", "CONNECT is not supported\n", false,
                         req.version_minor, false);
        return false;
    }
    std::string_view path = req.path;  // origin-form, also for an absolute-form target
    if (const auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
    const route_match m = routes_.match(req.method, path);
    const bool keep = req.keep_alive;
    if (m.result == route_match::kind::not_found) {
        append_response(out, 404, "text/plain", "Not Found\n", keep, req.version_minor, head);
        return keep;
    }
    if (m.result == route_match::kind::method_not_allowed) {
        const std::string allow = "Allow: " + m.allowed + "\r\n";
        append_response(out, 405, "text/plain", "Method Not Allowed\n", keep, req.version_minor,
                        head, allow);
        return keep;
    }
    switch (m.handler) {
        case root:
            append_response(out, 200, "text/plain", "Hello, World!", keep, req.version_minor, head);
            break;
        case json:
            append_response(out, 200, "application/json", "{\"message\":\"Hello, World!\"}", keep,
                            req.version_minor, head);
            break;
        case user: {
            std::string b = "{\"id\":";
            append_json_string(b, m.param("id"));
            b += '}';
            append_response(out, 200, "application/json", b, keep, req.version_minor, head);
            break;
        }
        case echo:
            append_response(out, 200, "application/octet-stream", body, keep, req.version_minor,
                            false);
            break;
        case stats: {
            std::string b;
            if (sv != nullptr) {
                b = "{\"registry\":";
                append_json_string(b, sv->registry);
                b += ",\"model\":";
                append_json_string(b, sv->model);
                b += ",\"backend\":";
                append_json_string(b, sv->backend);
                const std::pair<const char*, std::uint64_t> fields[] = {
                    {"armed", sv->armed},           {"completed", sv->completed},
                    {"cancelled", sv->cancelled},   {"closed", sv->closed},
                    {"timed_out", sv->timed_out},   {"errors", sv->errors},
                    {"stale_dropped", sv->stale_dropped}, {"failures", sv->failures},
                    {"in_flight", sv->in_flight},   {"connections", sv->connections},
                    {"requests", sv->requests}};
                for (const auto& [name, value] : fields) {
                    b += ",\"";
                    b += name;
                    b += "\":";
                    append_number(b, value);
                }
                b += "}";
            } else {
                b = "{}";
            }
            append_response(out, 200, "application/json", b, keep, req.version_minor, head);
            break;
        }
        default:
            append_response(out, 500, "text/plain", "Internal Server Error\n", false,
                            req.version_minor, head);
            return false;
    }
    return keep;
}

void app::respond_error(int status, std::string_view reason, response_buffer& out) {
    std::string body(reason);
    body += '\n';
    append_response(out, status, "text/plain", body, false, 1, false);
}

void app::respond_continue(response_buffer& out) {
    out.bytes() += "HTTP/1.1 100 Continue\r\n\r\n";
    out.end_part();
}

} // namespace opreg::http
