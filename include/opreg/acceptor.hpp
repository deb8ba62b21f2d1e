// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/acceptor.hpp — accept connections on a reactor without letting fd exhaustion or a
/// misbehaving peer stall the loop.
///
/// acceptor<R> watches a listening socket and, each time it is readable, accepts until
/// EAGAIN, handing each new non-blocking fd to on_accept (on the reactor thread).
/// - EMFILE / ENFILE (no fd for the connection): counted and reported through on_error,
///   never spun on. The pending connection is shed (a spare fd kept open for the purpose is
///   closed, the connection accepted and closed at once, the spare reopened) so the client
///   sees a clean close instead of a hang, and accepting pauses for `backoff` (a timer), so
///   a queue of pending connections cannot turn the loop into a busy retry. After the
///   pause it accepts at once (connections that queued meanwhile may have left no new
///   edge), and pauses again while fds stay short.
/// - ECONNABORTED, EPROTO, EPERM and the like: that connection is skipped; accepting goes on.
///
/// stop() (and the destructor) end accepting: the pending op is cancelled and a pause timer
/// dropped, so nothing reaches a destroyed acceptor. The listening fd stays open and watched:
/// it is the caller's (close it with reactor::close). start() and stop() belong to the
/// reactor thread, and so does destroying a started acceptor.
#pragma once

#include <opreg/config.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <utility>

#include <opreg/reactor.hpp>

namespace opreg {

/// What an acceptor has seen since it was built.
struct acceptor_stats {
    std::uint64_t accepted = 0;  ///< connections handed to on_accept
    std::uint64_t fd_exhausted = 0;  ///< EMFILE / ENFILE seen (each one paused accepting)
    std::uint64_t shed = 0;          ///< connections closed at once for lack of an fd
    std::uint64_t errors = 0;        ///< other accept failures (connection skipped)
};

namespace detail {
OPREG_API result<int> accept_nonblocking(int listen_fd) noexcept;  // the new connection's fd
OPREG_API int open_spare_fd() noexcept;  // an fd held in reserve (/dev/null), or -1 (none: not an error)
}  // namespace detail

/// Inline storage of the acceptor's handlers: by default four pointers of captures (a server
/// object and a little more); the acceptor keeps them for its lifetime, so this is not a
/// per-op cost. OPREG_ACCEPTOR_FN_CAPACITY (config.hpp) changes it.
inline constexpr std::size_t acceptor_fn_capacity = OPREG_ACCEPTOR_FN_CAPACITY;

/// Accepts connections on a listening socket from a reactor's loop, without letting EMFILE/ENFILE
/// spin it: it reports them, sheds the pending connection through a spare fd and pauses for a
/// backoff.
template <registry R>
class acceptor {
public:
    /// Called on the reactor thread with each accepted connection's fd (non-blocking,
    /// close-on-exec); the callee owns it.
    using accept_fn = inline_function<void(int fd), acceptor_fn_capacity>;
    /// Called on the reactor thread with the errno of an accept failure (EMFILE, ENFILE and
    /// others).
    using error_fn = inline_function<void(int err), acceptor_fn_capacity>;

    /// Accepts on `listen_fd` (listening, non-blocking) from `loop`, once start() is called; pauses
    /// `backoff` after an fd limit.
    acceptor(reactor<R>& loop, int listen_fd, accept_fn on_accept, error_fn on_error = nullptr,
             std::chrono::milliseconds backoff = std::chrono::milliseconds(100))
        : loop_{loop},
          fd_{listen_fd},
          on_accept_{std::move(on_accept)},
          on_error_{std::move(on_error)},
          backoff_{backoff},
          spare_{detail::open_spare_fd()} {}

    acceptor(const acceptor&) = delete;
    acceptor& operator=(const acceptor&) = delete;
    ~acceptor() {
        stop();
        detail::close_fd(spare_);
    }

    /// Reactor thread: watch the listening socket (the first time) and start accepting.
    [[nodiscard]] result<void> start() {
        if (!watched_) {  // once: the fd stays watched across stop() and start()
            const result<fd_token> t = loop_.watch(fd_);
            if (!t) return t.why();
            watched_ = true;
        }
        stopped_ = false;
        return arm();
    }

    /// Reactor thread: stop accepting. The armed op ends as cancelled (for a hands_off()
    /// registry, when the owner applies it; its callback then touches nothing of ours), and a
    /// pause in progress is dropped. start() may follow on the same reactor only once the op
    /// has ended (a hands_off() registry: after the loop's next turn).
    void stop() noexcept {
        stopped_ = true;
        if (paused_) {
            (void)loop_.cancel_timer(pause_);
            paused_ = false;
        }
        // The op armed last; if it has ended already the cancel finds it stale.
        if (op_.valid()) (void)loop_.cancel(std::exchange(op_, op_token{}));
    }

    /// The counts so far (reactor thread).
    [[nodiscard]] const acceptor_stats& stats() const noexcept { return stats_; }

    /// Sets TCP_NODELAY on every connection accepted from now on (off by default: the
    /// socket's own setting). A server that writes each answer whole, or sends what one recv
    /// brought (completion mode: at most one provided buffer), wants it: with Nagle's
    /// algorithm a small write waits for the peer's delayed ACK. A socket that is not TCP
    /// (a UNIX listener) refuses it; the connection is handed over all the same.
    void set_tcp_nodelay(bool on) noexcept { nodelay_ = on; }

private:
    result<void> arm() {
        const std::uint64_t mine = ++arms_;
        acceptor* self = this;
        auto t = loop_.arm(fd_, direction::read, [self](const completion& c) {
            // A cancelled op is stop()'s: the acceptor may be gone by now; touch nothing.
            if (c.result == outcome::cancelled) return;
            self->on_ready(c);
        });
        if (!t) return t.why();
        // The op may have ended inside arm() (readiness latched) and its callback armed
        // again meanwhile: then op_ already names that newer op.
        if (arms_ == mine) op_ = t.value();
        return {};
    }

    void on_ready(const completion& c) {
        if (c.result == outcome::closed || stopped_) return;  // the fd was closed, or stopped
        accept_all();
    }

    // Accepts until EAGAIN, then arms: the edge-triggered discipline. After a pause it is
    // called directly, since connections that queued meanwhile may have left no new edge.
    void accept_all() {
        for (;;) {
            const result<int> fd = detail::accept_nonblocking(fd_);
            if (fd) {
                ++stats_.accepted;
                if (nodelay_) {
                    const int one = 1;
                    (void)::setsockopt(fd.value(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                }
                on_accept_(fd.value());
                continue;
            }
            const int err = fd.os_error();
            if (err == EAGAIN || err == EWOULDBLOCK) break;
            if (err == EINTR) continue;
            if (err == EMFILE || err == ENFILE) {
                ++stats_.fd_exhausted;
                shed_one();
                if (on_error_) on_error_(err);
                acceptor* self = this;
                pause_ = loop_.after(backoff_, [self] {
                    self->paused_ = false;
                    self->accept_all();
                });
                paused_ = true;
                return;
            }
            ++stats_.errors;  // this connection failed (aborted, refused by policy): next
            if (on_error_) on_error_(err);
        }
        (void)arm();
    }

    // Frees the reserve fd to accept and close one pending connection, then retakes it.
    void shed_one() {
        if (spare_ < 0) return;
        detail::close_fd(spare_);
        if (const result<int> fd = detail::accept_nonblocking(fd_)) {
            ++stats_.shed;
            detail::close_fd(fd.value());
        }
        spare_ = detail::open_spare_fd();
    }

    reactor<R>& loop_;
    int fd_;
    accept_fn on_accept_;
    error_fn on_error_;
    std::chrono::milliseconds backoff_;
    int spare_;
    acceptor_stats stats_;
    op_token op_{};           // the op armed last (it may have ended)
    std::uint64_t arms_ = 0;  // arm() calls, to tell a nested one
    typename reactor<R>::timer_id pause_{};
    bool paused_ = false;  // accepting is paused for lack of fds (pause_ pending)
    bool stopped_ = true;
    bool watched_ = false;  // start() watched fd_ (it stays watched: the caller closes it)
    bool nodelay_ = false;  // set TCP_NODELAY on accepted connections
};

}  // namespace opreg
