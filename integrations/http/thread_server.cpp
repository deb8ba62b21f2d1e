// The thread-per-connection model: blocking accept, one thread per connection, blocking
// reads and writes. Same parser, router and responses as the async model; this is the
// comparison row of the original analysis.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
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
    std::mutex m;
    std::condition_variable all_gone;
};

// A connection's input buffer: a pipelined burst of small requests fits without growing.
constexpr std::size_t initial_input_bytes = 64 * 1024;
// Each read is offered at least this much room (the buffer doubles when less is left), so
// that a large request arrives in reads of a useful size, not a few bytes at a time.
constexpr std::size_t min_read_room = 16 * 1024;

void serve_connection(shared_state& s, int fd) {
    const server_options& opt = *s.opt;
    // A slow or silent client is dropped after the idle / header timeout.
    std::string in;
    response_buffer out;
    session_state st;
    in.resize(initial_input_bytes);
    std::size_t len = 0;
    for (;;) {
        const int timeout_s = st.mid_request ? opt.header_timeout_s : opt.idle_timeout_s;
        // Poll in 100 ms steps up to the timeout, to notice a graceful stop.
        pollfd p{fd, POLLIN, 0};
        int ready = 0, waited_ms = 0;
        while (ready == 0 && waited_ms < timeout_s * 1000) {
            if (s.stopping.load(std::memory_order_relaxed) && !st.mid_request) break;
            ready = ::poll(&p, 1, 100);
            waited_ms += 100;
        }
        if (ready <= 0) break;
        if (in.size() - len < min_read_room) in.resize(in.size() * 2);
        const ssize_t n = ::read(fd, in.data() + len, in.size() - len);
        if (n == 0 && st.mid_request) {  // the client ended its side inside a request
            out.clear();
            app::respond_error(400, "request cut short", out);
            (void)!::write(fd, out.view().data(), out.size());
        }
        if (n <= 0) break;
        len += std::size_t(n);
        out.clear();
        const serve_result r = serve_requests(s.session, std::string_view(in.data(), len), out, st);
        s.stats.requests.fetch_add(r.requests, std::memory_order_relaxed);
        std::memmove(in.data(), in.data() + r.consumed, len - r.consumed);
        len -= r.consumed;
        std::size_t off = 0;
        while (off < out.size()) {
            const ssize_t w = ::write(fd, out.view().data() + off, out.size() - off);
            if (w <= 0 && errno != EINTR) break;
            if (w > 0) off += std::size_t(w);
        }
        if (off < out.size() || st.close_after) break;
        if (s.stopping.load(std::memory_order_relaxed) && !st.mid_request) break;
    }
    ::close(fd);
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
        std::thread([fd] {
            serve_connection(s, fd);
            if (s.stats.live.fetch_sub(1) == 1) {
                std::lock_guard<std::mutex> lock(s.m);
                s.all_gone.notify_all();
            }
        }).detach();
    }
    {
        std::unique_lock<std::mutex> lock(s.m);
        s.all_gone.wait_for(lock, std::chrono::seconds(opt.grace_s),
                            [] { return s.stats.live.load() == 0; });
    }
    signals.join();
    ::close(lfd);
    return 0;
}

} // namespace opreg::http
