// SPDX-License-Identifier: Apache-2.0
// asio_echo: opreg beside standalone Asio, in one program and on one io_context. See --help.
//
// 1. Asio drives an echo server's I/O (async_read_some, async_write). An opreg registry
//    tracks each pending read, so that a watchdog thread can end reads idle too long: the
//    watchdog cancels the read's op in the registry (outcome::timed_out), and the op's
//    callback posts the socket's close to the io_context. When the bytes arrive, the read
//    handler ends the op itself with dispatch(). The registry picks exactly one winner of
//    that race: a read handler that finds its op already ended knows the watchdog's close
//    is on its way and echoes nothing. Tokens carry generations, so a watchdog holding the
//    token of a read whose socket has closed, and whose fd number a new connection now
//    uses, cancels nothing.
// 2. An opreg::reactor runs embedded in the same io_context, through its native handle and
//    deadline (reactor.hpp, EMBEDDING): an asio::posix::stream_descriptor waits for the
//    handle to be readable, an asio::steady_timer for next_timeout_ms(), and either calls
//    run_once(0) on the io_context's thread. The reactor serves a status port with an
//    opreg::acceptor and counts ticks with its own timer: a status line's tick count grows
//    only if the reactor's timers fire inside Asio's loop.
#include <asio.hpp>

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <opreg/opreg.hpp>

#include "support.hpp"

namespace {

constexpr const char* usage = R"usage(usage: asio_echo [--port N] [--idle-timeout S] [--tick-ms MS]

An echo server on 127.0.0.1 whose I/O standalone Asio drives, with two parts of opreg in
the same io_context:
- an opreg::slot_array tracks each connection's pending read; a watchdog thread cancels
  reads idle longer than the idle timeout through it, and the connection is closed;
- an opreg::reactor, embedded through its native handle and next deadline, serves a
  status port: each connection to it reads one line and is closed,
    ticks=T sessions=S reads: armed=A completed=C timed_out=X closed=D
  where T counts the reactor's own timer, every --tick-ms.

options:
  --port N           echo port on 127.0.0.1 (default 7002; 0 picks a free one)
  --idle-timeout S   close a connection whose read waits this long, in seconds
                     (default 30; a fraction is fine: 0.5)
  --tick-ms MS       the reactor's tick timer period (default 100)
  --help             this text

Prints "status on 127.0.0.1:PORT", then "listening on 127.0.0.1:PORT" once it accepts.
SIGTERM or SIGINT: stop the watchdog, close every connection, let the io_context run
out of work, print the statistics on stderr, exit 0.
)usage";

using asio::ip::tcp;
using steady = std::chrono::steady_clock;

// ---- 1. Asio's echo server, its reads tracked in an opreg registry ------------------------

// One entry per fd: the token of its read op, and when that op was armed. Written by the
// io_context's thread, read by the watchdog's.
class read_table {
public:
    explicit read_table(std::uint32_t max_fds) : entries_{new entry[max_fds]} {}

    // io thread: fd's read is op, armed now.
    void track(int fd, opreg::op_token op) {
        entry& e = entries_[fd];
        // relaxed: published by the release store of the token just below.
        e.since_ns.store(now_ns(), std::memory_order_relaxed);
        // release: pairs with the acquire load in expired(); whoever reads this token reads
        // this op's arming time or a later one (a newer op's), never an older op's, so the
        // watchdog may wait a period longer but never ends an op before its time.
        e.op.store(op.to_u64(), std::memory_order_release);
        // relaxed: a bound for the scan; the watchdog sees it by its next scan at the latest.
        int seen = high_.load(std::memory_order_relaxed);
        while (seen < fd && !high_.compare_exchange_weak(seen, fd, std::memory_order_relaxed)) {}
    }

    // Watchdog thread: calls f(op) for each tracked op armed more than `idle` ago. Ops
    // that have ended since are still listed: their tokens are stale and cancel nothing.
    template <class F>
    void expired(std::chrono::nanoseconds idle, F&& f) const {
        const std::int64_t now = now_ns();
        const int high = high_.load(std::memory_order_relaxed);
        for (int fd = 0; fd <= high; ++fd) {
            const entry& e = entries_[fd];
            const auto op = opreg::op_token::from_u64(e.op.load(std::memory_order_acquire));
            if (op.valid() && now - e.since_ns.load(std::memory_order_relaxed) >= idle.count())
                f(op);
        }
    }

private:
    struct entry {
        std::atomic<std::uint64_t> op{opreg::op_token{}.to_u64()};
        std::atomic<std::int64_t> since_ns{0};
    };
    static std::int64_t now_ns() {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   steady::now().time_since_epoch())
            .count();
    }
    std::unique_ptr<entry[]> entries_;
    std::atomic<int> high_{-1};
};

// Ends reads idle longer than `idle` as timed_out, every quarter of it.
class watchdog {
public:
    watchdog(opreg::slot_array& reads, const read_table& table, std::chrono::nanoseconds idle)
        : reads_{reads},
          table_{table},
          idle_{idle} {}
    ~watchdog() { stop(); }

    void start() {
        thread_ = std::thread([this] { run(); });
    }
    void stop() {
        {
            const std::lock_guard lock{mutex_};
            stopping_ = true;
        }
        wake_.notify_one();
        if (thread_.joinable()) thread_.join();
    }

private:
    void run() {
        const auto period = std::clamp<std::chrono::nanoseconds>(
            idle_ / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
        std::unique_lock lock{mutex_};
        while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
            lock.unlock();
            // cancel() from this thread: for slot_array the op's callback runs here, at once,
            // when this call wins; it posts the close to the io_context (session::read).
            table_.expired(idle_, [this](opreg::op_token op) {
                (void)reads_.cancel(op, opreg::outcome::timed_out);
            });
            lock.lock();
        }
    }

    opreg::slot_array& reads_;
    const read_table& table_;
    const std::chrono::nanoseconds idle_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

class echo_server;

class session : public std::enable_shared_from_this<session> {
public:
    session(echo_server& srv, tcp::socket socket);
    void read();
    void close();

private:
    echo_server& srv_;
    tcp::socket socket_;
    const int fd_;
    const opreg::fd_token ft_;  // names this fd's lifetime in the registry
    bool closed_ = false;
    std::array<char, 16384> buf_;
};

class echo_server {
public:
    echo_server(asio::io_context& io, int port, std::chrono::nanoseconds idle)
        : io_{io},
          acceptor_{io, tcp::endpoint{asio::ip::make_address("127.0.0.1"),
                                      static_cast<unsigned short>(port)}},
          table_{reads_.config().max_fds},
          watchdog_{reads_, table_, idle} {}

    [[nodiscard]] int port() const { return acceptor_.local_endpoint().port(); }
    void start() {
        watchdog_.start();
        accept();
    }

    // io thread: no more connections, no more timeouts, every connection closed.
    void shutdown() {
        asio::error_code ignored;
        acceptor_.close(ignored);
        retry_.cancel();
        watchdog_.stop();  // joined: nothing more is cancelled or posted from its thread
        for (const std::shared_ptr<session>& s : std::set{live_}) s->close();
    }

    [[nodiscard]] std::string status(std::uint64_t ticks) const {
        const opreg::registry_stats s = reads_.stats();
        const auto n = [](std::uint64_t v) { return std::to_string(v); };
        return "ticks=" + n(ticks) + " sessions=" + n(live_.size()) +
               " reads: armed=" + n(s.armed) + " completed=" + n(s.completed) +
               " timed_out=" + n(s.timed_out) + " closed=" + n(s.closed) + "\n";
    }

    asio::io_context& io() noexcept { return io_; }
    opreg::slot_array& reads() noexcept { return reads_; }
    read_table& table() noexcept { return table_; }
    void forget(const std::shared_ptr<session>& s) { live_.erase(s); }

private:
    void accept() {
        acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket socket) {
            // shutdown() closed the acceptor: this one may have been accepted just before,
            // its handler queued behind the signal's. It is dropped (closed) unserved.
            if (!acceptor_.is_open()) return;
            if (ec) {  // out of fds, or a connection that failed: not a reason to spin
                std::fprintf(stderr, "asio_echo: accept: %s\n", ec.message().c_str());
                retry_.expires_after(std::chrono::milliseconds(100));
                retry_.async_wait([this](const asio::error_code& wec) {
                    if (!wec) accept();
                });
                return;
            }
            asio::error_code ignored;
            socket.set_option(tcp::no_delay{true}, ignored);
            auto s = std::make_shared<session>(*this, std::move(socket));
            live_.insert(s);
            s->read();
            accept();
        });
    }

    asio::io_context& io_;
    tcp::acceptor acceptor_;
    asio::steady_timer retry_{io_};
    opreg::slot_array reads_;
    read_table table_;
    watchdog watchdog_;
    std::set<std::shared_ptr<session>> live_;  // io thread only
};

session::session(echo_server& srv, tcp::socket socket)
    : srv_{srv},
      socket_{std::move(socket)},
      fd_{socket_.native_handle()},
      ft_{srv_.reads().token_of(fd_).value_or(opreg::fd_token{})} {}

void session::read() {
    // The op stands for "a read is pending on fd_"; no kernel readiness ever reaches it: the
    // read handler ends it (dispatch) or the watchdog does (cancel). Its callback holds the
    // session (24 bytes of captures, inline) and matters only when the watchdog wins: it
    // runs on the watchdog's thread, and hands the session over to the io_context, moved,
    // so that the session is never released on that thread.
    auto op = srv_.reads().arm(
        fd_, opreg::direction::read,
        [self = shared_from_this(), io = &srv_.io()](const opreg::completion& c) mutable {
            if (c.result != opreg::outcome::timed_out) return;
            asio::post(*io, [s = std::move(self)] { s->close(); });
        });
    if (!op) {  // fd out of the registry's range: refused, the callback was never run
        std::fprintf(stderr, "asio_echo: arm fd %d: %s\n", fd_,
                     opreg::to_string(op.error()).data());
        return close();
    }
    srv_.table().track(fd_, op.value());
    socket_.async_read_some(
        asio::buffer(buf_), [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
            if (self->closed_) return;  // close() cancelled it
            // Ends the op as ready unless the watchdog ended it first: exactly one of us wins.
            if (self->srv_.reads().dispatch(self->ft_, opreg::readiness::readable) == 0) return;
            if (ec) return self->close();  // end of file, or an error
            asio::async_write(self->socket_, asio::buffer(self->buf_.data(), n),
                              [self](const asio::error_code& wec, std::size_t) {
                                  if (self->closed_) return;
                                  if (wec) return self->close();
                                  self->read();
                              });
        });
}

void session::close() {
    if (closed_) return;
    closed_ = true;
    // Before the fd number goes back to the kernel: a pending op ends as closed (its callback
    // runs here and lets go of the session), and the fd's generation moves on.
    (void)srv_.reads().close(fd_);
    asio::error_code ignored;
    socket_.close(ignored);  // the read or write in flight ends with operation_aborted
    srv_.forget(shared_from_this());
}

// ---- 2. An opreg reactor embedded in the io_context ---------------------------------------

using registry = opreg::slot_array;
using event_loop = opreg::reactor<registry>;

// Runs loop.run_once(0) on the io_context's thread whenever the reactor's handle is readable
// or its next timer is due.
class embedded_reactor {
public:
    embedded_reactor(asio::io_context& io, event_loop& loop)
        : io_{io},
          loop_{loop},
          handle_{io},
          timer_{io} {}

    [[nodiscard]] bool start() {
        // A duplicate, which the descriptor owns and closes; the reactor keeps its own. A
        // backend without a handle (-1: kqueue through libkqueue) is looked at on a timer.
        if (loop_.native_handle() >= 0) {
            const int fd = ::dup(loop_.native_handle());
            if (fd < 0) return false;
            handle_.assign(fd);
        }
        schedule();
        return true;
    }
    void stop() {
        stopped_ = true;
        asio::error_code ignored;
        handle_.close(ignored);
        timer_.cancel();
    }

private:
    void turn() {
        if (stopped_) return;
        loop_.run_once(0);
        schedule();
    }

    void schedule() {
        if (stopped_) return;
        int ms = loop_.next_timeout_ms();
        // Asio watches the handle edge-triggered and its async_wait never checks first: an
        // edge that came while no wait was queued (events left from a full batch, or that
        // arrived during the turn) would not come again. So look before waiting.
        pollfd p{loop_.native_handle(), POLLIN, 0};
        if (ms == 0 || ::poll(&p, 1, 0) > 0) {
            asio::post(io_, [this] { turn(); });
            return;
        }
        if (!handle_.is_open()) {  // no handle: every no_handle_tick at the longest
            if (ms < 0 || ms > no_handle_tick_ms) ms = no_handle_tick_ms;
        } else if (!waiting_) {
            waiting_ = true;
            handle_.async_wait(asio::posix::stream_descriptor::wait_read,
                               [this](const asio::error_code& ec) {
                                   waiting_ = false;
                                   if (!ec) turn();
                               });
        }
        if (ms < 0) {  // no timer: the handle alone
            timer_.cancel();
            return;
        }
        timer_.expires_after(std::chrono::milliseconds(ms));  // cancels the wait set last turn
        timer_.async_wait([this](const asio::error_code& ec) {
            if (!ec) turn();
        });
    }

    static constexpr int no_handle_tick_ms = 10;

    asio::io_context& io_;
    event_loop& loop_;
    asio::posix::stream_descriptor handle_;
    asio::steady_timer timer_;
    bool waiting_ = false;
    bool stopped_ = false;
};

// The status port, served by the embedded reactor: one line per connection, then close.
class status_service {
public:
    status_service(event_loop& loop, int lfd, const echo_server& srv,
                   std::chrono::milliseconds tick)
        : loop_{loop},
          lfd_{lfd},
          srv_{srv},
          tick_{tick},
          acceptor_{loop, lfd, [this](int fd) { serve(fd); }} {}

    [[nodiscard]] opreg::result<void> start() {
        schedule_tick();
        return acceptor_.start();
    }
    // Reactor (io) thread.
    void shutdown() {
        acceptor_.stop();
        (void)loop_.close(lfd_);
        for (const int fd : std::set{pending_}) (void)loop_.close(fd);
        pending_.clear();
        (void)loop_.cancel_timer(tick_timer_);
    }

private:
    void schedule_tick() {
        tick_timer_ = loop_.after(tick_, [this] {
            ++ticks_;
            schedule_tick();
        });
    }

    void serve(int fd) {
        if (!loop_.watch(fd)) return (void)::close(fd);
        pending_.insert(fd);
        // A fresh socket is writable at once: the op ends in this turn or the next.
        auto op = loop_.arm_with_deadline(
            fd, opreg::direction::write,
            [this, fd](const opreg::completion& c) {
                if (c.result == opreg::outcome::closed) return;  // shutdown() is closing it
                if (c.result == opreg::outcome::ready) {
                    const std::string line = srv_.status(ticks_);
                    (void)!::write(fd, line.data(), line.size());
                }
                pending_.erase(fd);
                (void)loop_.close(fd);
            },
            std::chrono::seconds(2));
        if (!op) {
            pending_.erase(fd);
            (void)loop_.close(fd);
        }
    }

    event_loop& loop_;
    const int lfd_;
    const echo_server& srv_;
    const std::chrono::milliseconds tick_;
    opreg::acceptor<registry> acceptor_;
    event_loop::timer_id tick_timer_{};
    std::uint64_t ticks_ = 0;
    std::set<int> pending_;  // connections whose line is not written yet
};

}  // namespace

int main(int argc, char** argv) {
    long port = 7002;
    long tick_ms = 100;
    double idle_s = 30;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help") return std::fputs(usage, stdout), 0;
        if (a == "--port" &&
            example::parse_long(example::flag_value(argc, argv, i), 0, 65535, port))
            continue;
        if (a == "--idle-timeout" &&
            example::parse_seconds(example::flag_value(argc, argv, i), 0.001, 86400, idle_s))
            continue;
        if (a == "--tick-ms" &&
            example::parse_long(example::flag_value(argc, argv, i), 1, 3600000, tick_ms))
            continue;
        example::bad_flag(argv, argv[i]);
    }
    example::ignore_sigpipe();

    try {
        asio::io_context io{1};  // one thread runs it; the watchdog only posts to it
        echo_server echo{io, static_cast<int>(port),
                         std::chrono::nanoseconds(static_cast<long long>(idle_s * 1e9))};

        registry status_reg;
        event_loop loop{status_reg};  // this thread, which runs the io_context, drives it
        int status_port = 0;
        const int status_fd = example::listen_on(status_port);
        if (status_fd < 0) {
            std::fprintf(stderr, "asio_echo: status listener: %s\n", std::strerror(errno));
            return 1;
        }
        status_service status{loop, status_fd, echo, std::chrono::milliseconds(tick_ms)};
        embedded_reactor glue{io, loop};

        asio::signal_set signals{io, SIGINT, SIGTERM};
        signals.async_wait([&](const asio::error_code& ec, int sig) {
            if (ec) return;
            std::fprintf(stderr, "asio_echo: %s: closing\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            echo.shutdown();
            status.shutdown();
            glue.stop();  // then io.run() returns once the handlers in flight have run
        });

        if (const opreg::result<void> r = status.start(); !r) {
            std::fprintf(stderr, "asio_echo: status: %s\n", r.error_code().message().c_str());
            return 1;
        }
        if (!glue.start()) {
            std::fprintf(stderr, "asio_echo: reactor handle: %s\n", std::strerror(errno));
            return 1;
        }
        echo.start();
        std::printf("status on 127.0.0.1:%d (served by the opreg reactor inside Asio's loop)\n",
                    status_port);
        example::announce(echo.port());
        io.run();

        const opreg::registry_stats s = echo.reads().stats();
        const auto n = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
        std::fprintf(stderr,
                     "asio_echo: reads armed=%llu completed=%llu timed_out=%llu closed=%llu "
                     "in_flight=%llu; reactor timers fired=%llu\n",
                     n(s.armed), n(s.completed), n(s.timed_out), n(s.closed), n(s.in_flight),
                     n(loop.stats().timers_fired));
    } catch (const std::exception& e) {  // Asio's and the reactor's constructors throw
        std::fprintf(stderr, "asio_echo: %s\n", e.what());
        return 1;
    }
    return 0;
}
