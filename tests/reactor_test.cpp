// SPDX-License-Identifier: Apache-2.0
// The reactor over real fds (socketpairs, loopback TCP), for every backend available here
// and every registry strategy. Test names carry both: Reactor.X<combo<epoll_backend, ...>>.
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

#include "support/backends.hpp"
#include "support/sockets.hpp"
#include "support/strategies.hpp"

using namespace opreg;
using namespace std::chrono_literals;
using opreg_test::record;
using opreg_test::recorder;
using opreg_test::socket_pair;

// Runs `loop` until pred() or ~2 s pass; returns pred().
template <class Loop, class Pred>
bool run_loop_until(Loop& loop, Pred pred) {
    const auto give_up = std::chrono::steady_clock::now() + 2s;
    while (!pred() && std::chrono::steady_clock::now() < give_up) loop.run_once(20);
    return pred();
}

template <class C>
class Reactor : public ::testing::Test {
protected:
    using R = typename C::registry_type;

    void SetUp() override {
        std::string why;
        loop = opreg_test::open_reactor(reg, reactor_options{.which = C::which}, why);
        if (!loop) GTEST_SKIP() << why;
    }

    // Runs the loop until pred() or ~2 s pass; returns pred().
    template <class Pred>
    bool run_until(Pred pred) {
        return run_loop_until(*loop, pred);
    }

    R reg{registry_config{.max_fds = 4096}};
    std::unique_ptr<reactor<R>> loop;
};

using opreg_test::combo;
using opreg_test::reactor_combos;
TYPED_TEST_SUITE(Reactor, reactor_combos);

// any_registry has no default strategy: give it one (slot_array) for the reactor suite.
template <class Backend>
class Reactor<combo<Backend, any_registry>> : public ::testing::Test {
protected:
    void SetUp() override {
        loop = std::make_unique<reactor<any_registry>>(reg,
                                                       reactor_options{.which = Backend::value});
    }
    template <class Pred>
    bool run_until(Pred pred) {
        return run_loop_until(*loop, pred);
    }
    any_registry reg = make_registry("slot_array", registry_config{.max_fds = 4096});
    std::unique_ptr<reactor<any_registry>> loop;
};

TYPED_TEST(Reactor, UsesTheBackendItWasAskedFor) {
    EXPECT_EQ(this->loop->active_backend(), TypeParam::which)
        << "asked for " << to_string(TypeParam::which) << ", runs on "
        << to_string(this->loop->active_backend()) << " (" << this->loop->note() << ")";
}

TYPED_TEST(Reactor, ReadinessIsDeliveredOnce) {
    socket_pair p;
    ASSERT_TRUE(this->loop->watch(p.a).ok());
    record rec;
    ASSERT_TRUE(this->loop->arm(p.a, direction::read, recorder(rec)).ok());
    this->loop->run_once(0);
    EXPECT_EQ(rec.calls, 0) << "nothing was written yet";
    ASSERT_EQ(::write(p.b, "x", 1), 1);
    ASSERT_TRUE(this->run_until([&] { return rec.calls > 0; }));
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::ready);
    EXPECT_EQ(rec.last.fd, p.a);
    this->loop->run_once(20);
    EXPECT_EQ(rec.calls, 1);
    char c;
    EXPECT_EQ(::read(p.a, &c, 1), 1);
}

TYPED_TEST(Reactor, FreshSocketIsWritable) {
    socket_pair p;
    ASSERT_TRUE(this->loop->watch(p.a).ok());
    record rec;
    ASSERT_TRUE(this->loop->arm(p.a, direction::write, recorder(rec)).ok());
    ASSERT_TRUE(this->run_until([&] { return rec.calls > 0; }));
    EXPECT_EQ(rec.last.result, outcome::ready);
    EXPECT_EQ(rec.last.dir, direction::write);
}

// Edge-triggered: the edge fires before anything is armed; the registry keeps it.
TYPED_TEST(Reactor, AnEdgeBeforeTheArmIsNotLost) {
    socket_pair p;
    ASSERT_TRUE(this->loop->watch(p.a).ok());
    ASSERT_EQ(::write(p.b, "x", 1), 1);
    for (int i = 0; i < 3; ++i) this->loop->run_once(10);  // the edge comes and goes
    record rec;
    ASSERT_TRUE(this->loop->arm(p.a, direction::read, recorder(rec)).ok());
    ASSERT_TRUE(this->run_until([&] { return rec.calls > 0; }));
    EXPECT_EQ(rec.last.result, outcome::ready);
    EXPECT_TRUE(rec.last.latched);
}

// Two fds ready in one batch; whichever callback runs first closes the other fd and puts
// a new socket on its number. The other fd's event, still in the batch, must not reach
// the new socket's op.
TYPED_TEST(Reactor, FdReuseInsideOneBatchSkipsTheOldEvent) {
    auto first = std::make_unique<socket_pair>();
    auto second = std::make_unique<socket_pair>();
    ASSERT_TRUE(this->loop->watch(first->a).ok());
    ASSERT_TRUE(this->loop->watch(second->a).ok());
    const int fds[2] = {first->take_a(), second->take_a()};

    auto& loop = *this->loop;
    record ends[2], reused;
    std::unique_ptr<socket_pair> replacement;
    bool swapped = false;
    const auto stale_before = this->reg.stats().stale_dropped;
    for (int i = 0; i < 2; ++i) {
        const int mine = fds[i], other = fds[1 - i];
        record* me = &ends[i];
        ASSERT_TRUE(loop.arm(mine, direction::read,
                             [&, me, other](const completion& c) {
                                 me->calls++;
                                 me->last = c;
                                 if (swapped || c.result != outcome::ready) return;
                                 swapped = true;
                                 ASSERT_EQ(loop.close(other), errc::ok);
                                 replacement = std::make_unique<socket_pair>();
                                 // Put the new socket on the old number, as accept() would
                                 // (socketpair usually picks it by itself: lowest free fd).
                                 if (replacement->a != other) {
                                     ASSERT_EQ(::dup2(replacement->a, other), other);
                                     ::close(replacement->a);
                                     replacement->a = other;
                                 }
                                 ASSERT_TRUE(loop.watch(other).ok()) << std::strerror(errno);
                                 ASSERT_TRUE(
                                     loop.arm(other, direction::read, recorder(reused)).ok());
                             })
                        .ok());
    }
    this->loop->run_once(0);  // apply hand-offs, if any, before the data arrives
    ASSERT_EQ(::write(first->b, "x", 1), 1);
    ASSERT_EQ(::write(second->b, "y", 1), 1);
    std::this_thread::sleep_for(5ms);  // both readable before the one wait
    this->loop->run_once(100);
    this->loop->run_once(0);

    ASSERT_TRUE(swapped);
    EXPECT_EQ(ends[0].calls + ends[1].calls, 2);
    const outcome a = ends[0].last.result, b = ends[1].last.result;
    EXPECT_TRUE((a == outcome::ready && b == outcome::closed) ||
                (a == outcome::closed && b == outcome::ready));
    EXPECT_EQ(reused.calls, 0) << "the old fd's event reached the op on the reused number";
    EXPECT_GE(this->reg.stats().stale_dropped, stale_before + 1);
    // The new socket works.
    ASSERT_EQ(::write(replacement->b, "z", 1), 1);
    ASSERT_TRUE(this->run_until([&] { return reused.calls > 0; }));
    EXPECT_EQ(reused.last.result, outcome::ready);
    for (const int fd : fds)
        if (fd != replacement->a) this->loop->close(fd);
}

TYPED_TEST(Reactor, PostsFromManyThreadsAllRunOnTheReactorThread) {
    constexpr int threads = 4, per_thread = 2000;
    int ran = 0;  // reactor thread only
    std::atomic<int> off_thread{0};
    const auto me = std::this_thread::get_id();
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t) {
        posters.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i) {
                while (!this->loop->post([&ran, &off_thread, me] {
                    ++ran;
                    if (std::this_thread::get_id() != me) off_thread.fetch_add(1);
                }))
                    std::this_thread::yield();  // pool full: the reactor is behind
            }
        });
    }
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (ran < threads * per_thread && std::chrono::steady_clock::now() < give_up)
        this->loop->run_once(50);
    for (auto& t : posters) t.join();
    this->loop->run_once(0);
    EXPECT_EQ(ran, threads * per_thread);
    EXPECT_EQ(off_thread.load(), 0);
    const reactor_stats s = this->loop->stats();
    EXPECT_EQ(s.posts, std::uint64_t(threads * per_thread));
    EXPECT_GE(s.wakeups, 1u);
}

// Wake-ups coalesce: posts from another thread between two loop turns signal the backend
// once, and the turn that takes that signal re-opens it for the next batch.
TYPED_TEST(Reactor, PostsBetweenTwoTurnsWakeTheLoopOnce) {
    constexpr int batch = 100;
    int ran = 0;
    for (int round = 1; round <= 3; ++round) {
        std::thread poster([&] {
            for (int i = 0; i < batch; ++i)
                if (!this->loop->post([&ran] { ++ran; })) ADD_FAILURE() << "post refused";
        });
        poster.join();
        EXPECT_EQ(this->loop->stats().wakeups, std::uint64_t(round)) << "round " << round;
        const auto give_up = std::chrono::steady_clock::now() + 5s;
        while (ran < batch * round && std::chrono::steady_clock::now() < give_up)
            this->loop->run_once(50);
        ASSERT_EQ(ran, batch * round);
        // The wake-up may be harvested a turn after the posts ran: wait for it, bounded.
        for (int turn = 0; turn < 5; ++turn) this->loop->run_once(0);
    }
    EXPECT_EQ(this->loop->stats().posts, std::uint64_t(3 * batch));
}

TYPED_TEST(Reactor, TimersFireInDeadlineOrderAndCancelledOnesNever) {
    std::vector<int> order;
    this->loop->after(30ms, [&order] { order.push_back(3); });
    this->loop->after(10ms, [&order] { order.push_back(1); });
    const auto doomed = this->loop->after(20ms, [&order] { order.push_back(2); });
    EXPECT_TRUE(this->loop->cancel_timer(doomed));
    EXPECT_FALSE(this->loop->cancel_timer(doomed));
    ASSERT_TRUE(this->run_until([&] { return order.size() >= 2; }));
    this->loop->run_once(40);
    EXPECT_EQ(order, (std::vector<int>{1, 3}));
    EXPECT_EQ(this->loop->stats().timers_fired, 2u);
}

TYPED_TEST(Reactor, AnOpPastItsDeadlineEndsTimedOut) {
    socket_pair p;
    ASSERT_TRUE(this->loop->watch(p.a).ok());
    record rec;
    auto t = this->loop->arm(p.a, direction::read, recorder(rec));
    ASSERT_TRUE(t.ok());
    this->loop->expire_after(t.value(), 10ms);
    ASSERT_TRUE(this->run_until([&] { return rec.calls > 0; }));
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::timed_out);
}

TYPED_TEST(Reactor, StopFromAnotherThreadEndsRun) {
    auto done = std::async(std::launch::async, [this] { this->loop->run(); });
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(done.wait_for(0ms), std::future_status::timeout) << "run() returned on its own";
    this->loop->stop();
    EXPECT_EQ(done.wait_for(2s), std::future_status::ready);
}

TYPED_TEST(Reactor, PeerResetEndsTheOpWithError) {
    int port = 0;
    const int lfd = opreg_test::listen_loopback(port);
    ASSERT_GE(lfd, 0);
    const int client = opreg_test::connect_loopback(port);
    ASSERT_GE(client, 0);
    int server = -1;
    for (int i = 0; i < 200 && server < 0; ++i) {
        server = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (server < 0) std::this_thread::sleep_for(1ms);
    }
    ASSERT_GE(server, 0);
    ASSERT_TRUE(this->loop->watch(server).ok());
    this->loop->run_once(0);  // the initial writable report
    record rec;
    ASSERT_TRUE(this->loop->arm(server, direction::read, recorder(rec)).ok());
    this->loop->run_once(0);
    const linger hard{1, 0};  // close with RST
    ASSERT_EQ(::setsockopt(client, SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
    ::close(client);
    ASSERT_TRUE(this->run_until([&] { return rec.calls > 0; }));
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::error);
    EXPECT_EQ(this->loop->close(server), errc::ok);
    ::close(lfd);
}

TYPED_TEST(Reactor, OrderlyHangUpIsReadable) {
    socket_pair p;
    ASSERT_TRUE(this->loop->watch(p.a).ok());
    record rec;
    ASSERT_TRUE(this->loop->arm(p.a, direction::read, recorder(rec)).ok());
    this->loop->run_once(0);
    ::close(p.b);
    p.b = -1;
    ASSERT_TRUE(this->run_until([&] { return rec.calls > 0; }));
    EXPECT_EQ(rec.last.result, outcome::ready);
    char c;
    EXPECT_EQ(::read(p.a, &c, 1), 0);
}

TYPED_TEST(Reactor, OrderlyHangUpSaysHangup) {
    socket_pair p;
    ASSERT_TRUE(this->loop->watch(p.a).ok());
    record rec;
    ASSERT_TRUE(this->loop->arm(p.a, direction::read, recorder(rec)).ok());
    this->loop->run_once(0);
    ASSERT_EQ(::shutdown(p.b, SHUT_WR), 0);
    ASSERT_TRUE(this->run_until([&] { return rec.calls > 0; }));
    EXPECT_EQ(rec.last.result, outcome::ready);
    EXPECT_TRUE(rec.last.hangup);
    char c;
    EXPECT_EQ(::read(p.a, &c, 1), 0);
}

// Watches p.a and arms a read on it, then queues bytes and the FIN behind them at p.b,
// before the loop looks again.
template <class Loop>
void arm_then_queue_bytes_and_fin(Loop& loop, socket_pair& p, record& rec) {
    ASSERT_TRUE(loop.watch(p.a).ok());
    loop.run_once(0);
    ASSERT_TRUE(loop.arm(p.a, direction::read, recorder(rec)).ok());
    ASSERT_EQ(::write(p.b, "req", 3), 3);
    ASSERT_EQ(::shutdown(p.b, SHUT_WR), 0);
}

// Bytes and the FIN queued before the loop looks, on every backend: the completion that
// reports the bytes lets a reader that reads on to EAGAIN find the FIN behind them.
TYPED_TEST(Reactor, ReadersThatReadToEagainSeeTheFin) {
    socket_pair p;
    record rec;
    ASSERT_NO_FATAL_FAILURE(arm_then_queue_bytes_and_fin(*this->loop, p, rec));
    ASSERT_TRUE(this->run_until([&] { return rec.calls == 1; }));
    ASSERT_EQ(rec.last.result, outcome::ready);
    char buf[8];
    EXPECT_EQ(::read(p.a, buf, sizeof buf), 3);
    EXPECT_EQ(::read(p.a, buf, sizeof buf), 0) << "the FIN was not behind the bytes";
}

// Bytes and the FIN queued before the loop looks: a reader that stops at its short read
// must learn of the FIN from a completion, since no edge comes after it. Every completion
// is either a hang-up, or is followed by one that is (or by a latched ready, which says
// nothing and so obliges a read to EAGAIN). With epoll it is the first.
TYPED_TEST(Reactor, BytesThenFinInOneEdgeSayHangup) {
    if (!this->loop->hangup_reported())
        GTEST_SKIP() << "this backend does not say hang-up (libkqueue on Linux): readers read "
                        "on to EAGAIN there, which ReadersThatReadToEagainSeeTheFin checks";
    socket_pair p;
    record rec;
    ASSERT_NO_FATAL_FAILURE(arm_then_queue_bytes_and_fin(*this->loop, p, rec));
    bool told = false;
    for (int arms = 1; arms <= 3 && !told; ++arms) {
        ASSERT_TRUE(this->run_until([&] { return rec.calls == arms; })) << "arm " << arms;
        ASSERT_EQ(rec.last.result, outcome::ready);
        told = rec.last.hangup || rec.last.latched;
        if (arms == 1 && TypeParam::which == backend::epoll) {
            EXPECT_TRUE(rec.last.hangup);
        }
        if (!told) {
            ASSERT_TRUE(this->loop->arm(p.a, direction::read, recorder(rec)).ok());
        }
    }
    EXPECT_TRUE(told) << "the FIN was queued and no completion said so";
    char buf[8];
    EXPECT_EQ(::read(p.a, buf, sizeof buf), 3);
    EXPECT_EQ(::read(p.a, buf, sizeof buf), 0);
}

TYPED_TEST(Reactor, CloseEndsPendingOpsAsClosed) {
    socket_pair p;
    ASSERT_TRUE(this->loop->watch(p.a).ok());
    record rec;
    ASSERT_TRUE(this->loop->arm(p.a, direction::read, recorder(rec)).ok());
    this->loop->run_once(0);
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
    ASSERT_TRUE(this->run_until([&] { return rec.calls > 0; }));
    EXPECT_EQ(rec.last.result, outcome::closed);
}

// ---- embedding: another loop waits on native_handle() for next_timeout_ms() -------------------

// One turn of a foreign loop: poll(2) on the reactor's handle for as long as it says, then
// run_once(0). Returns what poll returned.
template <class Loop>
int foreign_turn(Loop& loop, int cap_ms = 2000) {
    int wait_ms = loop.next_timeout_ms();
    if (wait_ms < 0 || wait_ms > cap_ms) wait_ms = cap_ms;
    pollfd p{loop.native_handle(), POLLIN, 0};
    const int ready = ::poll(&p, 1, wait_ms);
    loop.run_once(0);
    return ready;
}

// The backends with no handle to wait on (kqueue through libkqueue) say so with -1.
#define OPREG_SKIP_WITHOUT_HANDLE(loop)                                                    \
    if ((loop).native_handle() < 0)                                                        \
    GTEST_SKIP() << to_string((loop).active_backend())                                     \
                 << " has no handle another loop can wait on here (native_handle() == -1)"

TYPED_TEST(Reactor, EmbeddedReadinessMakesTheHandleReadable) {
    auto& loop = *this->loop;
    OPREG_SKIP_WITHOUT_HANDLE(loop);
    socket_pair p;
    ASSERT_TRUE(loop.watch(p.a).ok());
    record rec;
    ASSERT_TRUE(loop.arm(p.a, direction::read, recorder(rec)).ok());
    loop.run_once(0);
    EXPECT_EQ(loop.next_timeout_ms(), -1) << "nothing scheduled: wait for the handle";
    pollfd idle{loop.native_handle(), POLLIN, 0};
    EXPECT_EQ(::poll(&idle, 1, 30), 0) << "no event, no readable handle";
    ASSERT_EQ(::write(p.b, "x", 1), 1);
    EXPECT_EQ(foreign_turn(loop), 1);
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::ready);
}

TYPED_TEST(Reactor, EmbeddedTimersSetTheTimeout) {
    auto& loop = *this->loop;  // deadlines alone: also where there is no handle
    bool fired = false;
    loop.after(30ms, [&fired] { fired = true; });
    const int ms = loop.next_timeout_ms();
    EXPECT_GT(ms, 0);
    EXPECT_LE(ms, 30);
    const auto start = std::chrono::steady_clock::now();
    for (int turn = 0; turn < 10 && !fired; ++turn) foreign_turn(loop);
    EXPECT_TRUE(fired);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 25ms);
    EXPECT_EQ(loop.next_timeout_ms(), -1);
}

TYPED_TEST(Reactor, EmbeddedPostFromAnotherThreadWakesTheHandle) {
    auto& loop = *this->loop;
    OPREG_SKIP_WITHOUT_HANDLE(loop);
    loop.run_once(0);  // this thread is the reactor thread
    std::atomic<bool> ran{false};
    std::thread other([&] { ASSERT_TRUE(loop.post([&ran] { ran.store(true); })); });
    other.join();
    EXPECT_EQ(foreign_turn(loop), 1) << "the wake-up makes the handle readable";
    EXPECT_TRUE(ran.load());
}

// ---- arm_with_deadline --------------------------------------------------------------------------

TYPED_TEST(Reactor, ArmWithDeadlineEndsAsTimedOutWhenNothingComes) {
    socket_pair p;
    ASSERT_TRUE(this->loop->watch(p.a).ok());
    record rec;
    ASSERT_TRUE(this->loop->arm_with_deadline(p.a, direction::read, recorder(rec), 20ms).ok());
    ASSERT_TRUE(this->run_until([&] { return rec.calls > 0; }));
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::timed_out);
}

TYPED_TEST(Reactor, ArmWithDeadlineOnLatchedReadinessEndsOnceAsReady) {
    socket_pair p;
    ASSERT_TRUE(this->loop->watch(p.a).ok());
    ASSERT_EQ(::write(p.b, "x", 1), 1);
    record first;
    ASSERT_TRUE(this->loop->arm(p.a, direction::read, recorder(first)).ok());
    ASSERT_TRUE(this->run_until([&] { return first.calls > 0; }));
    // The edge is consumed; more bytes come before the next arm: it may end inside arm.
    ASSERT_EQ(::write(p.b, "y", 1), 1);
    this->loop->run_once(0);
    record rec;
    ASSERT_TRUE(this->loop->arm_with_deadline(p.a, direction::read, recorder(rec), 20ms).ok());
    ASSERT_TRUE(this->run_until([&] { return rec.calls > 0; }));
    // Past the deadline: the timer finds the op gone and ends nothing.
    const auto until = std::chrono::steady_clock::now() + 60ms;
    while (std::chrono::steady_clock::now() < until) this->loop->run_once(10);
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::ready);
}
