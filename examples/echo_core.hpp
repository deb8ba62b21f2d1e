// SPDX-License-Identifier: Apache-2.0
// examples/echo_core.hpp — the echo server of echo_epoll.cpp and echo_kevent.cpp, all but
// the kernel loop: an opreg::slot_array holds each connection's pending read or write, and
// the callbacks below do the I/O and arm again. The loop that owns the kernel interface
// (epoll_wait, kevent) hands each event to reg.dispatch(); everything else is here, written
// once, because none of it depends on which kernel interface carried the token.
//
// Single-threaded: the loop's thread arms, dispatches and closes, so every callback runs on
// it (a bare registry runs a callback on the thread whose call ended the op).
//
// The rules this code keeps (registry.hpp has them all):
// - The kernel carries the fd's token (reg.token_of(fd)), handed to it once per fd
//   lifetime, edge-triggered. An edge that comes while nothing is armed is latched by the
//   registry and ends the next arm at once, so reading to EAGAIN and then arming loses
//   nothing.
// - An arm may end at once (a latched edge) and run its callback inside arm(), which may
//   close the connection: nothing touches a connection after arming it.
// - reg.close(fd) before ::close(fd): the fd's pending op ends as closed, and events of the
//   old fd still in the kernel's batch are dropped as stale instead of reaching the
//   connection that reuses the fd number. The kernel is told too (unwatch) rather than
//   trusted to forget a closed fd: libkqueue, kqueue's emulation on Linux, does not.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include <opreg/opreg.hpp>

#include "support.hpp"

namespace example {

// Kernel, the loop's side of the kernel interface:
//   bool watch(int fd, std::uint64_t token, bool writes)  hands fd's token to the kernel for
//       read readiness, and for write readiness too when `writes`; once per fd lifetime;
//   void unwatch(int fd)  forgets fd, before it is closed.
template <class Kernel>
class echo_server {
public:
    echo_server(opreg::slot_array& reg, Kernel& kernel, int listen_fd, int stop_fd)
        : reg_{reg},
          kernel_{kernel},
          listen_fd_{listen_fd},
          stop_fd_{stop_fd} {}

    echo_server(const echo_server&) = delete;
    echo_server& operator=(const echo_server&) = delete;

    // Watches the listener and the stop pipe and arms a read on each.
    [[nodiscard]] bool start() {
        return watch(listen_fd_, false) && watch(stop_fd_, false) && arm_listener() &&
               arm(stop_fd_, opreg::direction::read, [this](const opreg::completion& c) {
                   if (c.result == opreg::outcome::ready) stopping_ = true;
               });
    }

    // Set once SIGTERM or SIGINT came: the loop stops, then calls shutdown().
    [[nodiscard]] bool stopping() const noexcept { return stopping_; }

    // Closes every connection, the listener and the stop pipe.
    void shutdown() {
        for (auto& c : conns_)
            if (c) close_conn(c.get());
        close_fd(listen_fd_);
        close_fd(stop_fd_);
    }

    // One line on stderr: connections served and how their ops ended.
    void report(const char* name) const {
        const opreg::registry_stats s = reg_.stats();
        const auto n = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
        std::fprintf(stderr,
                     "%s: %llu connections; ops armed=%llu ready=%llu closed=%llu errors=%llu "
                     "stale_dropped=%llu in_flight=%llu\n",
                     name, n(accepted_), n(s.armed), n(s.completed), n(s.closed), n(s.errors),
                     n(s.stale_dropped), n(s.in_flight));
    }

private:
    struct conn {
        explicit conn(int f) : fd{f} {}
        int fd;
        std::size_t have = 0;  // bytes read into buf
        std::size_t sent = 0;  // of which written back
        std::array<char, 16384> buf;
    };

    bool watch(int fd, bool writes) {
        const opreg::result<opreg::fd_token> t = reg_.token_of(fd);
        if (!t) {
            std::fprintf(stderr, "echo: fd %d: %s\n", fd, opreg::to_string(t.error()).data());
            return false;
        }
        return kernel_.watch(fd, t.value().to_u64(), writes);
    }

    template <class F>
    bool arm(int fd, opreg::direction d, F&& f) {
        const opreg::result<opreg::op_token> op = reg_.arm(fd, d, std::forward<F>(f));
        if (!op)
            std::fprintf(stderr, "echo: arm fd %d: %s\n", fd, opreg::to_string(op.error()).data());
        return op.ok();
    }

    bool arm_listener() {
        return arm(listen_fd_, opreg::direction::read, [this](const opreg::completion& c) {
            if (c.result == opreg::outcome::ready) accept_all();
        });
    }

    // Edge-triggered: accept until EAGAIN, then arm again. (opreg::acceptor, which
    // line_server.cpp uses, also copes with running out of fds; this loop only reports it.)
    void accept_all() {
        for (;;) {
            const int fd = accept_nonblocking(listen_fd_);
            if (fd < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    std::fprintf(stderr, "echo: accept: %s\n", std::strerror(errno));
                break;
            }
            if (!watch(fd, true)) {
                ::close(fd);
                continue;
            }
            if (static_cast<std::size_t>(fd) >= conns_.size()) conns_.resize(fd + 1);
            conns_[fd] = std::make_unique<conn>(fd);
            ++accepted_;
            serve(conns_[fd].get());
        }
        (void)arm_listener();
    }

    // Echoes until the socket would block, then arms the direction it waits for. Ends with
    // that arm (or a close): the connection may be gone once it returns.
    void serve(conn* c) {
        for (;;) {
            if (c->sent < c->have) {
                const ssize_t n = ::write(c->fd, c->buf.data() + c->sent, c->have - c->sent);
                if (n > 0) {
                    c->sent += static_cast<std::size_t>(n);
                    continue;
                }
                if (n < 0 && errno == EINTR) continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    return arm_conn(c, opreg::direction::write);
                return close_conn(c);  // EPIPE, ECONNRESET: the peer is gone
            }
            c->have = c->sent = 0;
            const ssize_t n = ::read(c->fd, c->buf.data(), c->buf.size());
            if (n > 0) {
                c->have = static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return arm_conn(c, opreg::direction::read);
            return close_conn(c);  // end of file, or an error
        }
    }

    void arm_conn(conn* c, opreg::direction d) {
        // 16 bytes of captures: the callback lives inline in the op's slot, no allocation.
        const opreg::result<opreg::op_token> op =
            reg_.arm(c->fd, d, [this, c](const opreg::completion& done) {
                switch (done.result) {
                    case opreg::outcome::ready: return serve(c);
                    case opreg::outcome::closed: return;  // close_conn() is closing it
                    default: return close_conn(c);        // error: EPOLLERR and the like
                }
            });
        // Refused (never for this single-threaded loop): the callback was destroyed unrun.
        if (!op) close_conn(c);
    }

    void close_conn(conn* c) {
        const int fd = c->fd;
        close_fd(fd);
        conns_[fd].reset();
    }

    void close_fd(int fd) {
        (void)reg_.close(fd);  // a pending op ends as closed, here, before the fd goes back
        kernel_.unwatch(fd);
        ::close(fd);
    }

    opreg::slot_array& reg_;
    Kernel& kernel_;
    int listen_fd_;
    int stop_fd_;
    bool stopping_ = false;
    std::uint64_t accepted_ = 0;
    std::vector<std::unique_ptr<conn>> conns_;  // by fd
};

}  // namespace example
