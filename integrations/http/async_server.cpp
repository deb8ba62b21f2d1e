// SPDX-License-Identifier: Apache-2.0
// The async model: reactor threads with opreg registries. See server.hpp.
#include <fcntl.h>
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
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

#include "app.hpp"
#include "diagnosis.hpp"
#include "held_bytes.hpp"
#include "response_buffer.hpp"
#include "server.hpp"
#include "session.hpp"

namespace opreg::http {

namespace {

using namespace std::chrono_literals;

// 503 for connections over the limit: written once, then the connection is closed.
constexpr std::string_view busy_response =
    "HTTP/1.1 503 Service Unavailable\r\nServer: opreg-httpd\r\nContent-Type: text/plain\r\n"
    "Content-Length: 20\r\nConnection: close\r\n\r\nToo many connections";

// On a readable edge a worker reads into its scratch buffer in chunks of read_chunk_bytes,
// and answers after read_batch_bytes at most before it reads on: one busy connection cannot
// keep the worker to itself, and the answers to one batch go out in one write.
// A chunk is larger than what clients send at once (16 pipelined small requests are ~1 KiB),
// so a read that returns less took all there was (see read_step).
constexpr std::size_t read_chunk_bytes = 16 * 1024;
constexpr std::size_t read_batch_bytes = 64 * 1024;
// The scratch buffer's first size: a full batch, its last chunk and a kept incomplete request
// of up to 16 KiB fit without growing it (larger ones grow it, once).
constexpr std::size_t initial_scratch_bytes = read_batch_bytes + read_chunk_bytes + 16 * 1024;
// The response buffer's first capacity: the answers to a batch of small requests.
constexpr std::size_t initial_response_bytes = 64 * 1024;
// Connections the kernel queues before accept; it caps this at net.core.somaxconn.
constexpr int listen_backlog = 4096;

std::uint32_t max_fds_for_registry() {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    const rlim_t n = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : rl.rlim_cur;
    return std::uint32_t(std::min<rlim_t>(n, registry_config::max_fds_limit));
}

// A failure in words: the errno's text for an OS error, the errc's name otherwise.
std::string describe(failure f) {
    return f.code == errc::os_error ? std::strerror(f.os_error) : std::string(to_string(f.code));
}

// How a write of some bytes to a non-blocking socket ended.
struct write_outcome {
    enum class end : std::uint8_t { all, would_block, failed };
    std::size_t written = 0;
    end how = end::all;
};
write_outcome write_until_blocked(int fd, std::string_view data) {
    write_outcome w;
    while (w.written < data.size()) {
        const ssize_t n = ::write(fd, data.data() + w.written, data.size() - w.written);
        if (n > 0) {
            w.written += std::size_t(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            w.how = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
                        ? write_outcome::end::would_block
                        : write_outcome::end::failed;
            break;
        }
    }
    return w;
}

template <registry R, class Arming>
class server;

// One reactor thread and its connections. A connection's life, as libuv's streams: the read
// step (read_step) brings bytes, the dispatch step answers the complete requests among them,
// the write step sends the answers or queues what the socket does not take (flush sends the
// queue when the socket is writable), the eof step answers the peer's end, and close_conn
// ends it. Arming is the policy that arms operations (diagnosis.hpp).
template <registry R, class Arming>
class worker {
public:
    // A connection holds no buffer while idle: `partial` and `unsent` hold bytes only while a
    // request is incomplete or a response is not taken yet.
    struct conn {
        worker* w = nullptr;
        int fd = -1;
        std::uint32_t last_active = 0;      // worker clock, seconds
        std::uint32_t request_started = 0;  // when the request in progress began
        std::uint32_t last_sent = 0;        // when unsent output last moved (or was queued)
        bool read_pending = false;
        bool write_pending = false;
        bool zombie = false;                // closed; freed when its last op ends
        bool send_block = false;            // completion mode: unsent lives in a send block
        session_state session;
        held_bytes partial;  // bytes of an incomplete request
        held_bytes unsent;   // the write queue: bytes the socket did not take
        conn* prev = nullptr;
        conn* next = nullptr;
    };

    // `p`: the poller the worker's reactor runs on (open_worker_poller).
    worker(server<R, Arming>& srv, R& reg, int listen_fd, worker_poller p)
        : srv_{srv},
          opt_{srv.options()},
          arming_{opt_, p.rearm},
          conns_{opt_.max_conns},
          loop_{reg, std::move(p.poller)},
          ring_{opt_.completion && loop_.supports_io()},
          hangup_reported_{loop_.hangup_reported()},
          lfd_{listen_fd},
          out_{opt_.write_per_part} {
        in_.resize(initial_scratch_bytes);
        out_.reserve(initial_response_bytes);
        if (ring_) send_blocks_.reserve(spare_send_blocks);  // consume_sent never allocates
    }

    ~worker() { finish(); }

    // Reactor thread, once run() has returned: closes what is left and lets the ops of the
    // closed connections end.
    void finish() {
        if (finished_) return;
        finished_ = true;
        while (head_ != nullptr) close_conn(head_);
        loop_.run_once(0);  // let hand-off registries end the ops of the closed fds
        // Completion mode: a closed connection's send ends once the kernel gives it up.
        for (int i = 0; ring_ && zombies_ != 0 && i < 100; ++i) loop_.run_once(10);
    }

    reactor<R>& loop() noexcept { return loop_; }
    // Whether this worker runs in completion mode (io_uring recv and send ops).
    bool ring() const noexcept { return ring_; }
    std::size_t live() const noexcept { return live_.load(std::memory_order_relaxed); }
    std::uint64_t requests() const noexcept { return requests_.load(std::memory_order_relaxed); }

    result<void> start() {
        worker* self = this;
        acceptor_ = std::make_unique<acceptor<R>>(
            loop_, lfd_, [self](int fd) { self->on_accept(fd); },
            [](int err) {
                std::fprintf(stderr, "opreg-httpd: accept: %s (pausing accepts)\n",
                             std::strerror(err));
            });
        if (const result<void> r = acceptor_->start(); !r) return r;
        schedule_sweep();
        return {};
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
    // How read_step's reading ended.
    enum class read_end : std::uint8_t {
        batch_full,  // read_batch_bytes read: answer them, then read on
        drained,     // nothing more to read now: arm a read for the next edge
        eof,         // the peer ended its side
        failed,      // a read error: the connection is lost
    };
    struct read_batch {
        std::string_view bytes;  // the kept incomplete request, then what was read now
        read_end end;
    };
    // How dispatch_step ended.
    enum class dispatched : std::uint8_t {
        written,      // every answer was written: read on
        output_full,  // written, but requests are left in c->partial: answer them first
        stopped,      // c was closed, or waits to write
    };

    void on_accept(int fd) {
        if (draining_ || srv_.live_total().load(std::memory_order_relaxed) >= opt_.max_conns) {
            (void)!::write(fd, busy_response.data(), busy_response.size());
            ::close(fd);
            return;
        }
        conn* c = conns_.try_create();
        if (c == nullptr || (!ring_ && !loop_.watch(fd))) {
            if (c != nullptr) conns_.destroy(c);
            ::close(fd);
            return;
        }
        tune_connection(fd, opt_.nagle);
        c->w = this;
        c->fd = fd;
        c->last_active = now_;
        link(c);
        if (ring_) {
            next_read(c);
            return;
        }
        // Edge-triggered: data may already be there. Stopping short is safe: the watch
        // just made raises an edge for whatever is queued, FIN included.
        on_readable(c, hangup_reported_);
    }

    void on_event(conn* c, const completion& x) {
        pending(c, x.dir) = false;
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
            on_readable(c, hangup_reported_ && !x.latched && !x.hangup);
        }
    }

    // Readable (or just accepted): read, answer and write until the socket has nothing more,
    // then arm the next read; or close.
    void on_readable(conn* c, bool may_stop_short) { serve(c, read_step(c, may_stop_short)); }

    // Answers `batch`, then goes on: with the requests left over after a batch whose answers
    // filled the output (answered before anything new is read: c->partial shrinks, never
    // grows), by reading on, or by waiting for the next read; or closes.
    void serve(conn* c, read_batch batch) {
        for (;;) {
            if (batch.end == read_end::failed) {
                close_conn(c);
                return;
            }
            const dispatched d = dispatch_step(c, batch.bytes);
            if (d == dispatched::stopped) return;  // closed, or waiting to write
            if (batch.end == read_end::eof) {
                eof_step(c);
                return;
            }
            if (c->session.close_after || (draining_ && !c->session.mid_request)) {
                close_conn(c);
                return;
            }
            if (d == dispatched::output_full) {
                batch = kept_batch(c);
            } else if (ring_ || batch.end == read_end::drained) {
                next_read(c);
                return;
            } else {
                batch = read_step(c, false);
            }
        }
    }

    // Wait for the next bytes: arm a read (readiness), or a recv (completion mode).
    void next_read(conn* c) {
        if (!ring_) {
            arm(c, direction::read);
            return;
        }
        c->read_pending = true;
        const result<op_token> t =
            loop_.recv(c->fd, [c](const io_completion& x) { c->w->on_recv(c, x); });
        if (!t) {
            std::fprintf(stderr, "opreg-httpd: recv fd %d: %s\n", c->fd, describe(t.why()).c_str());
            c->read_pending = false;
            close_conn(c);
        }
    }

    // Completion mode: the recv op ended with the bytes (or the end, or an error).
    void on_recv(conn* c, const io_completion& x) {
        c->read_pending = false;
        if (c->zombie) {
            if (!c->write_pending) free_conn(c);
            return;
        }
        if (x.op.result != outcome::ready || x.res < 0) {
            close_conn(c);
            return;
        }
        serve(c, received_batch(c, x.data));
    }

    // c's kept incomplete request and the bytes a recv brought, as one batch: the bytes as
    // they are when nothing is kept (no copy), else both in the scratch buffer.
    read_batch received_batch(conn* c, std::string_view got) {
        const read_end end = got.empty() ? read_end::eof : read_end::drained;
        if (!got.empty()) note_bytes(c);
        const std::size_t len = take_partial(c, got.size());
        if (len == 0) return {got, end};
        if (!got.empty()) std::memcpy(in_.data() + len, got.data(), got.size());
        return {std::string_view(in_.data(), len + got.size()), end};
    }

    // Completion mode: one send of c->unsent, which stays put until the send's op ends.
    void start_send(conn* c) {
        c->write_pending = true;
        const result<op_token> t = loop_.send(c->fd, c->unsent.view(),
                                              [c](const io_completion& x) { c->w->on_sent(c, x); });
        if (!t) {
            std::fprintf(stderr, "opreg-httpd: send fd %d: %s\n", c->fd, describe(t.why()).c_str());
            c->write_pending = false;
            close_conn(c);
        }
    }

    // Completion mode: c->unsent becomes the copy of `bytes` one send keeps until it ends; in
    // a send block when they fit one.
    void copy_for_send(conn* c, std::string_view bytes) {
        c->send_block = bytes.size() <= send_block_bytes;
        if (!c->send_block) {
            c->unsent.assign(bytes);
            return;
        }
        std::unique_ptr<char[]> block;
        if (send_blocks_.empty()) {
            block = std::make_unique_for_overwrite<char[]>(send_block_bytes);
        } else {
            block = std::move(send_blocks_.back());
            send_blocks_.pop_back();
        }
        c->unsent.assign_into(std::move(block), bytes);
    }

    // Completion mode: n bytes of c->unsent went out. A send block they emptied goes back to
    // the free list (or, past spare_send_blocks, is freed).
    void consume_sent(conn* c, std::size_t n) {
        if (!c->send_block || n < c->unsent.size()) {
            c->unsent.consume(n);
            return;
        }
        c->send_block = false;
        std::unique_ptr<char[]> block = c->unsent.take_block();
        if (send_blocks_.size() < spare_send_blocks) send_blocks_.push_back(std::move(block));
    }

    // Completion mode: the kernel took res bytes of c->unsent (or failed). The rest is sent
    // again; once all is out the connection goes on as after a flush.
    void on_sent(conn* c, const io_completion& x) {
        c->write_pending = false;
        if (c->zombie) {
            if (!c->read_pending) free_conn(c);
            return;
        }
        if (x.op.result != outcome::ready || x.res < 0) {
            close_conn(c);
            return;
        }
        consume_sent(c, std::size_t(x.res));
        if (x.res != 0) c->last_sent = now_;
        if (!c->unsent.empty()) {
            start_send(c);
            return;
        }
        if (c->session.close_after) {
            close_conn(c);
            return;
        }
        if (c->partial.empty() && !(draining_ && !c->session.mid_request)) {
            next_read(c);  // the usual case: nothing left over
            return;
        }
        serve(c, kept_batch(c));  // requests left over (or a drain's close), then the next recv
    }

    // The read step: c's kept incomplete request (moved into the scratch buffer), then what
    // the socket has, up to a batch. `may_stop_short`: the edge that woke us said no hang-up,
    // so a short read may stand for EAGAIN.
    read_batch read_step(conn* c, bool may_stop_short) {
        std::size_t len = take_partial(c, read_chunk_bytes);
        const std::size_t kept = len;
        read_end end = read_end::batch_full;
        while (len - kept < read_batch_bytes) {
            reserve_scratch(len + read_chunk_bytes);
            const ssize_t n = ::read(c->fd, in_.data() + len, read_chunk_bytes);
            if (n > 0) {
                len += std::size_t(n);
                if (std::size_t(n) == read_chunk_bytes || !may_stop_short) continue;
                // A short read took all there was: skip the read that would only say EAGAIN
                // (one system call per request). Bytes or a FIN that arrive later raise a new
                // edge, which the registry keeps for the next arm if it comes first. Not
                // after an edge that carried the hang-up: its FIN is already queued behind
                // these bytes and no edge will follow.
                end = read_end::drained;
            } else if (n == 0) {
                end = read_end::eof;
            } else if (errno == EINTR) {
                continue;
            } else {
                end =
                    errno == EAGAIN || errno == EWOULDBLOCK ? read_end::drained : read_end::failed;
            }
            break;
        }
        if (len > kept) note_bytes(c);
        return {std::string_view(in_.data(), len), end};
    }

    // The kept bytes alone, in the scratch buffer: no read.
    read_batch kept_batch(conn* c) {
        return {std::string_view(in_.data(), take_partial(c, 0)), read_end::batch_full};
    }

    // Moves c's kept bytes to the front of the scratch buffer, with room for `more` bytes
    // after them; returns how many were kept (0: nothing moved).
    std::size_t take_partial(conn* c, std::size_t more) {
        const std::size_t len = c->partial.size();
        if (len == 0) return 0;
        reserve_scratch(len + more);
        std::memcpy(in_.data(), c->partial.view().data(), len);
        c->partial.reset();
        return len;
    }

    // New bytes came: the connection is active, and a request not in progress starts now.
    void note_bytes(conn* c) {
        if (!c->session.mid_request) c->request_started = now_;
        c->last_active = now_;
    }

    // Grows the scratch buffer (zero-filling only when it grows, which is rare).
    void reserve_scratch(std::size_t n) {
        if (in_.size() < n) in_.resize(std::max(n, 2 * in_.size()));
    }

    // The dispatch step: answers the complete requests in `bytes` into out_ (up to
    // max_output), keeps the rest in c->partial (an incomplete head, or requests not answered
    // yet; a body in progress is kept by the session), and writes the answers.
    dispatched dispatch_step(conn* c, std::string_view bytes) {
        out_.clear();
        const serve_result r = serve_requests(srv_.session(), bytes, out_, c->session);
        requests_.fetch_add(r.requests, std::memory_order_relaxed);
        // The header timeout measures the request in progress, not the connection: one that
        // began after an answered request began in this batch.
        if (r.requests != 0) c->request_started = now_;
        if (r.consumed < bytes.size() && !c->session.close_after)
            c->partial.assign(bytes.substr(r.consumed));
        if (!out_.empty() && !write_step(c)) return dispatched::stopped;
        return r.output_full ? dispatched::output_full : dispatched::written;
    }

    // The eof step: the peer ended its side. A request it left incomplete can never complete
    // and is answered 400; the connection closes once that is written.
    void eof_step(conn* c) {
        if (c->session.mid_request && !c->session.close_after) {
            out_.clear();
            app::respond_error(400, "request cut short", out_);
            c->session.close_after = true;
            if (!write_step(c)) return;  // closed, or flush closes it once written
        }
        close_conn(c);
    }

    // The write step: out_ in one write, or one write per part when parts are recorded
    // (--write-per-part). Whatever the socket does not take is queued in c->unsent and a
    // write is armed. false when c must wait to write, or was closed.
    bool write_step(conn* c) {
        const std::string_view all = out_.view();
        if (ring_) {  // one send of all of it, from the connection's own copy
            copy_for_send(c, all);
            c->last_sent = now_;
            start_send(c);
            return false;
        }
        std::size_t from = 0;
        for (const std::size_t part_end : out_.part_ends()) {
            if (!write_or_queue(c, all, from, part_end)) return false;
            from = part_end;
        }
        return from == all.size() || write_or_queue(c, all, from, all.size());
    }

    // Writes all[from, to). When the socket takes less, queues everything of `all` not written
    // yet (later parts too) and arms a write. false then, and when c was closed.
    bool write_or_queue(conn* c, std::string_view all, std::size_t from, std::size_t to) {
        const write_outcome w = write_until_blocked(c->fd, all.substr(from, to - from));
        if (w.how == write_outcome::end::all) return true;
        if (w.how == write_outcome::end::failed) {
            close_conn(c);
            return false;
        }
        c->unsent.assign(all.substr(from + w.written));
        c->last_sent = now_;
        arm(c, direction::write);
        return false;
    }

    // Writable: sends the queue. true when it is empty and the connection reads on.
    bool flush(conn* c) {
        if (c->unsent.empty()) return true;
        const write_outcome w = write_until_blocked(c->fd, c->unsent.view());
        if (w.how == write_outcome::end::failed) {
            close_conn(c);
            return false;
        }
        c->unsent.consume(w.written);
        if (w.written != 0) c->last_sent = now_;
        if (w.how == write_outcome::end::would_block) {
            arm(c, direction::write);
            return false;
        }
        if (c->session.close_after) {
            close_conn(c);
            return false;
        }
        return true;
    }

    // The arm step, through the Arming policy. A refused arm is reported, and the
    // connection cannot go on.
    void arm(conn* c, direction d) {
        pending(c, d) = true;
        const result<op_token> t =
            arming_.arm(loop_, c->fd, d, [c](const completion& x) { c->w->on_event(c, x); });
        if (!t) {
            std::fprintf(stderr, "opreg-httpd: arm fd %d: %s\n", c->fd, describe(t.why()).c_str());
            pending(c, d) = false;
            close_conn(c);
        }
    }

    static bool& pending(conn* c, direction d) noexcept {
        return d == direction::read ? c->read_pending : c->write_pending;
    }

    // A connection closed for a timeout is reset: the kernel drops what it still holds for
    // it (unsent output to a peer that does not read) instead of keeping it, orphaned.
    void reset_conn(conn* c) {
        if (c->zombie) return;
        const linger abort{.l_onoff = 1, .l_linger = 0};
        ::setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
        close_conn(c);
    }

    void close_conn(conn* c) {
        if (c->zombie) return;
        const int fd = c->fd;
        unlink(c);
        c->zombie = true;
        c->fd = -1;
        const bool wait_for_ops = c->read_pending || c->write_pending;
        if (wait_for_ops) link_zombie(c);
        loop_.close(fd);  // ends its pending op as closed: on_event frees c then, or later
        if (!wait_for_ops) conns_.destroy(c);
        if (draining_ && live() == 0) loop_.stop();
    }

    // A closed connection whose last op has ended.
    void free_conn(conn* c) {
        unlink_zombie(c);
        conns_.destroy(c);
    }

    // Closed connections waiting for their last op: a list of their own (prev/next are free
    // once unlinked from the live list), so that whatever finish() leaves is freed after the
    // reactor has gone.
    void link_zombie(conn* c) {
        c->next = zombie_head_;
        if (zombie_head_ != nullptr) zombie_head_->prev = c;
        zombie_head_ = c;
        ++zombies_;
    }
    void unlink_zombie(conn* c) {
        if (c->prev != nullptr) c->prev->next = c->next;
        if (c->next != nullptr) c->next->prev = c->prev;
        if (zombie_head_ == c) zombie_head_ = c->next;
        c->prev = c->next = nullptr;
        --zombies_;
    }

    // Destroyed after the reactor, before the connection pool: the connections whose ops
    // finish() gave up waiting for go now. The reactor's destructor has ended those ops
    // without running their callbacks and had the kernel give their buffers back, so no
    // request and no callback refers to them any more.
    struct zombie_reaper {
        worker* w;
        ~zombie_reaper() {
            while (w->zombie_head_ != nullptr) {
                conn* c = w->zombie_head_;
                w->unlink_zombie(c);
                w->conns_.destroy(c);
            }
        }
    };

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

    // Every second: close connections past their header, idle or send timeout.
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
            if (!c->unsent.empty()) {
                // Output the peer does not take: it has send_timeout to take some.
                if (now_ - c->last_sent >= std::uint32_t(opt_.send_timeout_s)) reset_conn(c);
            } else if (c->session.mid_request) {
                if (now_ - c->request_started >= std::uint32_t(opt_.header_timeout_s))
                    close_conn(c);
            } else if (now_ - c->last_active >= std::uint32_t(opt_.idle_timeout_s)) {
                close_conn(c);
            }
            c = next;
        }
    }

    void drain() {
        draining_ = true;
        loop_.close(lfd_);  // no more accepts
        for (conn* c = head_; c != nullptr;) {
            conn* next = c->next;
            if (!c->session.mid_request && c->unsent.empty()) close_conn(c);
            c = next;
        }
        if (live() == 0) loop_.stop();
    }

    server<R, Arming>& srv_;
    const server_options& opt_;
    Arming arming_;  // may point at loop_'s poller (a rearming_poller), which outlives it
    // The connections, and those closed with an op still pending: declared before the
    // reactor, so that they are freed only once it (and its ring) has gone.
    object_pool<conn> conns_;
    conn* zombie_head_ = nullptr;
    std::size_t zombies_ = 0;  // closed connections waiting for their last op to end
    zombie_reaper reaper_{this};
    reactor<R> loop_;
    // Completion mode: --backend io_uring-completion, and the backend has it.
    const bool ring_;
    // Whether events say when the peer's FIN is queued (reactor::hangup_reported): a short
    // read may then stand for EAGAIN. Where they do not, every read goes on to EAGAIN.
    const bool hangup_reported_;
    int lfd_;
    std::unique_ptr<acceptor<R>> acceptor_;
    conn* head_ = nullptr;
    std::atomic<std::size_t> live_{0};
    std::atomic<std::uint64_t> requests_{0};
    std::uint32_t now_ = 0;
    bool draining_ = false;
    bool finished_ = false;
    std::string in_;       // scratch: the bytes of one read batch, any connection's
    response_buffer out_;  // the answers to one read batch
    // Completion mode: a send's bytes stay put until the send ends, so each send is a copy.
    // One that fits send_block_bytes (a keep-alive answer, a 16-deep pipeline's answers) is
    // copied into a block from this free list, which it rejoins once sent: answering costs
    // no allocation once warm. A longer one gets an allocation of its own size. At most
    // spare_send_blocks wait here (1 MiB per worker); an idle connection holds none.
    static constexpr std::size_t send_block_bytes = 4096;
    static constexpr std::size_t spare_send_blocks = 256;
    std::vector<std::unique_ptr<char[]>> send_blocks_;
};

template <registry R, class Arming>
class server : public stats_source {
public:
    explicit server(const server_options& opt)
        : opt_{opt},
          budget_{opt_.body_memory},
          session_{.application = app_, .lim = opt_.lim, .stats = this, .budget = &budget_} {}

    const server_options& options() const noexcept { return opt_; }
    const session_context& session() const noexcept { return session_; }
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
        std::string note;  // why the first worker's backend is not the one asked for
        for (int i = 0; i < n; ++i) {
            const int lfd = listen_on(port, n > 1, true);
            if (lfd < 0) {
                std::fprintf(stderr, "opreg-httpd: listen on 127.0.0.1:%d: %s\n", port,
                             std::strerror(errno));
                return 1;
            }
            std::string why;
            result<worker_poller> p = open_worker_poller(opt_, why);
            if (!p) {
                std::fprintf(stderr, "opreg-httpd: %s (%s)\n", why.c_str(),
                             describe(p.why()).c_str());
                return 1;
            }
            if (i == 0) note = why;
            if (!shared_) own_.push_back(std::make_unique<R>(cfg));
            R& reg = shared_ ? *shared_ : *own_.back();
            try {  // the reactor's constructor throws when it cannot have its eventfd
                workers_.push_back(
                    std::make_unique<worker<R, Arming>>(*this, reg, lfd, std::move(p.value())));
            } catch (const std::system_error& e) {
                std::fprintf(stderr, "opreg-httpd: cannot start a reactor: %s\n", e.what());
                return 1;
            }
        }
        if (!note.empty()) std::fprintf(stderr, "opreg-httpd: %s\n", note.c_str());
        backend_ = workers_.front()->loop().active_backend();
        ring_ = workers_.front()->ring();
        if (opt_.completion && !ring_)
            std::fprintf(stderr, "opreg-httpd: completion mode needs io_uring; serving on %s "
                                 "readiness instead\n", std::string(to_string(backend_)).c_str());

        // Signals go to the sigwait below, not to the reactor threads.
        sigset_t sigs;
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
        // Each worker starts, runs and finishes on its own thread, the only one that touches
        // its reactor (a single-issuer io_uring ring belongs to the thread that first uses it).
        std::vector<std::thread> threads;
        std::atomic<int> started{0};
        std::atomic<int> failed{0};
        for (auto& w : workers_) {
            threads.emplace_back([&w, &started, &failed] {
                const result<void> r = w->start();
                if (!r) {
                    std::fprintf(stderr, "opreg-httpd: cannot start accepting: %s\n",
                                 describe(r.why()).c_str());
                    failed.fetch_add(1);
                }
                started.fetch_add(1);  // seq_cst: the main thread reads both after this
                if (!r) return;
                w->run();
                w->finish();
            });
        }
        while (started.load() < int(workers_.size())) std::this_thread::sleep_for(1ms);
        if (failed.load() != 0) {
            for (auto& w : workers_) w->force_stop();
            for (auto& t : threads) t.join();
            return 1;
        }
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
        v.backend = ring_ ? "io_uring-completion" : to_string(backend_);
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
    body_budget budget_;
    session_context session_;
    std::atomic<std::size_t> live_total_{0};
    std::unique_ptr<R> shared_;
    std::vector<std::unique_ptr<R>> own_;
    std::vector<std::unique_ptr<worker<R, Arming>>> workers_;
    backend backend_ = native_backend();
    bool ring_ = false;
};

} // namespace

int listen_on(int& port, bool reuse_port, bool nonblocking) {
    // POSIX calls only (no SOCK_NONBLOCK): the server builds where kqueue is the backend too.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
        (nonblocking && ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)) {
        const int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only
    addr.sin_port = htons(std::uint16_t(port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd, listen_backlog) != 0) {
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
    // The arming policy is chosen here, once: the normal path carries no diagnosis branch.
    const bool diagnosed = opt.std_function || opt.rearm_per_op;
    int status = 2;
    const bool known = visit_strategy(opt.registry, [&]<class R>(std::type_identity<R>) {
        status =
            diagnosed ? server<R, diagnosed_arming>{opt}.run() : server<R, plain_arming>{opt}.run();
    });
    if (!known) {
        std::fprintf(stderr, "opreg-httpd: unknown registry '%s' (%s)\n", opt.registry.c_str(),
                     joined_registry_names().c_str());
        return 2;
    }
    return status;
}

} // namespace opreg::http
