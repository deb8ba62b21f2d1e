// SPDX-License-Identifier: Apache-2.0
// echo_epoll: an echo server on a loop of its own, epoll_wait and nothing else, with an
// opreg registry tracking each connection's pending read or write. No opreg reactor: this
// is what a server that already has its event loop keeps of opreg. See --help.
//
// The loop's whole contact with opreg is one line per event: the token epoll carried back in
// data.u64 and the readiness it reported go to reg.dispatch(), which runs the callback of the
// op waiting for it (echo_core.hpp) or drops the event if the fd was closed since.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <opreg/opreg.hpp>

#include "echo_core.hpp"
#include "support.hpp"

namespace {

constexpr const char* usage = R"usage(usage: echo_epoll [--port N]

An echo server on 127.0.0.1 driven by its own epoll loop; an opreg::slot_array holds each
connection's pending read or write, and each epoll event goes to the registry's dispatch().

options:
  --port N   port on 127.0.0.1 (default 7000; 0 picks a free one)
  --help     this text

Prints "listening on 127.0.0.1:PORT" once it accepts. SIGTERM or SIGINT: close every
connection, print the registry's statistics on stderr, exit 0.
)usage";

// The registry's tokens, handed to epoll: once per fd lifetime, edge-triggered. The registry
// latches an edge that comes while nothing is armed, so the fd is never re-registered per
// operation.
struct epoll_kernel {
    int ep;

    bool watch(int fd, std::uint64_t token, bool writes) const {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
        if (writes) ev.events |= EPOLLOUT;
        ev.data.u64 = token;
        if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0) return true;
        std::fprintf(stderr, "echo_epoll: epoll_ctl fd %d: %s\n", fd, std::strerror(errno));
        return false;
    }
    void unwatch(int fd) const { (void)::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr); }
};

}  // namespace

int main(int argc, char** argv) {
    long port = 7000;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help") return std::fputs(usage, stdout), 0;
        if (a == "--port" &&
            example::parse_long(example::flag_value(argc, argv, i), 0, 65535, port))
            continue;
        example::bad_flag(argv, argv[i]);
    }

    // First, before anything starts a thread: the stop signals go to stop_fd's own thread.
    const int stop_fd = example::stop_signal_fd();
    if (stop_fd < 0) {
        std::fprintf(stderr, "echo_epoll: cannot take SIGTERM and SIGINT: %s\n", std::strerror(errno));
        return 1;
    }
    example::ignore_sigpipe();
    int bound = static_cast<int>(port);
    const int lfd = example::listen_on(bound);
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || ep < 0) {
        std::fprintf(stderr, "echo_epoll: cannot start: %s\n", std::strerror(errno));
        return 1;
    }

    opreg::slot_array reg;
    epoll_kernel kernel{ep};
    example::echo_server server{reg, kernel, lfd, stop_fd};
    if (!server.start()) return 1;
    example::announce(bound);

    epoll_event events[64];
    while (!server.stopping()) {
        const int n = ::epoll_wait(ep, events, 64, -1);
        if (n < 0 && errno == EINTR) continue;  // interrupted (a debugger, say): wait again
        if (n < 0) {
            std::fprintf(stderr, "echo_epoll: epoll_wait: %s\n", std::strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; ++i)
            reg.dispatch(opreg::fd_token::from_u64(events[i].data.u64),
                         opreg::readiness_from_epoll(events[i].events));
    }

    server.shutdown();
    ::close(ep);
    server.report("echo_epoll");
    return 0;
}
