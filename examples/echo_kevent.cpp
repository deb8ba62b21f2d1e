// SPDX-License-Identifier: Apache-2.0
// echo_kevent: echo_epoll on kqueue. The same echo server (echo_core.hpp), the same registry;
// only the loop differs: the token rides in kevent's udata, and readiness_from_kevent maps
// each filter's report. Built where the kqueue backend is (BSD, macOS, and the kqueue
// configuration on Linux through libkqueue). See --help.
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <opreg/opreg.hpp>

#include "echo_core.hpp"
#include "support.hpp"

namespace {

constexpr const char* usage = R"usage(usage: echo_kevent [--port N]

An echo server on 127.0.0.1 driven by its own kqueue loop; an opreg::slot_array holds each
connection's pending read or write, and each kevent goes to the registry's dispatch().

options:
  --port N   port on 127.0.0.1 (default 7000; 0 picks a free one)
  --help     this text

Prints "listening on 127.0.0.1:PORT" once it accepts. SIGTERM or SIGINT: close every
connection, print the registry's statistics on stderr, exit 0.
)usage";

void* to_udata(std::uint64_t token) {
    return reinterpret_cast<void*>(static_cast<std::uintptr_t>(token));
}
std::uint64_t from_udata(void* udata) {
    return reinterpret_cast<std::uintptr_t>(udata);
}

// The registry's tokens, handed to kqueue in udata: once per fd lifetime, EV_CLEAR (edge-
// triggered). The registry latches an edge that comes while nothing is armed, so the filters
// are never re-added per operation.
struct kqueue_kernel {
    int kq;

    bool watch(int fd, std::uint64_t token, bool writes) const {
        struct kevent changes[2];
        EV_SET(&changes[0], fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, to_udata(token));
        EV_SET(&changes[1], fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, to_udata(token));
        if (::kevent(kq, changes, writes ? 2 : 1, nullptr, 0, nullptr) == 0) return true;
        std::fprintf(stderr, "echo_kevent: kevent fd %d: %s\n", fd, std::strerror(errno));
        return false;
    }
    // A BSD kernel drops an fd's filters when it is closed; libkqueue does not notice the
    // close, and would keep them for the next fd of that number. One filter per call: a
    // filter never added (EVFILT_WRITE on the listener) fails alone.
    void unwatch(int fd) const {
        for (const short filter : {EVFILT_READ, EVFILT_WRITE}) {
            struct kevent change;
            EV_SET(&change, fd, filter, EV_DELETE, 0, 0, nullptr);
            (void)::kevent(kq, &change, 1, nullptr, 0, nullptr);
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    static_assert(sizeof(std::uintptr_t) >= sizeof(std::uint64_t),
                  "udata carries the 64-bit token whole: a 64-bit platform");
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
        std::fprintf(stderr, "echo_kevent: cannot take SIGTERM and SIGINT: %s\n", std::strerror(errno));
        return 1;
    }
    example::ignore_sigpipe();
    int bound = static_cast<int>(port);
    const int lfd = example::listen_on(bound);
    const int kq = ::kqueue();
    if (lfd < 0 || kq < 0) {
        std::fprintf(stderr, "echo_kevent: cannot start: %s\n", std::strerror(errno));
        return 1;
    }

    opreg::slot_array reg;
    kqueue_kernel kernel{kq};
    example::echo_server server{reg, kernel, lfd, stop_fd};
    if (!server.start()) return 1;
    example::announce(bound);

    struct kevent events[64];
    while (!server.stopping()) {
        const int n = ::kevent(kq, nullptr, 0, events, 64, nullptr);
        if (n < 0 && errno == EINTR) continue;  // interrupted (a debugger, say): wait again
        if (n < 0) {
            std::fprintf(stderr, "echo_kevent: kevent: %s\n", std::strerror(errno));
            return 1;
        }
        // One kevent per filter: a read and a write report of one fd come as two events.
        for (int i = 0; i < n; ++i)
            reg.dispatch(opreg::fd_token::from_u64(from_udata(events[i].udata)),
                         opreg::readiness_from_kevent(events[i]));
    }

    server.shutdown();
    ::close(kq);
    server.report("echo_kevent");
    return 0;
}
