// SPDX-License-Identifier: Apache-2.0
// The thread-per-connection model: blocking accept, one thread per connection, blocking
// reads and writes. Same parser, router and responses as the async model; this is the
// comparison row of the original analysis.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "app.hpp"
#include "server.hpp"
#include "session.hpp"

namespace opreg::http {

namespace {

class thread_stats : public stats_source {
public:
    stats_view snapshot() const override {
        stats_view v;
        v.registry = "none";
        v.model = "thread-per-conn";
        v.backend = "blocking";
        v.connections = live.load(std::memory_order_relaxed);
        v.requests = requests.load(std::memory_order_relaxed);
        return v;
    }
    std::atomic<std::uint64_t> live{0}, requests{0};
};

struct shared_state {
    explicit shared_state(const server_options& o)
        : opt{&o}, budget{o.body_memory}, session{application, o.lim, &stats, &budget} {}
    const server_options* opt;
    app application;
    thread_stats stats;
    body_budget budget;
    session_context session;
    std::atomic<bool> stopping{false};
    // A graceful stop closes stop_wr: stop_rd then reads as end of file for every thread
    // that polls it, at once and for good, so that no thread wakes on a tick to look.
    int stop_rd = -1, stop_wr = -1;
    std::mutex m;
    std::condition_variable all_gone;
};

// Each read is offered this much room: a pipelined burst of small requests fits, and a
// large request arrives in reads of a useful size. The buffer exists only while bytes are
// held (an incomplete head, or requests not answered yet): an idle connection holds none.
constexpr std::size_t read_room = 16 * 1024;
// An idle connection gives its read buffer back after this much silence (one wake-up; after
// it, the connection sleeps until its socket, its deadline or a stop).
constexpr auto release_after = std::chrono::milliseconds(100);
// A connection thread's stack: its frames need a few KiB; the default (8 MiB of address
// space each) would be 80 GiB at --max-conns 10000. What it touches is what it costs.
constexpr std::size_t connection_stack_bytes = 256 * 1024;

using steady = std::chrono::steady_clock;

// Waits until fd is readable, `deadline` passes, or (when `stoppable`) a graceful stop
// begins, sleeping in one poll for all three. true: readable.
bool wait_readable(const shared_state& s, int fd, steady::time_point deadline, bool stoppable) {
    for (;;) {
        if (stoppable && s.stopping.load(std::memory_order_relaxed)) return false;
        // Rounded up: a poll that returns a little before the deadline would come back for
        // a 0 ms one, spinning until it passes.
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now());
        if (left.count() <= 0) return false;
        pollfd p[2] = {{fd, POLLIN, 0}, {s.stop_rd, POLLIN, 0}};
        const int ready = ::poll(p, stoppable ? 2 : 1,
                                 int(std::min<std::int64_t>(left.count(), INT32_MAX)));
        if (ready > 0 && p[0].revents != 0) return true;
        if (ready < 0 && errno != EINTR) return false;
    }
}

// Writes all of `data` to the (non-blocking) socket; false when the peer is gone or took
// none of it for `send_timeout`: the wait restarts at each byte taken, as nginx's
// send_timeout does, so a slow reader that keeps reading is never cut.
bool write_all(int fd, std::string_view data, std::chrono::seconds send_timeout) {
    std::size_t off = 0;
    steady::time_point last_progress = steady::now();
    while (off < data.size()) {
        const ssize_t w = ::write(fd, data.data() + off, data.size() - off);
        if (w > 0) {
            off += std::size_t(w);
            last_progress = steady::now();
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            last_progress + send_timeout - steady::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, int(left.count())) < 0 && errno != EINTR) return false;
    }
    return true;
}

// The same limits as the async model: a request (head and body) must be complete within the
// header timeout of its first byte, an idle keep-alive connection closes after the idle
// timeout, output the peer does not take closes it after the send timeout (reset, so the
// kernel drops what it holds for it), bodies stream into the session within the server's
// body budget, and output is bounded by the session's output cap plus one response.
void serve_connection(shared_state& s, int fd) {
    const server_options& opt = *s.opt;
    const std::chrono::seconds send_timeout{opt.send_timeout_s};
    // Non-blocking: reads follow a poll that said readable, writes wait in write_all.
    (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    // Bytes held between reads. Released once the connection has been silent for
    // release_after with nothing held, so that an idle connection holds no buffer while a
    // busy one does not allocate per request.
    std::unique_ptr<char[]> in;
    std::size_t cap = 0, len = 0;
    response_buffer out;
    session_state st;
    steady::time_point last_active = steady::now(), request_started = last_active;
    bool reset = false;  // close with a reset (the peer does not read)
    for (;;) {
        const bool mid = st.mid_request;
        const steady::time_point deadline =
            mid ? request_started + std::chrono::seconds(opt.header_timeout_s)
                : last_active + std::chrono::seconds(opt.idle_timeout_s);
        // A held buffer with nothing in it goes back after release_after of silence; then
        // only the socket, the deadline or a stop wakes the thread.
        const steady::time_point wake =
            cap != 0 && len == 0 ? std::min(deadline, last_active + release_after) : deadline;
        if (!wait_readable(s, fd, wake, !mid)) {
            if (steady::now() >= deadline || (!mid && s.stopping.load(std::memory_order_relaxed)))
                break;
            if (len == 0) {
                in.reset();
                cap = 0;
                out = response_buffer{};  // and the answers' buffer (an echo's can be large)
            }
            continue;
        }
        if (cap < len + read_room) {  // grows, keeping what is held; never zero-filled
            const std::size_t grown = std::max(len + read_room, 2 * cap);
            auto bigger = std::make_unique_for_overwrite<char[]>(grown);
            if (len != 0) std::memcpy(bigger.get(), in.get(), len);
            in = std::move(bigger);
            cap = grown;
        }
        const ssize_t n = ::read(fd, in.get() + len, read_room);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (n == 0 && mid) {  // the client ended its side inside a request
            out.clear();
            app::respond_error(400, "request cut short", out);
            (void)write_all(fd, out.view(), send_timeout);
        }
        if (n <= 0) break;
        last_active = steady::now();
        if (!mid) request_started = last_active;
        len += std::size_t(n);
        bool more = true;
        while (more) {  // again without reading while answers were held back (output_full)
            out.clear();
            const serve_result r = serve_requests(s.session, std::string_view(in.get(), len), out, st);
            s.stats.requests.fetch_add(r.requests, std::memory_order_relaxed);
            if (r.requests != 0) request_started = last_active;  // the next request began now
            if (r.consumed != 0) std::memmove(in.get(), in.get() + r.consumed, len - r.consumed);
            len -= r.consumed;
            if (!write_all(fd, out.view(), send_timeout)) {
                reset = true;
                break;
            }
            more = r.output_full;
        }
        if (reset || st.close_after) break;
        if (s.stopping.load(std::memory_order_relaxed) && !st.mid_request) break;
    }
    if (reset) {
        const linger abort{.l_onoff = 1, .l_linger = 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    }
    ::close(fd);
}

// Runs serve_connection on a detached thread with a small stack. false: no thread.
bool start_connection_thread(shared_state& s, int fd) {
    struct start {
        shared_state* s;
        int fd;
    };
    pthread_attr_t attr;
    if (::pthread_attr_init(&attr) != 0) return false;
    ::pthread_attr_setstacksize(&attr, connection_stack_bytes);
    ::pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    auto* arg = new start{&s, fd};
    pthread_t t;
    const int rc = ::pthread_create(&t, &attr, [](void* p) -> void* {
        const start a = *static_cast<start*>(p);
        delete static_cast<start*>(p);
        serve_connection(*a.s, a.fd);
        if (a.s->stats.live.fetch_sub(1) == 1) {
            std::lock_guard<std::mutex> lock(a.s->m);
            a.s->all_gone.notify_all();
        }
        return nullptr;
    }, arg);
    ::pthread_attr_destroy(&attr);
    if (rc != 0) delete arg;
    return rc == 0;
}

} // namespace

int run_thread_per_conn(const server_options& opt) {
    int port = opt.port;
    const int lfd = listen_on(port, false, false);
    if (lfd < 0) {
        std::fprintf(stderr, "opreg-httpd: listen on 127.0.0.1:%d: %s\n", port, std::strerror(errno));
        return 1;
    }
    static shared_state s{opt};
    int stop_pipe[2];
    if (::pipe(stop_pipe) != 0) {
        std::fprintf(stderr, "opreg-httpd: pipe: %s\n", std::strerror(errno));
        ::close(lfd);
        return 1;
    }
    for (const int fd : stop_pipe) (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
    s.stop_rd = stop_pipe[0];
    s.stop_wr = stop_pipe[1];

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    std::thread signals([lfd, &sigs] {
        int sig = 0;
        sigwait(&sigs, &sig);
        std::fprintf(stderr, "opreg-httpd: %s: finishing responses in flight\n",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT");
        s.stopping.store(true);
        ::close(s.stop_wr);          // wakes every idle connection's poll
        ::shutdown(lfd, SHUT_RDWR);  // wakes the blocking accept
    });

    std::printf("listening on 127.0.0.1:%d\n", port);
    std::fflush(stdout);
    while (!s.stopping.load()) {
        const int fd = ::accept(lfd, nullptr, nullptr);  // POSIX: no accept4 where kqueue is
        if (fd >= 0) (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE) {
                std::fprintf(stderr, "opreg-httpd: accept: %s (pausing accepts)\n", std::strerror(errno));
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                continue;
            }
            if (s.stopping.load()) break;
            continue;
        }
        if (s.stats.live.load() >= opt.max_conns) {
            static constexpr std::string_view busy =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            (void)!::write(fd, busy.data(), busy.size());
            ::close(fd);
            continue;
        }
        tune_connection(fd, opt.nagle);
        s.stats.live.fetch_add(1);
        if (!start_connection_thread(s, fd)) {
            std::fprintf(stderr, "opreg-httpd: no thread for a connection: %s (closing it)\n",
                         std::strerror(errno));
            s.stats.live.fetch_sub(1);
            ::close(fd);
        }
    }
    {
        std::unique_lock<std::mutex> lock(s.m);
        s.all_gone.wait_for(lock, std::chrono::seconds(opt.grace_s),
                            [] { return s.stats.live.load() == 0; });
    }
    signals.join();
    ::close(lfd);
    // stop_rd stays open: a connection thread still finishing past the grace period may
    // poll it; the process ends next.
    return 0;
}

} // namespace opreg::http
