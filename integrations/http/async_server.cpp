// The async model: reactor threads with opreg registries. See server.hpp.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <opreg/opreg.hpp>

#include "app.hpp"
#include "server.hpp"
#include "session.hpp"

namespace opreg::http {

namespace {

using namespace std::chrono_literals;

// 503 for connections over the limit: written once, then the connection is closed.
constexpr std::string_view busy_response =
    "HTTP/1.1 503 Service Unavailable\r\nServer: opreg-httpd\r\nContent-Type: text/plain\r\n"
    "Content-Length: 20\r\nConnection: close\r\n\r\nToo many connections";

std::uint32_t max_fds_for_registry() {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    const rlim_t n = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : rl.rlim_cur;
    return std::uint32_t(std::min<rlim_t>(n, registry_config::max_fds_limit));
}

template <registry R>
class server;

template <registry R>
class worker {
public:
    struct conn {
        worker* w = nullptr;
        int fd = -1;
        std::uint32_t last_active = 0;      // worker clock, seconds
        std::uint32_t request_started = 0;  // when the request in progress began
        bool read_pending = false;
        bool write_pending = false;
        bool zombie = false;                // closed; freed when its last op ends
        session_state session;
        std::string* partial = nullptr;     // bytes of an incomplete request
        std::string* unsent = nullptr;      // response bytes the socket did not take yet
        conn* prev = nullptr;
        conn* next = nullptr;
    };

    worker(server<R>& srv, R& reg, int listen_fd)
        : srv_{srv},
          opt_{srv.options()},
          loop_{reg, reactor_options{.which = opt_.which, .rearm_per_op = opt_.rearm_per_op}},
          lfd_{listen_fd},
          conns_{opt_.max_conns} {
        in_.resize(96 * 1024);
        out_.reserve(64 * 1024);
    }

    ~worker() {
        while (head_ != nullptr) close_conn(head_);
        loop_.run_once(0);  // let hand-off registries end the ops of the closed fds
    }

    reactor<R>& loop() noexcept { return loop_; }
    std::size_t live() const noexcept { return live_.load(std::memory_order_relaxed); }
    std::uint64_t requests() const noexcept { return requests_.load(std::memory_order_relaxed); }

    bool start() {
        worker* self = this;
        acceptor_ = std::make_unique<acceptor<R>>(
            loop_, lfd_, [self](int fd) { self->on_accept(fd); },
            [](int err) {
                std::fprintf(stderr, "opreg-httpd: accept: %s (pausing accepts)\n",
                             std::strerror(err));
            });
        if (acceptor_->start() != errc::ok) return false;
        schedule_sweep();
        return true;
    }

    // Reactor thread.
    void run() { loop_.run(); }

    // Any thread: stop accepting; finish what is in flight; stop when no connection is left.
    void begin_drain() {
        worker* self = this;
        while (!loop_.post([self] { self->drain(); })) std::this_thread::yield();
    }
    void force_stop() {
        worker* self = this;
        while (!loop_.post([self] {
            while (self->head_ != nullptr) self->close_conn(self->head_);
            self->loop_.stop();
        }))
            std::this_thread::yield();
    }

private:
    void on_accept(int fd) {
        if (draining_ || srv_.live_total().load(std::memory_order_relaxed) >= opt_.max_conns) {
            (void)!::write(fd, busy_response.data(), busy_response.size());
            ::close(fd);
            return;
        }
        conn* c = conns_.try_create();
        if (c == nullptr || !loop_.watch(fd)) {
            if (c != nullptr) conns_.destroy(c);
            ::close(fd);
            return;
        }
        tune_connection(fd, opt_.nagle);
        c->w = this;
        c->fd = fd;
        c->last_active = now_;
        link(c);
        // Edge-triggered: data may already be there. Stopping short is safe: the watch
        // just made raises an edge for whatever is queued, FIN included.
        on_readable(c, true);
    }

    // Arms an op on c's fd. With --std-function the callback goes through a heap-allocated
    // std::function, as the original design's callbacks did.
    void arm(conn* c, direction d) {
        (d == direction::read ? c->read_pending : c->write_pending) = true;
        result<op_token> t = errc::ok;
        if (opt_.std_function) {
            auto* fn = new std::function<void(const completion&)>(
                [c](const completion& x) { c->w->on_event(c, x); });
            t = loop_.arm(c->fd, d, [fn](const completion& x) {
                (*fn)(x);
                delete fn;
            });
        } else {
            t = loop_.arm(c->fd, d, [c](const completion& x) { c->w->on_event(c, x); });
        }
        if (!t) {  // a refused arm is reported, and the connection cannot go on
            std::fprintf(stderr, "opreg-httpd: arm fd %d: %s\n", c->fd,
                         std::string(to_string(t.error())).c_str());
            (d == direction::read ? c->read_pending : c->write_pending) = false;
            close_conn(c);
        }
    }

    void on_event(conn* c, const completion& x) {
        (x.dir == direction::read ? c->read_pending : c->write_pending) = false;
        if (c->zombie) {
            if (!c->read_pending && !c->write_pending) free_conn(c);
            return;
        }
        if (x.result != outcome::ready) {
            close_conn(c);
            return;
        }
        if (x.dir == direction::write) {
            if (flush(c)) on_readable(c, false);  // caught up: read again (data may be waiting)
        } else {
            // A latched ready does not say whether the peer hung up; an event that did says
            // so: in both cases read to EAGAIN or end-of-file.
            on_readable(c, !x.latched && !x.hangup);
        }
    }

    // Reads until EAGAIN, answering what arrives; one write per read batch. `may_stop_short`:
    // the edge that woke us said no hang-up, so a short read may stand for EAGAIN.
    void on_readable(conn* c, bool may_stop_short) {
        constexpr std::size_t chunk = 16 * 1024, batch = 64 * 1024;
        for (;;) {
            std::size_t len = 0;
            if (c->partial != nullptr) {
                len = c->partial->size();
                reserve_in(len + chunk);
                std::memcpy(in_.data(), c->partial->data(), len);
                delete c->partial;
                c->partial = nullptr;
            }
            bool eof = false, again = false;
            const std::size_t before = len;
            while (len - before < batch) {
                reserve_in(len + chunk);
                const ssize_t n = ::read(c->fd, in_.data() + len, chunk);
                if (n > 0) {
                    len += std::size_t(n);
                    if (std::size_t(n) == chunk || !may_stop_short) continue;
                    // A short read took all there was: skip the read that would only say
                    // EAGAIN (one system call per request). Bytes or a FIN that arrive
                    // later raise a new edge, which the registry keeps for the arm below
                    // if it comes first. Not after an edge that carried the hang-up: its
                    // FIN is already queued behind these bytes and no edge will follow.
                    again = true;
                    break;
                }
                if (n == 0) {
                    eof = true;
                } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    again = true;
                } else if (errno == EINTR) {
                    continue;
                } else {
                    close_conn(c);
                    return;
                }
                break;
            }
            if (len > before) {
                if (!c->session.mid_request) c->request_started = now_;
                c->last_active = now_;
            }
            const std::string_view data(in_.data(), len);
            out_.clear();
            const serve_result r =
                serve_requests(srv_.application(), opt_.lim, data, out_, c->session, &srv_);
            requests_.fetch_add(r.requests, std::memory_order_relaxed);
            if (r.consumed < len && !c->session.close_after)
                c->partial = new std::string(data.substr(r.consumed));
            if (!out_.empty() && !send_batch(c, out_)) return;  // closed, or waiting to write
            if (eof && c->session.mid_request && !c->session.close_after) {
                // The client ended its side inside a request: it can never complete.
                out_.clear();
                app::respond_error(400, "request cut short", out_);
                c->session.close_after = true;
                if (!send_batch(c, out_)) return;
            }
            if (c->session.close_after || eof || (draining_ && !c->session.mid_request)) {
                close_conn(c);
                return;
            }
            if (again) {
                arm(c, direction::read);
                return;
            }
        }
    }

    // Grows the scratch buffer (zero-filling only when it grows, which is rare).
    void reserve_in(std::size_t n) {
        if (in_.size() < n) in_.resize(std::max(n, 2 * in_.size()));
    }

    // All responses to one read in one write; with --write-per-part (diagnosis), a write
    // per response part (head, then body), as servers that write as they go do.
    bool send_batch(conn* c, std::string_view data) {
        if (!opt_.write_per_part) return send(c, data);
        std::size_t pos = 0;
        while (pos < data.size()) {
            const std::size_t head_end = data.find("\r\n\r\n", pos);
            std::size_t cut = head_end == std::string_view::npos ? data.size() : head_end + 4;
            if (data.compare(pos, 5, "HTTP/") != 0) {  // a body: up to the next response
                const std::size_t next = data.find("HTTP/1.", pos);
                cut = next == std::string_view::npos || next == pos ? data.size() : next;
            }
            if (!send(c, data.substr(pos, cut - pos))) {
                if (c->unsent != nullptr) c->unsent->append(data.substr(cut));
                return false;
            }
            pos = cut;
        }
        return true;
    }

    // Writes `data`; keeps what the socket does not take and arms a write. false when
    // the connection must wait (write armed) or was closed.
    bool send(conn* c, std::string_view data) {
        std::size_t off = 0;
        while (off < data.size()) {
            const ssize_t n = ::write(c->fd, data.data() + off, data.size() - off);
            if (n > 0) {
                off += std::size_t(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                c->unsent = new std::string(data.substr(off));
                arm(c, direction::write);
                return false;
            } else {
                close_conn(c);
                return false;
            }
        }
        return true;
    }

    // Retries the unsent bytes; true when all are out.
    bool flush(conn* c) {
        std::unique_ptr<std::string> pending{std::exchange(c->unsent, nullptr)};
        if (!pending) return true;
        if (!send(c, *pending)) return false;
        if (c->session.close_after) {
            close_conn(c);
            return false;
        }
        return true;
    }

    void close_conn(conn* c) {
        if (c->zombie) return;
        const int fd = c->fd;
        unlink(c);
        c->zombie = true;
        c->fd = -1;
        const bool wait_for_ops = c->read_pending || c->write_pending;
        loop_.close(fd);  // ends its pending op as closed: on_event frees c then, or later
        if (!wait_for_ops) free_conn(c);
        if (draining_ && live() == 0) loop_.stop();
    }

    void free_conn(conn* c) {
        delete c->partial;
        delete c->unsent;
        conns_.destroy(c);
    }

    void link(conn* c) {
        c->next = head_;
        if (head_ != nullptr) head_->prev = c;
        head_ = c;
        live_.fetch_add(1, std::memory_order_relaxed);
        srv_.live_total().fetch_add(1, std::memory_order_relaxed);  // a count, orders nothing
    }
    void unlink(conn* c) {
        if (c->prev != nullptr) c->prev->next = c->next;
        if (c->next != nullptr) c->next->prev = c->prev;
        if (head_ == c) head_ = c->next;
        c->prev = c->next = nullptr;
        live_.fetch_sub(1, std::memory_order_relaxed);
        srv_.live_total().fetch_sub(1, std::memory_order_relaxed);
    }

    // Once a second: close connections past their header or idle timeout.
    void schedule_sweep() {
        worker* self = this;
        loop_.after(1s, [self] {
            ++self->now_;
            self->sweep();
            self->schedule_sweep();
        });
    }
    void sweep() {
        for (conn* c = head_; c != nullptr;) {
            conn* next = c->next;
            const bool mid = c->session.mid_request;
            if ((mid && now_ - c->request_started >= std::uint32_t(opt_.header_timeout_s)) ||
                (!mid && c->unsent == nullptr &&
                 now_ - c->last_active >= std::uint32_t(opt_.idle_timeout_s)))
                close_conn(c);
            c = next;
        }
    }

    void drain() {
        draining_ = true;
        loop_.close(lfd_);  // no more accepts
        for (conn* c = head_; c != nullptr;) {
            conn* next = c->next;
            if (!c->session.mid_request && c->unsent == nullptr) close_conn(c);
            c = next;
        }
        if (live() == 0) loop_.stop();
    }

    server<R>& srv_;
    const server_options& opt_;
    reactor<R> loop_;
    int lfd_;
    std::unique_ptr<acceptor<R>> acceptor_;
    object_pool<conn> conns_;
    conn* head_ = nullptr;
    std::atomic<std::size_t> live_{0};
    std::atomic<std::uint64_t> requests_{0};
    std::uint32_t now_ = 0;
    bool draining_ = false;
    std::string in_, out_;
};

template <registry R>
class server : public stats_source {
public:
    explicit server(const server_options& opt) : opt_{opt} {}

    const server_options& options() const noexcept { return opt_; }
    const app& application() const noexcept { return app_; }
    // Connections of every worker: --max-conns is a limit for the whole server.
    std::atomic<std::size_t>& live_total() noexcept { return live_total_; }

    int run() {
        if (opt_.shared_registry && R::hands_off()) {
            std::fprintf(stderr, "opreg-httpd: %s has one owner thread and cannot be shared "
                                 "by several reactor threads\n", std::string(R::name()).c_str());
            return 2;
        }
        const registry_config cfg{.max_fds = max_fds_for_registry()};
        const int n = std::max(1, opt_.threads);
        if (opt_.shared_registry) shared_ = std::make_unique<R>(cfg);
        int port = opt_.port;
        for (int i = 0; i < n; ++i) {
            const int lfd = listen_on(port, n > 1, true);
            if (lfd < 0) {
                std::fprintf(stderr, "opreg-httpd: listen on 127.0.0.1:%d: %s\n", port,
                             std::strerror(errno));
                return 1;
            }
            if (!shared_) own_.push_back(std::make_unique<R>(cfg));
            R& reg = shared_ ? *shared_ : *own_.back();
            workers_.push_back(std::make_unique<worker<R>>(*this, reg, lfd));
            if (!workers_.back()->start()) {
                std::fprintf(stderr, "opreg-httpd: cannot start accepting\n");
                return 1;
            }
        }
        const reactor<R>& first = workers_.front()->loop();
        if (!first.note().empty()) std::fprintf(stderr, "opreg-httpd: %s\n", first.note().c_str());
        backend_ = first.active_backend();

        // Signals go to the sigwait below, not to the reactor threads.
        sigset_t sigs;
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
        std::vector<std::thread> threads;
        for (auto& w : workers_) threads.emplace_back([&w] { w->run(); });
        std::printf("listening on 127.0.0.1:%d\n", port);
        std::fflush(stdout);

        int sig = 0;
        sigwait(&sigs, &sig);
        std::fprintf(stderr, "opreg-httpd: %s: finishing responses in flight\n",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT");
        for (auto& w : workers_) w->begin_drain();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opt_.grace_s);
        bool all_done = false;
        while (!all_done && std::chrono::steady_clock::now() < deadline) {
            all_done = true;
            for (auto& w : workers_) all_done = all_done && w->live() == 0;
            if (!all_done) std::this_thread::sleep_for(10ms);
        }
        if (!all_done)
            for (auto& w : workers_) w->force_stop();
        for (auto& t : threads) t.join();
        return 0;
    }

    stats_view snapshot() const override {
        stats_view v;
        v.registry = R::name();
        v.model = "async";
        v.backend = to_string(backend_);
        auto add = [&v](const registry_stats& s) {
            v.armed += s.armed;
            v.completed += s.completed;
            v.cancelled += s.cancelled;
            v.closed += s.closed;
            v.timed_out += s.timed_out;
            v.errors += s.errors;
            v.stale_dropped += s.stale_dropped;
            v.failures += s.failures;
            v.in_flight += s.in_flight;
        };
        if (shared_) add(shared_->stats());
        for (const auto& r : own_) add(r->stats());
        for (const auto& w : workers_) {
            v.connections += w->live();
            v.requests += w->requests();
        }
        return v;
    }

private:
    server_options opt_;
    app app_;
    std::atomic<std::size_t> live_total_{0};
    std::unique_ptr<R> shared_;
    std::vector<std::unique_ptr<R>> own_;
    std::vector<std::unique_ptr<worker<R>>> workers_;
    backend backend_ = backend::epoll;
};

template <registry R>
int run_with(const server_options& opt) {
    server<R> s{opt};
    return s.run();
}

} // namespace

int listen_on(int& port, bool reuse_port, bool nonblocking) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) return -1;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only
    addr.sin_port = htons(std::uint16_t(port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    return fd;
}

void tune_connection(int fd, bool nagle) {
    const int on = nagle ? 0 : 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

int run_async(const server_options& opt) {
    if (opt.registry == "mutex_map") return run_with<mutex_map>(opt);
    if (opt.registry == "sharded_map") return run_with<sharded_map>(opt);
    if (opt.registry == "tbb_map") return run_with<tbb_map>(opt);
    if (opt.registry == "slot_array") return run_with<slot_array>(opt);
    if (opt.registry == "mpsc_queue") return run_with<mpsc_queue>(opt);
    std::fprintf(stderr, "opreg-httpd: unknown registry '%s'\n", opt.registry.c_str());
    return 2;
}

} // namespace opreg::http
