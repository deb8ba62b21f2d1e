// SPDX-License-Identifier: Apache-2.0
// examples/support.hpp — what every example needs around opreg and nothing of opreg itself:
// flags, a listening socket on 127.0.0.1, accepting without blocking, and turning SIGTERM and
// SIGINT into something a loop can wait for. POSIX calls only (no accept4, no SOCK_NONBLOCK),
// so that the kqueue example builds on BSD and macOS too.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace example {

// Parses a whole argument as a number in [lo, hi]; false for anything else.
inline bool parse_long(const char* s, long lo, long hi, long& out) {
    char* end = nullptr;
    errno = 0;
    out = std::strtol(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' && out >= lo && out <= hi;
}
inline bool parse_seconds(const char* s, double lo, double hi, double& out) {
    char* end = nullptr;
    errno = 0;
    out = std::strtod(s, &end);
    return errno == 0 && end != s && *end == '\0' && out >= lo && out <= hi;
}

// The value of flag argv[i] (the next argument), or a message and exit(2) when it is missing.
inline const char* flag_value(int argc, char** argv, int& i) {
    if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: %s needs a value (see --help)\n", argv[0], argv[i]);
        std::exit(2);
    }
    return argv[++i];
}

[[noreturn]] inline void bad_flag(char** argv, const char* flag) {
    std::fprintf(stderr, "%s: bad or unknown option '%s' (see --help)\n", argv[0], flag);
    std::exit(2);
}

inline bool set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 &&
           ::fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

// A non-blocking listening socket on 127.0.0.1:port (0 picks a free port, written back to
// `port`), or -1 with errno.
inline int listen_on(int& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    socklen_t len = sizeof addr;
    if (!set_nonblocking(fd) || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd, SOMAXCONN) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    port = ntohs(addr.sin_port);
    return fd;
}

// Accepts one pending connection as a non-blocking fd with TCP_NODELAY (answers are small
// and written whole), or -1 with errno (EAGAIN: none pending).
inline int accept_nonblocking(int listen_fd) {
    for (;;) {
        const int fd = ::accept(listen_fd, nullptr, nullptr);
        if (fd < 0 && errno == EINTR) continue;
        if (fd < 0) return -1;
        if (!set_nonblocking(fd)) {
            const int e = errno;
            ::close(fd);
            errno = e;
            return -1;
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
    }
}

// A write to a connection the peer has closed fails with EPIPE instead of killing the
// process with SIGPIPE (send's MSG_NOSIGNAL is not everywhere; this is).
inline void ignore_sigpipe() {
    struct sigaction sa {};
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGPIPE, &sa, nullptr);
}

// What the test scripts wait for: printed once the socket accepts.
inline void announce(int port) {
    std::printf("listening on 127.0.0.1:%d\n", port);
    std::fflush(stdout);
}

// SIGTERM and SIGINT, the signals that stop every example.
inline sigset_t stop_signals() {
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    return sigs;
}

// SIGTERM and SIGINT as a readable fd, for a loop of one's own: the signals are blocked in
// this thread and in every thread started after it, and a thread of this function's own takes
// them with sigwait() and writes one byte to a pipe whose read end the loop watches like any
// other fd. Call it first in main(), before any other thread starts: a thread started earlier
// keeps the signals unblocked, and the kernel may stop the process through it. Returns the
// read end, or -1 with errno.
//
// No signal handler runs, so nothing depends on when one would. With a handler that writes
// the byte (the self-pipe trick), a SIGTERM that came while the loop was between two
// epoll_wait() calls under ThreadSanitizer was seen never to reach the handler: the loop slept
// on for ever, about one stop in a hundred. sigwait() takes a blocked signal off the kernel's
// queue itself.
namespace detail {
inline void* write_a_byte_on_stop(void* write_end) {
    const sigset_t sigs = stop_signals();
    int sig = 0;
    while (::sigwait(&sigs, &sig) != 0) {}
    const char byte = 1;
    while (::write(static_cast<int>(reinterpret_cast<std::intptr_t>(write_end)), &byte, 1) < 0 &&
           errno == EINTR) {}
    return nullptr;
}
}  // namespace detail

inline int stop_signal_fd() {
    int p[2];
    if (::pipe(p) != 0) return -1;
    int e = set_nonblocking(p[0]) && set_nonblocking(p[1]) ? 0 : errno;
    const sigset_t sigs = stop_signals();
    sigset_t old;
    if (e == 0) e = ::pthread_sigmask(SIG_BLOCK, &sigs, &old);
    // The waiter lives as long as the process: detached, never joined.
    pthread_attr_t attr;
    if (e == 0 && (e = ::pthread_attr_init(&attr)) == 0) {
        pthread_t waiter;
        e = ::pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (e == 0)
            e = ::pthread_create(&waiter, &attr, detail::write_a_byte_on_stop,
                                 reinterpret_cast<void*>(static_cast<std::intptr_t>(p[1])));
        ::pthread_attr_destroy(&attr);
        if (e != 0) ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    if (e != 0) {
        ::close(p[0]);
        ::close(p[1]);
        errno = e;
        return -1;
    }
    return p[0];
}

// For threaded programs: block SIGTERM and SIGINT in this thread and every thread it starts
// afterwards, so that only wait_for_stop_signal() sees them.
inline sigset_t block_stop_signals() {
    const sigset_t sigs = stop_signals();
    ::pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    return sigs;
}
inline int wait_for_stop_signal(const sigset_t& sigs) {
    int sig = 0;
    while (::sigwait(&sigs, &sig) != 0) {}
    return sig;
}

}  // namespace example
