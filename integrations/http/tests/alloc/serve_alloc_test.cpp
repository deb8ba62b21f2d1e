// SPDX-License-Identifier: Apache-2.0
// opreg-httpd serves a keep-alive request with no heap allocation once warm: in completion
// mode and in readiness mode, with a strategy that ends ops directly and one that hands them
// off. The server runs in this process (run_async, on a thread of its own); the client is
// system calls on fixed buffers, so every allocation counted between two readings
// (alloc_counter.cpp's replacement operator new) is the server's.
#include "alloc/alloc_counter.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>

#include "server.hpp"

namespace {

using namespace std::chrono_literals;

struct mode {
    const char* backend;   // as --backend names it
    const char* registry;
};

// Before counting, at least this many requests answered and this long served: every buffer
// and pool has grown by then, and the once-a-second timeout sweep has run (its first run
// sizes the timer heap's free list). Then this many counted.
constexpr int warm_requests = 2000;
constexpr auto warm_time = 1500ms;
constexpr int counted_requests = 2000;

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

int connect_to(int port) {
    for (int tries = 0; tries < 500; ++tries) {  // the server may not listen yet
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(std::uint16_t(port));
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            const timeval limit{.tv_sec = 5, .tv_usec = 0};  // a lost answer fails, not hangs
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
            return fd;
        }
        ::close(fd);
        std::this_thread::sleep_for(10ms);
    }
    return -1;
}

// Sends `request` and reads until `answers` answers, each ending with "Hello, World!" (or
// with `last`), have come into buf. Empty when they did not.
std::string_view exchange(int fd, std::string_view request, char (&buf)[8192], int answers = 1,
                          std::string_view last = "Hello, World!") {
    if (::write(fd, request.data(), request.size()) != ssize_t(request.size())) return {};
    std::size_t got = 0;
    int seen = 0;
    while (got < sizeof buf) {
        const ssize_t n = ::read(fd, buf + got, sizeof buf - got);
        if (n <= 0) return {};
        // Count the answers that end in the new bytes (an end split across reads included).
        const std::size_t from = got >= last.size() ? got - last.size() + 1 : 0;
        got += std::size_t(n);
        for (std::size_t at = std::string_view(buf, got).find(last, from);
             at != std::string_view::npos; at = std::string_view(buf, got).find(last, at + 1))
            ++seen;
        if (seen == answers) return {buf, got};
    }
    return {};
}

// opreg-httpd on a thread of this process, stopped by SIGTERM when the test ends. SIGTERM
// is blocked in every thread (the server sigwaits for it), so the signal ends the server,
// not the test.
class in_process_server {
public:
    explicit in_process_server(const opreg::http::server_options& opt) {
        sigset_t sigs;
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &sigs, &old_);
        thread_ = std::thread([this, opt] { status_ = opreg::http::run_async(opt); });
    }
    ~in_process_server() {
        ::kill(::getpid(), SIGTERM);
        thread_.join();
        // A server that ended before its sigwait (it could not listen) left the signal
        // pending: take it, so that unblocking it does not end the test.
        sigset_t sigs;
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        const timespec now{};
        while (sigtimedwait(&sigs, nullptr, &now) == SIGTERM) {
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    int status() const { return status_; }

private:
    sigset_t old_{};
    std::thread thread_;
    int status_ = -1;
};

struct counted {
    std::size_t allocations = 0;  // during the counted requests
    int answered = 0;             // exchanges whose answers all came, warm-up included
    int exchanges = 0;
    std::string ran_on;           // the backend /stats names
};

// Warms a server up, then counts the allocations of counted_requests exchanges of `depth`
// pipelined GETs each (one write, `depth` answers).
counted count_allocations(const mode& m, int depth) {
    opreg::http::server_options opt;
    opt.registry = m.registry;
    opt.completion = std::string_view(m.backend) == "io_uring-completion";
    opt.which = opt.completion ? opreg::backend::io_uring : opreg::backend::epoll;
    opt.port = free_port();
    counted r;
    in_process_server srv(opt);
    const int fd = connect_to(opt.port);
    if (fd < 0) {
        ADD_FAILURE() << "the server did not listen on port " << opt.port;
        return r;
    }
    std::string request;
    for (int i = 0; i < depth; ++i) request += "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    char buf[8192];
    for (const auto start = std::chrono::steady_clock::now();
         r.exchanges < warm_requests || std::chrono::steady_clock::now() - start < warm_time;
         ++r.exchanges)
        r.answered += !exchange(fd, request, buf, depth).empty();
    const std::size_t before = opreg_test::allocations();
    for (int i = 0; i < counted_requests; ++i) r.answered += !exchange(fd, request, buf, depth).empty();
    r.allocations = opreg_test::allocations() - before;
    r.exchanges += counted_requests;
    // Which backend served (a kernel that refuses io_uring falls back to epoll).
    const std::string_view stats = exchange(fd, "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n", buf, 1, "}");
    if (const std::size_t at = stats.find("\"backend\":\""); at != std::string_view::npos) {
        const std::string_view rest = stats.substr(at + 11);
        r.ran_on = std::string(rest.substr(0, rest.find('"')));
    }
    ::close(fd);
    return r;
}

// `depth` pipelined GETs an exchange ("keep-alive requests" or "pipelines of 16"): none
// allocates once warm.
void expect_no_allocations(const mode& m, int depth, const char* what) {
    const counted r = count_allocations(m, depth);
    if (r.ran_on != m.backend) GTEST_SKIP() << m.backend << " refused here: ran on " << r.ran_on;
    EXPECT_EQ(r.answered, r.exchanges);
    EXPECT_EQ(r.allocations, 0u) << r.allocations << " allocations in " << counted_requests << " "
                                 << what << " on " << m.backend << " with " << m.registry;
}

class ServeAlloc : public ::testing::TestWithParam<mode> {};

TEST_P(ServeAlloc, AKeepAliveRequestAllocatesNothingOnceWarm) {
    expect_no_allocations(GetParam(), 1, "keep-alive requests");
}

TEST_P(ServeAlloc, ASixteenDeepPipelineAllocatesNothingOnceWarm) {
    expect_no_allocations(GetParam(), 16, "pipelines of 16");
}

INSTANTIATE_TEST_SUITE_P(Modes, ServeAlloc,
                         ::testing::Values(mode{"io_uring-completion", "slot_array"},
                                           mode{"io_uring-completion", "mpsc_queue"},
                                           mode{"epoll", "slot_array"},
                                           mode{"epoll", "mpsc_queue"}),
                         [](const ::testing::TestParamInfo<mode>& i) {
                             std::string name = std::string(i.param.backend) + "_" + i.param.registry;
                             for (char& c : name)
                                 if (c == '-') c = '_';
                             return name;
                         });

}  // namespace
