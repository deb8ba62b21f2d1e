// SPDX-License-Identifier: Apache-2.0
// The reactor allocates nothing per operation or post once warm (reactor.hpp): an arm ended
// by the kernel's readiness, an arm with a deadline (its timer), a post, and an arm made from
// another thread (its pooled carrier), on the native backend, for the direct strategy and the
// hand-off one. Counted with the replacement operator new (alloc_counter.cpp) around loops
// with no test assertion inside; the other thread's arms are counted too (the counter is
// global).
#include "alloc_counter.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>

#include "../support/sockets.hpp"

using namespace opreg;
using namespace std::chrono_literals;

namespace {

constexpr int rounds = 500;

template <class R>
class ReactorAlloc : public ::testing::Test {};
using strategies = ::testing::Types<slot_array, mpsc_queue>;
TYPED_TEST_SUITE(ReactorAlloc, strategies);

struct tally {
    std::atomic<int> ready{0};
    int posted = 0;
};

// One round on the reactor thread: arm a read with a deadline, write a byte from the peer, run
// until the op ends ready, read the byte back; and post a task and run it. False when either
// did not happen.
template <class R>
bool one_round(reactor<R>& loop, int fd, int peer, tally& t) {
    const int ready = t.ready.load();
    const int posted = t.posted;
    if (!loop.arm_with_deadline(
                 fd, direction::read,
                 [&t](const completion& c) {
                     if (c.result == outcome::ready) t.ready.fetch_add(1);
                 },
                 10s)
             .ok())
        return false;
    if (::write(peer, "x", 1) != 1) return false;
    if (!loop.post([&t] { ++t.posted; })) return false;
    for (int i = 0; i < 1000 && (t.ready.load() == ready || t.posted == posted); ++i)
        loop.run_once(1);
    char c;
    return t.ready.load() == ready + 1 && t.posted == posted + 1 && ::read(fd, &c, 1) == 1;
}

TYPED_TEST(ReactorAlloc, ArmsDeadlinesAndPostsAllocateNothing) {
    TypeParam reg{registry_config{.max_fds = 1024}};
    reactor<TypeParam> loop{reg};
    opreg_test::socket_pair sp;
    ASSERT_TRUE(loop.watch(sp.a).ok());
    tally t;
    for (int i = 0; i < 32; ++i) ASSERT_TRUE(one_round(loop, sp.a, sp.b, t));  // warm up
    const std::size_t before = opreg_test::allocations();
    bool all = true;
    for (int i = 0; i < rounds; ++i) all = one_round(loop, sp.a, sp.b, t) && all;
    const std::size_t allocated = opreg_test::allocations() - before;
    ASSERT_TRUE(all);
    EXPECT_EQ(allocated, 0u) << allocated << " allocations in " << rounds
                             << " arms with a deadline, dispatches and posts";
    EXPECT_EQ(loop.close(sp.take_a()), errc::ok);
}

// Arms made from another thread travel to the reactor thread in pooled carriers (direct
// strategies) or through the registry's own hand-off: neither allocates once warm.
TYPED_TEST(ReactorAlloc, ArmsFromAnotherThreadAllocateNothing) {
    TypeParam reg{registry_config{.max_fds = 1024}};
    reactor<TypeParam> loop{reg};
    opreg_test::socket_pair sp;
    ASSERT_TRUE(loop.watch(sp.a).ok());
    tally t;
    auto round_from_another_thread = [&] {
        const int ready = t.ready.load();
        bool armed = false;
        std::thread armer([&] {
            armed = loop.arm(sp.a, direction::read, [&t](const completion& c) {
                            if (c.result == outcome::ready) t.ready.fetch_add(1);
                        }).ok() &&
                    ::write(sp.b, "x", 1) == 1;
        });
        armer.join();
        for (int i = 0; i < 1000 && t.ready.load() == ready; ++i) loop.run_once(1);
        char c;
        return armed && t.ready.load() == ready + 1 && ::read(sp.a, &c, 1) == 1;
    };
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(round_from_another_thread());  // warm up
    // std::thread itself allocates its state: count that alone, then the rounds.
    std::size_t per_thread = 0;
    {
        const std::size_t b = opreg_test::allocations();
        std::thread([] {}).join();
        per_thread = opreg_test::allocations() - b;
    }
    constexpr int cross_rounds = 100;
    const std::size_t before = opreg_test::allocations();
    bool all = true;
    for (int i = 0; i < cross_rounds; ++i) all = round_from_another_thread() && all;
    const std::size_t allocated = opreg_test::allocations() - before;
    ASSERT_TRUE(all);
    EXPECT_EQ(allocated, per_thread * cross_rounds)
        << "beyond std::thread's own " << per_thread << " per thread";
    EXPECT_EQ(loop.close(sp.take_a()), errc::ok);
}

}  // namespace
