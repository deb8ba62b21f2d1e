// SPDX-License-Identifier: Apache-2.0
// line_server: a line protocol on opreg's reactor, two reactor threads. See --help.
//
// What it shows, each in a few lines:
// - opreg::reactor<opreg::slot_array> per thread, each with its own registry, and an
//   opreg::acceptor on the first thread that hands every other connection to the second
//   through post(): the connection's fd is watched, armed and closed only on the thread
//   that serves it.
// - An idle timeout per connection with no timer bookkeeping of our own: every read is
//   armed with arm_with_deadline(), and a read that sees nothing for --idle-timeout ends as
//   outcome::timed_out; the reactor keeps one deadline per (fd, direction), replaced by the
//   next arm.
// - Cross-thread requests through post() both ways: KICK asks the other thread to close
//   its oldest connection and answers with what it did; STATS gathers both threads' counts.
//   No state is shared between the threads; every connection's state belongs to its thread.
// - Clean shutdown: SIGTERM/SIGINT wait in main (blocked in every thread); main posts a
//   shutdown to each thread in turn, which stops accepting, closes every connection and
//   stops its loop, and joins it.
//
// Every arm may end at once (readiness latched before it) and run its callback inside
// arm(), which may close the connection: nothing here touches a connection after arming it.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <opreg/opreg.hpp>

#include "support.hpp"

namespace {

constexpr const char* usage = R"usage(usage: line_server [--port N] [--idle-timeout S]

A line server on 127.0.0.1 with two opreg reactor threads. The first accepts and hands
every other connection to the second. Each line is answered on its own line:

  QUIT    BYE, then the connection closes
  WHO     which thread serves this connection, and its number: "worker W conn N"
  KICK    the other thread closes its oldest connection (which reads "BYE kicked") and
          says which: "KICKED worker W conn N", or "KICKED none (worker W has none)"
  STATS   live connections and lines answered per thread, gathered from both threads:
          "STATS worker0 conns=C lines=L worker1 conns=C lines=L"
  other   the line upper-cased

Answers to KICK and STATS come when the other thread replies, possibly after the answers
to later lines. A connection silent for the idle timeout reads "BYE idle" and is closed;
a line longer than 4096 bytes reads "ERR line too long" and is closed.

options:
  --port N           port on 127.0.0.1 (default 7001; 0 picks a free one)
  --idle-timeout S   close a connection silent this long, in seconds (default 30; a
                     fraction is fine: 0.5)
  --help             this text

Prints "listening on 127.0.0.1:PORT" once it accepts. SIGTERM or SIGINT: stop accepting,
close every connection, join both threads, print their statistics on stderr, exit 0.
)usage";

using registry = opreg::slot_array;
using event_loop = opreg::reactor<registry>;
using opreg::direction;
using opreg::outcome;

constexpr std::size_t max_line = 4096;
// Answers waiting for a peer that does not read: past this, stop reading its lines.
constexpr std::size_t max_unsent = 64 * 1024;

struct conn {
    conn(int f, std::uint64_t i) : fd{f}, id{i} {}
    int fd;
    std::uint64_t id;       // in accept order, over both threads: the lowest is the oldest
    std::string in;         // a line not yet complete
    std::string out;        // answers not yet written
    bool reading = false;   // a read is armed
    bool writing = false;   // a write is armed (the peer's buffer was full)
    bool unread = false;    // readable, not read to EAGAIN yet
    bool quitting = false;  // close once `out` is written
};

// What STATS reports of one thread.
struct tally {
    std::uint64_t conns = 0;  // live now
    std::uint64_t lines = 0;  // answered since the start
};

class worker {
public:
    worker(int index, std::chrono::milliseconds idle) : index_{index}, idle_{idle}, loop_{reg_} {}

    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    void pair_with(worker& other) noexcept { other_ = &other; }
    [[nodiscard]] event_loop& loop() noexcept { return loop_; }

    // Before run(), on the thread that built it: accept on lfd, keeping the odd connections
    // and handing the even ones to the other worker.
    [[nodiscard]] opreg::result<void> listen(int lfd) {
        lfd_ = lfd;
        acceptor_ = std::make_unique<opreg::acceptor<registry>>(
            loop_, lfd, [this](int fd) { hand_out(fd); },
            [](int err) { std::fprintf(stderr, "line_server: accept: %s\n", std::strerror(err)); });
        return acceptor_->start();
    }

    void run() { loop_.run(); }

    // Reactor thread (posted by main): stop accepting, close every connection, stop.
    void shutdown() {
        if (acceptor_) {
            acceptor_->stop();
            acceptor_.reset();
            (void)loop_.close(lfd_);
        }
        while (!conns_.empty()) close_conn(conns_.begin()->second.get());
        shut_ = true;  // connections still being handed over are closed on arrival
        loop_.stop();
    }

    // After the thread is joined.
    void report() const {
        const opreg::registry_stats s = reg_.stats();
        const auto n = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
        std::fprintf(stderr,
                     "line_server: worker %d: %llu connections, %llu lines; ops armed=%llu "
                     "ready=%llu timed_out=%llu closed=%llu in_flight=%llu; %llu posts run\n",
                     index_, n(served_), n(lines_), n(s.armed), n(s.completed), n(s.timed_out),
                     n(s.closed), n(s.in_flight), n(loop_.stats().posts));
    }

private:
    // Acceptor's callback, on this (the first) worker's thread.
    void hand_out(int fd) {
        const std::uint64_t id = ++next_id_;
        if (id % 2 == 1) return adopt(fd, id);
        worker* to = other_;
        // 24 bytes of captures, inline in a pooled node: no allocation per post.
        if (!to->loop_.post([to, fd, id] { to->adopt(fd, id); })) ::close(fd);  // its queue is full
    }

    void adopt(int fd, std::uint64_t id) {
        if (shut_) {
            ::close(fd);
            return;
        }
        if (const opreg::result<opreg::fd_token> t = loop_.watch(fd); !t) {
            std::fprintf(stderr, "line_server: watch fd %d: %s\n", fd,
                         t.error_code().message().c_str());
            ::close(fd);
            return;
        }
        ++served_;
        conn* c = conns_.emplace(id, std::make_unique<conn>(fd, id)).first->second.get();
        drive(c);
    }

    // Writes what is queued, then reads what is known to be there, then arms what the
    // connection waits for: a write while the peer's buffer is full, else a read (with the
    // idle deadline). Ends with that arm or a close: `c` may be gone once it returns.
    void drive(conn* c) {
        for (;;) {
            if (c->writing) return;  // the armed write comes back here
            while (!c->out.empty()) {
                const ssize_t n = ::write(c->fd, c->out.data(), c->out.size());
                if (n > 0) {
                    c->out.erase(0, static_cast<std::size_t>(n));
                    continue;
                }
                if (n < 0 && errno == EINTR) continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    return arm(c, direction::write);
                return close_conn(c);
            }
            if (c->quitting) return close_conn(c);
            if (c->reading) return;  // an answer from the other thread went out meanwhile
            if (!c->unread) return arm(c, direction::read);
            if (!read_lines(c)) return;
        }
    }

    void arm(conn* c, direction d) {
        bool& armed = d == direction::read ? c->reading : c->writing;
        armed = true;
        // The deadline is the idle timeout for a read, and for a write the time a peer
        // that reads nothing may hold its answers.
        const opreg::result<opreg::op_token> op = loop_.arm_with_deadline(
            c->fd, d, [this, c](const opreg::completion& done) { on_done(c, done); }, idle_);
        if (!op) {  // refused: the callback was destroyed without running, `c` is intact
            armed = false;
            close_conn(c);
        }
    }

    void on_done(conn* c, const opreg::completion& done) {
        if (done.result == outcome::closed) return;  // close_conn() is closing it
        (done.dir == direction::read ? c->reading : c->writing) = false;
        if (done.result == outcome::timed_out && done.dir == direction::read && c->out.empty())
            (void)!::write(c->fd, "BYE idle\n", 9);  // best effort: it is closing anyway
        if (done.result != outcome::ready) return close_conn(c);  // timed out, or an error
        if (done.dir == direction::read) c->unread = true;
        drive(c);
    }

    // Reads to EAGAIN, answering each complete line, unless answers pile up for a peer that
    // does not read them: then it stops early, leaving `unread` set, so that drive() reads
    // on once they are written instead of waiting for an edge that will not come (the
    // readiness was consumed). False when it closed the connection.
    bool read_lines(conn* c) {
        char buf[4096];
        while (!c->quitting && c->out.size() < max_unsent) {
            const ssize_t n = ::read(c->fd, buf, sizeof buf);
            if (n > 0) {
                c->in.append(buf, static_cast<std::size_t>(n));
                answer_lines(c);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            c->unread = false;
            if (n == 0) {
                c->quitting = true;  // end of file: what came is answered, then it closes
                return true;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
            close_conn(c);
            return false;
        }
        c->unread = !c->quitting;
        return true;
    }

    void answer_lines(conn* c) {
        std::size_t from = 0;
        for (std::size_t nl; !c->quitting && (nl = c->in.find('\n', from)) != std::string::npos;
             from = nl + 1) {
            std::string_view line{c->in.data() + from, nl - from};
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            answer(c, line);
        }
        c->in.erase(0, from);
        if (!c->quitting && c->in.size() > max_line) {
            c->out += "ERR line too long\n";
            c->quitting = true;
        }
    }

    void answer(conn* c, std::string_view line) {
        ++lines_;
        if (line == "QUIT") {
            c->out += "BYE\n";
            c->quitting = true;
        } else if (line == "WHO") {
            c->out += "worker " + std::to_string(index_) + " conn " + std::to_string(c->id) + "\n";
        } else if (line == "KICK") {
            worker* self = this;
            worker* other = other_;
            const std::uint64_t asker = c->id;
            if (!other->loop_.post([other, self, asker] { other->kick_oldest(*self, asker); }))
                c->out += "ERR busy\n";
        } else if (line == "STATS") {
            worker* self = this;
            worker* other = other_;
            const std::uint64_t asker = c->id;
            if (!other->loop_.post([other, self, asker] { other->send_tally(*self, asker); }))
                c->out += "ERR busy\n";
        } else {
            std::string up{line};
            for (char& ch : up)
                ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            c->out += up;
            c->out += '\n';
        }
    }

    // On this thread, asked by `from`: close the oldest connection here, tell `from`.
    void kick_oldest(worker& from, std::uint64_t asker) {
        std::uint64_t victim = 0;
        if (!conns_.empty()) {
            conn* v = conns_.begin()->second.get();
            victim = v->id;
            v->out += "BYE kicked\n";
            v->quitting = true;
            drive(v);
        }
        worker* to = &from;
        const int me = index_;
        if (!to->loop_.post([to, asker, me, victim] { to->kick_done(asker, me, victim); }))
            std::fprintf(stderr, "line_server: worker %d: KICK answer lost (queue full)\n", me);
    }
    void kick_done(std::uint64_t asker, int kicker, std::uint64_t victim) {
        deliver(asker, victim != 0
                           ? "KICKED worker " + std::to_string(kicker) + " conn " +
                                 std::to_string(victim) + "\n"
                           : "KICKED none (worker " + std::to_string(kicker) + " has none)\n");
    }

    // On this thread, asked by `from`: send it this thread's tally.
    void send_tally(worker& from, std::uint64_t asker) {
        worker* to = &from;
        const tally t = mine();
        const int me = index_;
        if (!to->loop_.post([to, asker, me, t] { to->tally_done(asker, me, t); }))
            std::fprintf(stderr, "line_server: worker %d: STATS answer lost (queue full)\n", me);
    }
    void tally_done(std::uint64_t asker, int other_index, const tally& theirs) {
        tally by_index[2];
        by_index[index_] = mine();
        by_index[other_index] = theirs;
        std::string s = "STATS";
        for (int i = 0; i < 2; ++i)
            s += " worker" + std::to_string(i) + " conns=" + std::to_string(by_index[i].conns) +
                 " lines=" + std::to_string(by_index[i].lines);
        deliver(asker, s + "\n");
    }

    [[nodiscard]] tally mine() const noexcept { return {conns_.size(), lines_}; }

    // An answer that came from the other thread, for connection `id` if it is still here.
    void deliver(std::uint64_t id, const std::string& text) {
        const auto it = conns_.find(id);
        if (it == conns_.end()) return;  // it has closed meanwhile
        it->second->out += text;
        drive(it->second.get());
    }

    void close_conn(conn* c) {
        const std::uint64_t id = c->id;
        (void)loop_.close(c->fd);  // its armed ops end as closed, their deadlines go, fd closed
        conns_.erase(id);
    }

    const int index_;
    const std::chrono::milliseconds idle_;
    registry reg_;
    event_loop loop_;
    worker* other_ = nullptr;
    std::unique_ptr<opreg::acceptor<registry>> acceptor_;
    int lfd_ = -1;
    std::uint64_t next_id_ = 0;                             // the acceptor's worker only
    std::map<std::uint64_t, std::unique_ptr<conn>> conns_;  // by id: oldest first
    std::uint64_t served_ = 0;
    std::uint64_t lines_ = 0;
    bool shut_ = false;
};

// Runs fn on w's thread, waiting while its queue is full.
template <class F>
void post_surely(worker& w, F fn) {
    while (!w.loop().post(fn)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace

int main(int argc, char** argv) {
    long port = 7001;
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
        example::bad_flag(argv, argv[i]);
    }
    const auto idle = std::chrono::milliseconds(static_cast<long long>(idle_s * 1000));

    // Before any thread starts, so that every thread inherits the mask: only the sigwait
    // below sees the stop signals.
    const sigset_t stop_signals = example::block_stop_signals();
    example::ignore_sigpipe();

    int bound = static_cast<int>(port);
    const int lfd = example::listen_on(bound);
    if (lfd < 0) {
        std::fprintf(stderr, "line_server: listen on 127.0.0.1:%ld: %s\n", port,
                     std::strerror(errno));
        return 1;
    }
    std::unique_ptr<worker> workers[2];
    try {  // a reactor's constructor throws when it cannot open its backend
        for (int i = 0; i < 2; ++i) workers[i] = std::make_unique<worker>(i, idle);
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "line_server: cannot start a reactor: %s\n", e.what());
        return 1;
    }
    workers[0]->pair_with(*workers[1]);
    workers[1]->pair_with(*workers[0]);
    if (const opreg::result<void> r = workers[0]->listen(lfd); !r) {
        std::fprintf(stderr, "line_server: cannot accept: %s\n", r.error_code().message().c_str());
        return 1;
    }

    std::thread threads[2];
    for (int i = 0; i < 2; ++i) threads[i] = std::thread([w = workers[i].get()] { w->run(); });
    example::announce(bound);

    const int sig = example::wait_for_stop_signal(stop_signals);
    std::fprintf(stderr, "line_server: %s: closing\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    // The acceptor's thread first: once it is joined nothing more is handed to the second,
    // and what it handed already is queued ahead of the second's shutdown.
    for (int i = 0; i < 2; ++i) {
        worker* w = workers[i].get();
        post_surely(*w, [w] { w->shutdown(); });
        threads[i].join();
    }
    for (const auto& w : workers) w->report();
    return 0;
}
