// SPDX-License-Identifier: Apache-2.0
// Completion mode inside another event loop: native_handle() and next_timeout_ms() are all
// a host loop needs, for the ordinary io_uring ring and the single-issuer one, in a plain
// epoll loop and in libuv. A peer thread runs an echo over a socketpair against a reactor
// driven only by the host; the host counts its wake-ups and the waits cut short by EINTR.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>

#if OPREG_TEST_HAVE_LIBUV
#include <uv.h>
#endif

#include "support/sockets.hpp"

using namespace opreg;
using namespace std::chrono_literals;

namespace {

constexpr int rounds = 100;

// The reactor's side: recv, send back what came, recv again.
struct echo_side {
    reactor<slot_array>& loop;
    int fd;
    std::string out;
    int echoed = 0;
    bool failed = false;

    void recv() {
        const result<op_token> r = loop.recv(fd, [this](const io_completion& x) {
            if (x.op.result != outcome::ready || x.res <= 0) return;
            out.assign(x.data);
            const result<op_token> s = loop.send(fd, out, [this](const io_completion& y) {
                if (y.op.result != outcome::ready || y.res != static_cast<int>(out.size())) {
                    failed = true;
                    return;
                }
                ++echoed;
                recv();
            });
            if (!s) failed = true;
        });
        if (!r) failed = true;
    }
};

// The peer: `rounds` round trips on a blocking socket (5 s timeouts); counts the right ones.
struct peer {
    int fd;
    std::atomic<int> good{0};
    std::atomic<bool> done{false};
    std::thread t;

    explicit peer(int f) : fd{f} {
        const timeval tv{.tv_sec = 5, .tv_usec = 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        t = std::thread([this] { run(); });
    }
    ~peer() { join(); }
    void join() {
        if (t.joinable()) t.join();
    }
    void run() {
        for (int i = 0; i < rounds; ++i) {
            const std::string msg = "ping " + std::to_string(i);
            if (::write(fd, msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) break;
            std::string got;
            char buf[64];
            while (got.size() < msg.size()) {
                const ssize_t n = ::read(fd, buf, sizeof buf);
                if (n <= 0) break;
                got.append(buf, static_cast<std::size_t>(n));
            }
            if (got != msg) break;
            good.fetch_add(1);
        }
        done.store(true);
    }
};

struct host_counts {
    int wakes = 0;  // the host's waits that returned the handle readable
    int eintr = 0;  // the host's waits cut short by EINTR
    int timeouts = 0;
};

class EmbeddedIo : public ::testing::TestWithParam<bool> {
public:
    void SetUp() override {
        std::string why;
        result<std::unique_ptr<detail::poller>> p = detail::open_poller(
            backend::io_uring, false, detail::poller_config{.io_uring_single_issuer = GetParam()},
            why);
        if (!p || !p.value()->supports_io())
            GTEST_SKIP() << "no io_uring completion mode here: " << why;
        loop = std::make_unique<reactor<slot_array>>(reg, std::move(p.value()));
    }

    // What every host must see: every echo right and about a wake-up per completion at most
    // (a recv's and a send's per echo, fewer when they come together; the bound leaves room
    // for the ring's own). EINTR: the ordinary ring
    // runs its completions as task work, which interrupts a thread asleep in another wait
    // (up to about one per echo measured here): a host must take EINTR as a spurious
    // wake-up, as every event loop does. The single-issuer ring runs them only when the
    // reactor asks, so its host's waits are almost never cut short: embed that one.
    void expect_good(const peer& pr, const echo_side& side, const host_counts& c) {
        EXPECT_EQ(pr.good.load(), rounds);
        EXPECT_FALSE(side.failed);
        ::testing::Test::RecordProperty("single_issuer", loop->single_issuer() ? "yes" : "no");
        ::testing::Test::RecordProperty("wakes", c.wakes);
        ::testing::Test::RecordProperty("eintr", c.eintr);
        std::printf("[ host     ] %s ring: %d echoes, %.2f wake-ups and %.2f EINTR per echo\n",
                    loop->single_issuer() ? "single-issuer" : "ordinary", rounds,
                    static_cast<double>(c.wakes) / rounds, static_cast<double>(c.eintr) / rounds);
        EXPECT_LE(c.wakes, 5 * rounds / 2);
        if (loop->single_issuer()) {
            EXPECT_LE(c.eintr, rounds / 4);
            // The deferred work a wait left behind is run before the next: else the eventfd
            // stays silent until the next completion, a second wake-up per echo, late.
            EXPECT_LE(c.wakes, rounds * 3 / 2);
        }
    }

    slot_array reg{registry_config{.max_fds = 1024}};
    std::unique_ptr<reactor<slot_array>> loop;
};

TEST_P(EmbeddedIo, APlainEpollLoopDrivesTheEcho) {
    const int handle = loop->native_handle();
    ASSERT_GE(handle, 0) << "no handle to wait on";
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(ep, 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, handle, &ev), 0) << std::strerror(errno);
    opreg_test::socket_pair p;
    echo_side side{*loop, p.a, {}};
    side.recv();
    host_counts c;
    {
        peer pr{p.b};
        const auto give_up = std::chrono::steady_clock::now() + 20s;
        while (!pr.done.load() && std::chrono::steady_clock::now() < give_up) {
            int wait_ms = loop->next_timeout_ms();
            if (wait_ms < 0 || wait_ms > 100) wait_ms = 100;
            epoll_event got{};
            const int n = ::epoll_wait(ep, &got, 1, wait_ms);
            if (n < 0 && errno == EINTR) ++c.eintr;
            if (n > 0) ++c.wakes;
            if (n == 0) ++c.timeouts;
            loop->run_once(0);
        }
        pr.join();
        expect_good(pr, side, c);
    }
    ::close(ep);
    EXPECT_EQ(loop->close(p.take_a()), errc::ok);
}

#if OPREG_TEST_HAVE_LIBUV
// libuv: a uv_poll on the handle and a uv_timer for next_timeout_ms(), the pattern its own
// docs give for embedding a loop (uv_backend_fd / uv_backend_timeout turned around).
struct uv_host {
    reactor<slot_array>* loop;
    peer* pr;
    host_counts* c;
    uv_timer_t timer;
    uv_timer_t watchdog;
    uv_poll_t poll;
    std::chrono::steady_clock::time_point give_up;

    void drive() {
        loop->run_once(0);
        for (int i = 0; i < 64 && loop->next_timeout_ms() == 0; ++i) loop->run_once(0);
        const int ms = loop->next_timeout_ms();
        if (ms > 0) uv_timer_start(&timer, on_timer, static_cast<std::uint64_t>(ms), 0);
    }
    static void on_readable(uv_poll_t* h, int status, int /*events*/) {
        auto* self = static_cast<uv_host*>(h->data);
        if (status == 0) ++self->c->wakes;
        self->drive();
    }
    static void on_timer(uv_timer_t* h) { static_cast<uv_host*>(h->data)->drive(); }
    static void on_watchdog(uv_timer_t* h) {
        auto* self = static_cast<uv_host*>(h->data);
        if (self->pr->done.load() || std::chrono::steady_clock::now() > self->give_up)
            uv_stop(h->loop);
    }
};

TEST_P(EmbeddedIo, LibuvDrivesTheEcho) {
    const int handle = loop->native_handle();
    ASSERT_GE(handle, 0) << "no handle to wait on";
    uv_loop_t uv;
    ASSERT_EQ(uv_loop_init(&uv), 0);
    opreg_test::socket_pair p;
    echo_side side{*loop, p.a, {}};
    side.recv();
    host_counts c;
    {
        peer pr{p.b};
        uv_host h{loop.get(), &pr, &c, {}, {}, {}, std::chrono::steady_clock::now() + 20s};
        uv_timer_init(&uv, &h.timer);
        uv_timer_init(&uv, &h.watchdog);
        ASSERT_EQ(uv_poll_init(&uv, &h.poll, handle), 0);
        h.timer.data = h.watchdog.data = h.poll.data = &h;
        ASSERT_EQ(uv_poll_start(&h.poll, UV_READABLE, uv_host::on_readable), 0);
        uv_timer_start(&h.watchdog, uv_host::on_watchdog, 10, 10);
        h.drive();  // what arming queued goes to the kernel before the first wait
        uv_run(&uv, UV_RUN_DEFAULT);
        uv_close(reinterpret_cast<uv_handle_t*>(&h.poll), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&h.timer), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&h.watchdog), nullptr);
        uv_run(&uv, UV_RUN_DEFAULT);
        pr.join();
        expect_good(pr, side, c);
    }
    EXPECT_EQ(uv_loop_close(&uv), 0);
    EXPECT_EQ(loop->close(p.take_a()), errc::ok);
}
#else
TEST_P(EmbeddedIo, LibuvDrivesTheEcho) {
    GTEST_SKIP() << "libuv was not found when this build was configured (Debian: apt-get "
                    "install libuv1-dev, then reconfigure)";
}
#endif

INSTANTIATE_TEST_SUITE_P(Rings, EmbeddedIo, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                             return std::string(i.param ? "single_issuer" : "ordinary");
                         });

}  // namespace
