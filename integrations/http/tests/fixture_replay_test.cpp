// SPDX-License-Identifier: Apache-2.0
// Every request of the llhttp fixtures, sent over a socket to a started opreg-httpd: a
// request the fixture marks as an error gets a 4xx/5xx and a closed connection, a valid
// one gets a response, and the server keeps serving new connections throughout. Skipped
// (not passed) when the fixtures are absent.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "llhttp_fixtures.hpp"

namespace {

// opreg-httpd as a child process on a free loopback port.
class server_process {
public:
    explicit server_process(const char* binary) {
        int out[2];
        if (::pipe(out) != 0) return;
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], 1);
            ::close(out[0]);
            ::close(out[1]);
            ::execl(binary, binary, "--port", "0", "--threads", "1", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(out[1]);
        std::string line;
        char c;
        while (line.size() < 200 && ::read(out[0], &c, 1) == 1 && c != '\n') line += c;
        ::close(out[0]);
        std::sscanf(line.c_str(), "listening on 127.0.0.1:%d", &port_);
    }
    ~server_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status;
            ::waitpid(pid_, &status, 0);
        }
    }
    int port() const noexcept { return port_; }
    bool alive() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

private:
    pid_t pid_ = -1;
    int port_ = 0;
};

struct exchange {
    std::string response;
    bool closed = false;
};

// Sends `raw`, then reads until the server closes, or (when a response head has arrived and
// `stop_at_response`) until it is complete enough to judge, or 2 s pass.
exchange send_raw(int port, const std::string& raw, bool stop_at_response) {
    exchange ex;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(std::uint16_t(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return ex;
    }
    (void)!::send(fd, raw.data(), raw.size(), MSG_NOSIGNAL);
    // The end of the fixture is the end of the input (llhttp_finish): say so.
    ::shutdown(fd, SHUT_WR);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < give_up) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) != 1) {
            if (stop_at_response && ex.response.find("\r\n\r\n") != std::string::npos) break;
            continue;
        }
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            ex.closed = true;
            break;
        }
        ex.response.append(buf, std::size_t(n));
    }
    ::close(fd);
    return ex;
}

int status_of(const std::string& response) {
    int st = 0;
    std::sscanf(response.c_str(), "HTTP/1.%*d %d", &st);
    return st;
}

// Why opreg may answer a request llhttp parses as valid with an error: a rule of the parser's
// contract (parser/http_parser.hpp) or of the routes. Empty: no rule, a regression.
std::string refusal_rule(const std::string& raw, const std::string& title, int status) {
    const std::string line = raw.substr(0, raw.find('\n'));
    const std::string method = line.substr(0, line.find(' '));
    const bool http11 = line.find("HTTP/1.1") != std::string::npos;
    const bool has_host = raw.find("\nHost:") != std::string::npos ||
                          raw.find("\nhost:") != std::string::npos;
    if (status == 404 || status == 405) return "a path or method the routes do not serve";
    if (status == 501 && method != "GET" && method != "HEAD" && method != "POST")
        return "a method the server does not implement (RFC 9110 9.1)";
    if (status == 400 && http11 && !has_host)
        return "an HTTP/1.1 request without Host (RFC 9112 3.2)";
    // Stricter than llhttp, each named in the parser's contract and tests/framing_diff.py.
    if (status == 400 && (title == "Prefix newline" || title == "Request starting with CRLF"))
        return "empty lines before the request line";
    if (status == 400 && title == "No HTTP version") return "an HTTP/0.9 request line";
    if (status == 400 && line.find("RTSP/") != std::string::npos) return "not an HTTP version";
    return "";
}

} // namespace

TEST(FixtureReplay, EveryLlhttpRequestGetsAnAnswerAndErrorsClose) {
    const std::string dir = std::string(OPREG_FIXTURES_DIR) + "/http/llhttp-request";
    if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << "fixtures absent: " << dir;
    const auto cases = opreg::http::test_fixtures::load_llhttp_fixtures(dir);
    ASSERT_FALSE(cases.empty());
    server_process srv(OPREG_HTTPD_PATH);
    ASSERT_GT(srv.port(), 0) << "opreg-httpd did not start";

    int errors = 0, valid = 0, lenient = 0, refused_by_rule = 0;
    for (const auto& fc : cases) {
        const bool is_lenient = fc.meta_type.find("lenient") != std::string::npos;
        const exchange ex = send_raw(srv.port(), fc.raw, !fc.llhttp_error);
        const int st = status_of(ex.response);
        SCOPED_TRACE(fc.file + ": " + fc.title);
        if (is_lenient) {
            // llhttp accepts these only in a lenient mode: we may answer or refuse, but
            // must do one of them, and close after a refusal.
            ++lenient;
            EXPECT_TRUE(st >= 100 || ex.closed) << "no answer";
            if (st >= 400) {
                EXPECT_TRUE(ex.closed) << "an error response must close";
            }
        } else if (fc.llhttp_error) {
            ++errors;
            EXPECT_GE(st, 400) << "an invalid request must get an error status; got: "
                               << ex.response.substr(0, 80);
            EXPECT_LT(st, 600);
            EXPECT_TRUE(ex.closed) << "the connection must close after an error response";
        } else {
            ++valid;
            EXPECT_GE(st, 100) << "a valid request must get a response";
            if (st >= 400) {
                const std::string why = refusal_rule(fc.raw, fc.title, st);
                EXPECT_FALSE(why.empty()) << "a valid request refused with " << st
                                          << " by no rule of the parser's contract";
                ++refused_by_rule;
            }
        }
        ASSERT_TRUE(srv.alive()) << "the server died";
    }
    // And it still serves.
    const exchange last = send_raw(srv.port(), "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", false);
    EXPECT_EQ(status_of(last.response), 200);
    std::printf("replayed %zu fixture requests: %d errors, %d valid (%d of them refused, each by a "
                "named rule), %d lenient\n",
                cases.size(), errors, valid, refused_by_rule, lenient);
}
