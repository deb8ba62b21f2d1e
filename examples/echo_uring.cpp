// SPDX-License-Identifier: Apache-2.0
// echo_uring: an echo server in completion mode: the kernel (io_uring) does each recv and
// send, and each one is an op of an opreg registry that ends exactly once: with the
// kernel's result, at its deadline, or closed. See --help.
//
// What it shows, each in a few lines below:
// - recv(fd, cb) gets the next bytes (straight from the kernel's provided buffer), send(fd,
//   bytes, cb) sends them back; a short send sends the rest, then the connection recvs again;
// - expire_after(op, d) is every timeout: an idle client (no bytes for --idle-timeout) and a
//   client that does not read its echo (no progress for --send-timeout) are closed;
// - end of stream (res 0) and errors (res < 0) close the connection;
// - close(fd) ends the fd's pending op as closed at once; a send's callback waits for the
//   kernel to give the bytes up, so the connection, which owns them, is freed only then;
// - SIGTERM or SIGINT: stop accepting, close idle connections, let the echoes in progress
//   finish (within --send-timeout), then exit 0 with the registry's counts on stderr.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include <opreg/opreg.hpp>

#include "support.hpp"

namespace {

constexpr const char* usage = R"usage(usage: echo_uring [--port N] [--idle-timeout S] [--send-timeout S]
                  [--buffer-bytes N]

An echo server on 127.0.0.1 in io_uring completion mode: reactor::recv and reactor::send,
each an op of an opreg::slot_array that ends once, with the kernel's result, a timeout or
a close.

options:
  --port N            port on 127.0.0.1 (default 7000; 0 picks a free one)
  --idle-timeout S    close a connection that sends nothing for S seconds (default 30)
  --send-timeout S    close a connection whose echo makes no progress for S seconds: a
                      client that does not read (default 10)
  --buffer-bytes N    size of each provided buffer, the most one recv brings (default 16384)
  --help              this text

Prints "listening on 127.0.0.1:PORT" once it accepts. SIGTERM or SIGINT: stop accepting,
close idle connections, finish the echoes in progress (at most --send-timeout), print the
registry's statistics on stderr, exit 0. Exits 3 where io_uring's completion mode is not
available (Linux before 6.0, io_uring disabled), saying why.
)usage";

using loop_type = opreg::reactor<opreg::slot_array>;
using std::chrono::milliseconds;

class echo_server {
public:
    echo_server(loop_type& loop, int listen_fd, int stop_fd, milliseconds idle, milliseconds send)
        : loop_{loop},
          listen_fd_{listen_fd},
          stop_fd_{stop_fd},
          idle_{idle},
          send_timeout_{send},
          acceptor_{loop, listen_fd, [this](int fd) { on_accept(fd); },
                    [](int err) {
                        std::fprintf(stderr, "echo_uring: accept: %s (pausing accepts)\n",
                                     std::strerror(err));
                    }} {}

    // The listener (readiness, through the acceptor) and the stop pipe (readiness too).
    bool start() {
        // One recv brings at most one buffer and each is echoed at once: without TCP_NODELAY
        // a piece would wait behind the peer's delayed ACK.
        acceptor_.set_tcp_nodelay(true);
        if (const opreg::result<void> r = acceptor_.start(); !r) {
            std::fprintf(stderr, "echo_uring: listen: %s\n", r.error_code().message().c_str());
            return false;
        }
        if (!loop_.watch(stop_fd_) ||
            !loop_.arm(stop_fd_, opreg::direction::read, [this](const opreg::completion& c) {
                if (c.result == opreg::outcome::ready) begin_stop();
            })) {
            std::fprintf(stderr, "echo_uring: cannot watch the stop signal\n");
            return false;
        }
        return true;
    }

    void report() const {
        const opreg::registry_stats s = loop_.registry().stats();
        const auto n = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
        std::fprintf(stderr,
                     "echo_uring: %llu connections, %llu bytes echoed; ops armed=%llu "
                     "ready=%llu timed_out=%llu closed=%llu in_flight=%llu\n",
                     n(accepted_), n(echoed_), n(s.armed), n(s.completed), n(s.timed_out),
                     n(s.closed), n(s.in_flight));
    }

private:
    struct conn {
        int fd = -1;
        std::string out;       // one recv's bytes, being sent back
        std::size_t sent = 0;  // of which the kernel took
        bool sending = false;  // a send is pending: its callback frees a closed connection
        bool closed = false;
    };

    void on_accept(int fd) {
        if (stopping_) {
            ::close(fd);
            return;
        }
        auto c = std::make_unique<conn>();
        c->fd = fd;
        conn* raw = c.get();
        conns_.emplace(raw, std::move(c));
        ++accepted_;
        recv(raw);
    }

    void recv(conn* c) {
        const opreg::result<opreg::op_token> t =
            loop_.recv(c->fd, [this, c](const opreg::io_completion& x) { on_recv(c, x); });
        if (!t) return close(c);  // refused (fd out of range, ...): nothing is pending
        // An op that already ended (bytes were waiting) keeps no timer that matters.
        (void)loop_.expire_after(t.value(), idle_);
    }

    void on_recv(conn* c, const opreg::io_completion& x) {
        switch (x.op.result) {
            case opreg::outcome::closed: return;  // close() is closing it
            case opreg::outcome::ready: break;
            default: return close(c);  // timed_out: idle for too long; error
        }
        if (x.res == -EAGAIN) return recv(c);  // nothing after all: wait again
        if (x.res <= 0) return close(c);       // 0: end of stream; -errno: failed
        c->out.assign(x.data);                 // the bytes are the kernel's buffer: copy
        c->sent = 0;
        send(c);
    }

    void send(conn* c) {
        const std::string_view rest = std::string_view(c->out).substr(c->sent);
        const opreg::result<opreg::op_token> t =
            loop_.send(c->fd, rest, [this, c](const opreg::io_completion& x) { on_sent(c, x); });
        if (!t) return close(c);
        c->sending = true;
        (void)loop_.expire_after(t.value(), send_timeout_);
    }

    void on_sent(conn* c, const opreg::io_completion& x) {
        c->sending = false;  // the kernel has let go of c->out
        if (c->closed) return free(c);
        if (x.op.result == opreg::outcome::timed_out) return reset(c);  // it does not read
        if (x.op.result != opreg::outcome::ready || x.res <= 0) return close(c);
        c->sent += static_cast<std::size_t>(x.res);
        echoed_ += static_cast<std::uint64_t>(x.res);
        if (c->sent < c->out.size()) return send(c);  // a short send: the rest
        if (stopping_) return close(c);
        recv(c);
    }

    // A client that does not read: the kernel drops what it still holds for it (a reset)
    // instead of keeping it, orphaned, after the close.
    void reset(conn* c) {
        const linger abort{.l_onoff = 1, .l_linger = 0};
        ::setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
        close(c);
    }

    // Ends the pending op as closed and closes the fd; the connection goes now, or when its
    // send's callback says the kernel has let go of the bytes.
    void close(conn* c) {
        if (c->closed) return;
        c->closed = true;
        (void)loop_.close(c->fd);
        if (!c->sending) free(c);
    }

    void free(conn* c) {
        conns_.erase(c);
        if (stopping_ && conns_.empty()) loop_.stop();
    }

    void begin_stop() {
        stopping_ = true;
        acceptor_.stop();
        (void)loop_.close(listen_fd_);
        (void)loop_.close(stop_fd_);
        // Idle connections go now; an echo in progress finishes (or times out) first.
        for (auto it = conns_.begin(); it != conns_.end();) {
            conn* c = (it++)->first;
            if (!c->sending) close(c);
        }
        if (conns_.empty()) loop_.stop();
    }

    loop_type& loop_;
    int listen_fd_;
    int stop_fd_;
    milliseconds idle_;
    milliseconds send_timeout_;
    opreg::acceptor<opreg::slot_array> acceptor_;
    std::unordered_map<conn*, std::unique_ptr<conn>> conns_;
    bool stopping_ = false;
    std::uint64_t accepted_ = 0;
    std::uint64_t echoed_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    long port = 7000;
    double idle_s = 30, send_s = 10;
    long buffer_bytes = 16384;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help") return std::fputs(usage, stdout), 0;
        if (a == "--port" &&
            example::parse_long(example::flag_value(argc, argv, i), 0, 65535, port))
            continue;
        if (a == "--idle-timeout" &&
            example::parse_seconds(example::flag_value(argc, argv, i), 0.01, 86400, idle_s))
            continue;
        if (a == "--send-timeout" &&
            example::parse_seconds(example::flag_value(argc, argv, i), 0.01, 86400, send_s))
            continue;
        if (a == "--buffer-bytes" &&
            example::parse_long(example::flag_value(argc, argv, i), 64, 1 << 20, buffer_bytes))
            continue;
        example::bad_flag(argv, argv[i]);
    }

    // First, before anything starts a thread: the stop signals go to stop_fd's own thread.
    const int stop_fd = example::stop_signal_fd();
    if (stop_fd < 0) {
        std::fprintf(stderr, "echo_uring: cannot take SIGTERM and SIGINT: %s\n", std::strerror(errno));
        return 1;
    }
    example::ignore_sigpipe();

    opreg::slot_array reg;
    std::unique_ptr<loop_type> loop;
    try {
        loop = std::make_unique<loop_type>(
            reg, opreg::reactor_options{.which = opreg::backend::io_uring,
                                        .fall_back = false,
                                        .io_uring_buffer_bytes = static_cast<unsigned>(buffer_bytes)});
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "echo_uring: io_uring completion mode is not available here: %s\n",
                     e.what());
        return 3;
    }
    if (!loop->supports_io()) {
        std::fprintf(stderr, "echo_uring: io_uring completion mode is not available here: "
                             "this kernel has no multishot recv (Linux 6.0 or later)\n");
        return 3;
    }
    int bound = static_cast<int>(port);
    const int lfd = example::listen_on(bound);
    if (lfd < 0) {
        std::fprintf(stderr, "echo_uring: cannot listen: %s\n", std::strerror(errno));
        return 1;
    }
    const auto ms = [](double s) { return milliseconds(static_cast<long long>(s * 1000)); };
    echo_server server{*loop, lfd, stop_fd, ms(idle_s), ms(send_s)};
    if (!server.start()) return 1;
    example::announce(bound);
    loop->run();
    server.report();
    return 0;
}
