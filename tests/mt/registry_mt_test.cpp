// SPDX-License-Identifier: Apache-2.0
// Multi-threaded contract checks, run for every strategy (and under ThreadSanitizer by
// `make test`). Every op is numbered and its callback counts into its own record, so the
// oracle is exact: each accepted op ended exactly once, refused ops never ran.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

#include "support/strategies.hpp"

using namespace opreg;

namespace {

// Bounded work, sized so the whole file runs in seconds under TSan on two cores.
constexpr int arming_threads = 3;
constexpr int fds_per_thread = 32;
constexpr int ops_per_thread = 6000;

struct op_record {
    std::atomic<int> calls{0};
    std::atomic<int> result{-1};
};

// The callback of op `id`: counts into its record. Captures two words.
callback count_into(op_record* records, std::size_t id) {
    return [records, id](const completion& c) {
        records[id].result.store(static_cast<int>(c.result), std::memory_order_relaxed);
        records[id].calls.fetch_add(1, std::memory_order_relaxed);
    };
}

}  // namespace

template <class R>
class RegistryMT : public ::testing::Test {};
TYPED_TEST_SUITE(RegistryMT, opreg_test::direct_strategies);

// The reactor shape: several threads arm and cancel on their own fds while one owner
// thread dispatches readiness for every fd and applies the hand-off. At the end the owner closes
// every fd, which must end whatever is still pending.
TYPED_TEST(RegistryMT, ManyArmersOneDispatcherEveryOpEndsExactlyOnce) {
    constexpr int total_fds = arming_threads * fds_per_thread;
    TypeParam reg{registry_config{.max_fds = total_fds, .max_pending = 0}};
    const std::size_t total_ops = std::size_t{arming_threads} * ops_per_thread;
    auto records = std::make_unique<op_record[]>(total_ops);
    auto accepted = std::make_unique<std::atomic<bool>[]>(total_ops);
    std::atomic<int> armers_done{0};

    std::vector<std::thread> armers;
    for (int t = 0; t < arming_threads; ++t) {
        armers.emplace_back([&, t] {
            std::minstd_rand rng(1234 + t);
            std::vector<op_token> mine;
            for (int i = 0; i < ops_per_thread; ++i) {
                const std::size_t id = std::size_t(t) * ops_per_thread + i;
                const int fd = t * fds_per_thread + int(rng() % fds_per_thread);
                const direction d = rng() % 2 ? direction::read : direction::write;
                auto r = reg.arm(fd, d, count_into(records.get(), id));
                accepted[id].store(r.ok(), std::memory_order_relaxed);
                if (r.ok()) mine.push_back(r.value());
                if (!mine.empty() && rng() % 3 == 0) {
                    const op_token victim = mine[rng() % mine.size()];
                    (void)reg.cancel(victim, rng() % 2 ? outcome::cancelled : outcome::timed_out);
                }
                if (rng() % 64 == 0) (void)reg.close(fd);
            }
            armers_done.fetch_add(1, std::memory_order_release);
        });
    }

    // The owner: dispatch until the armers are done, then close everything.
    std::minstd_rand rng(99);
    while (armers_done.load(std::memory_order_acquire) < arming_threads) {
        const int fd = int(rng() % total_fds);
        const readiness ev = rng() % 16 == 0
                                 ? readiness::error
                                 : (rng() % 2 ? readiness::readable : readiness::writable);
        reg.dispatch(reg.token_of(fd).value(), ev);
    }
    for (auto& th : armers) th.join();
    reg.apply_handed_off();
    for (int fd = 0; fd < total_fds; ++fd) ASSERT_EQ(reg.close(fd), errc::ok);
    while (reg.apply_handed_off() != 0) {}

    std::size_t n_accepted = 0, lost = 0, duplicated = 0, ran_refused = 0;
    for (std::size_t id = 0; id < total_ops; ++id) {
        const int calls = records[id].calls.load();
        if (accepted[id].load()) {
            ++n_accepted;
            lost += calls == 0;
            duplicated += calls > 1;
        } else {
            ran_refused += calls != 0;
        }
    }
    EXPECT_EQ(lost, 0u);
    EXPECT_EQ(duplicated, 0u);
    EXPECT_EQ(ran_refused, 0u);
    const registry_stats s = reg.stats();
    EXPECT_EQ(s.armed, n_accepted);
    EXPECT_EQ(s.ended(), n_accepted);
    EXPECT_EQ(s.in_flight, 0u);
    EXPECT_EQ(s.failures, total_ops - n_accepted);
}

// One op per round, each raced by two ends: every op ended once, as ready or cancelled, and
// the registry's counts say the same.
template <class R>
void expect_one_winner_each_round(const R& reg, const op_record* records, int rounds) {
    int ready = 0, cancelled = 0;
    for (int r = 0; r < rounds; ++r) {
        ASSERT_EQ(records[r].calls.load(), 1) << "round " << r;
        const auto o = static_cast<outcome>(records[r].result.load());
        ready += o == outcome::ready;
        cancelled += o == outcome::cancelled;
    }
    EXPECT_EQ(ready + cancelled, rounds);
    const registry_stats s = reg.stats();
    EXPECT_EQ(s.armed, std::uint64_t(rounds));
    EXPECT_EQ(s.completed, std::uint64_t(ready));
    EXPECT_EQ(s.cancelled, std::uint64_t(cancelled));
    EXPECT_EQ(s.ended(), std::uint64_t(rounds));
    EXPECT_EQ(s.in_flight, 0u);
}

// A cancel from another thread racing the owner's dispatch of the same op: exactly one wins.
TYPED_TEST(RegistryMT, CancelRacingDispatchHasExactlyOneWinner) {
    constexpr int rounds = 3000;
    TypeParam reg{registry_config{.max_fds = 4, .max_pending = 0}};
    auto records = std::make_unique<op_record[]>(rounds);
    std::atomic<std::uint64_t> published{0};  // op token + 1 of the round's op; 0: none
    std::atomic<int> round_done{-1};

    std::thread canceller([&] {
        for (int r = 0; r < rounds; ++r) {
            std::uint64_t t;
            while ((t = published.load(std::memory_order_acquire)) == 0) std::this_thread::yield();
            (void)reg.cancel(op_token::from_u64(t - 1));
            published.store(0, std::memory_order_relaxed);
            round_done.store(r, std::memory_order_release);
        }
    });

    for (int r = 0; r < rounds; ++r) {
        auto t = reg.arm(1, direction::read, count_into(records.get(), r));
        ASSERT_TRUE(t.ok());
        reg.apply_handed_off();
        const fd_token ft = reg.token_of(1).value();
        published.store(t.value().to_u64() + 1, std::memory_order_release);
        reg.dispatch(ft, readiness::readable);  // races the cancel
        while (round_done.load(std::memory_order_acquire) != r) std::this_thread::yield();
        // The op must be over before the next round arms the same slot: a losing cancel may
        // still be queued (hand-off strategies), so let the owner apply it.
        while (records[r].calls.load() == 0) reg.apply_handed_off();
    }
    canceller.join();
    reg.apply_handed_off();
    expect_one_winner_each_round(reg, records.get(), rounds);
}

// A completion-mode backend ends an op as ready through cancel(t, outcome::ready) while
// another thread cancels the same op: exactly one wins, and the counts add up.
TYPED_TEST(RegistryMT, ReadyCancelRacingCancelHasExactlyOneWinner) {
    constexpr int rounds = 2000;
    TypeParam reg{registry_config{.max_fds = 4, .max_pending = 0}};
    auto records = std::make_unique<op_record[]>(rounds);
    std::atomic<std::uint64_t> token{0};  // the round's op token
    std::atomic<int> round{-1};           // the round whose token is published
    std::atomic<int> done[2] = {-1, -1};  // the last round each canceller finished

    // Each round one thread passes ready and the other cancelled, the two swapping every
    // round, so that whichever thread tends to come first, both outcomes win some rounds.
    auto canceller = [&](int who) {
        for (int r = 0; r < rounds; ++r) {
            const outcome why = (r + who) % 2 == 0 ? outcome::ready : outcome::cancelled;
            while (round.load(std::memory_order_acquire) != r) std::this_thread::yield();
            (void)reg.cancel(op_token::from_u64(token.load(std::memory_order_relaxed)), why);
            done[who].store(r, std::memory_order_release);
        }
    };
    std::thread first(canceller, 0);
    std::thread second(canceller, 1);

    for (int r = 0; r < rounds; ++r) {
        auto t = reg.arm(1, direction::read, count_into(records.get(), r));
        ASSERT_TRUE(t.ok());
        reg.apply_handed_off();
        token.store(t.value().to_u64(), std::memory_order_relaxed);
        round.store(r, std::memory_order_release);  // the cancellers race from here
        while (done[0].load(std::memory_order_acquire) != r ||
               done[1].load(std::memory_order_acquire) != r)
            std::this_thread::yield();
        // Both cancels have returned; hand-off strategies end the op here, on the owner.
        while (records[r].calls.load() == 0) reg.apply_handed_off();
    }
    first.join();
    second.join();
    reg.apply_handed_off();
    expect_one_winner_each_round(reg, records.get(), rounds);
}

// One thread closes and re-arms an fd again and again while the owner keeps dispatching
// whatever token it last saw. A ready outcome may only come from an event whose generation
// is the lifetime the op was armed in.
TYPED_TEST(RegistryMT, EventsOfAClosedLifetimeNeverReachTheNextOne) {
    constexpr int lifetimes = 2000;
    TypeParam reg{registry_config{.max_fds = 4, .max_pending = 0}};
    auto records = std::make_unique<op_record[]>(lifetimes);
    auto armed_gen = std::make_unique<std::uint32_t[]>(lifetimes);
    std::atomic<std::uint64_t> current{reg.token_of(2).value().to_u64()};
    std::atomic<bool> done{false};
    std::uint32_t dispatching_gen = 0;  // owner-only: the generation being dispatched
    std::atomic<int> misdelivered{0};
    const std::thread::id owner = std::this_thread::get_id();

    std::thread reuser([&] {
        for (int i = 0; i < lifetimes; ++i) {
            const fd_token ft = reg.token_of(2).value();
            armed_gen[i] = ft.generation();
            std::uint32_t* dgen = &dispatching_gen;
            std::atomic<int>* bad = &misdelivered;
            op_record* rec = &records[i];
            const std::uint32_t mine = ft.generation();
            auto arm = [&] {
                return reg.arm(
                    2, direction::read, [rec, dgen, bad, mine, owner](const completion& c) {
                        // A ready not latched at arm runs inside the owner's dispatch, where
                        // dgen is the generation being dispatched.
                        if (c.result == outcome::ready && !c.latched &&
                            (std::this_thread::get_id() != owner || *dgen != mine))
                            bad->fetch_add(1);
                        rec->result.store(static_cast<int>(c.result), std::memory_order_relaxed);
                        rec->calls.fetch_add(1, std::memory_order_relaxed);
                    });
            };
            // busy is the truth while the previous lifetime's op is still being ended by
            // the owner (its callback has not run yet); it passes as soon as that ends.
            // full, likewise, while a hand-off owner has not yet applied the last close.
            auto t = arm();
            while (!t.ok() && (t.error() == errc::busy || t.error() == errc::full)) {
                std::this_thread::yield();
                t = arm();
            }
            EXPECT_TRUE(t.ok()) << to_string(t.error());
            current.store(ft.to_u64(), std::memory_order_release);
            if (i % 3 == 0) std::this_thread::yield();
            while (reg.close(2) == errc::full) std::this_thread::yield();
            // The next lifetime's token goes out before anything is armed in it: the owner
            // dispatches new-lifetime events while this lifetime's ops may still be ending.
            current.store(reg.token_of(2).value().to_u64(), std::memory_order_release);
        }
        done.store(true, std::memory_order_release);
    });

    while (!done.load(std::memory_order_acquire)) {
        const fd_token ft = fd_token::from_u64(current.load(std::memory_order_acquire));
        dispatching_gen = ft.generation();
        reg.dispatch(ft, readiness::readable);
    }
    reuser.join();
    while (reg.apply_handed_off() != 0) {}

    EXPECT_EQ(misdelivered.load(), 0);
    for (int i = 0; i < lifetimes; ++i) ASSERT_EQ(records[i].calls.load(), 1) << "lifetime " << i;
    const registry_stats s = reg.stats();
    EXPECT_EQ(s.armed, std::uint64_t(lifetimes));
    EXPECT_EQ(s.completed + s.closed, std::uint64_t(lifetimes));
    EXPECT_EQ(s.in_flight, 0u);
}
