// SPDX-License-Identifier: Apache-2.0
// The contract's edges (include/opreg/registry.hpp), for every strategy: generations at the
// top of their width, empty callbacks, the invalid token, a callback that closes its fd,
// what happens to a callback that is refused or outlives its registry, the thread each
// callback runs on, and a callback that throws.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

#include "support/strategies.hpp"

using namespace opreg;
using opreg_test::record;
using opreg_test::recorder;

namespace {

// A callable that counts how often it ran and whether it was destroyed without running.
struct tracked {
    struct counts {
        int runs = 0;
        int destroyed = 0;  // live instances destroyed (moved-from shells do not count)
    };
    counts* c;
    bool live = true;

    explicit tracked(counts& into) noexcept : c{&into} {}
    tracked(tracked&& o) noexcept : c{o.c}, live{o.live} { o.live = false; }
    tracked& operator=(tracked&&) = delete;
    ~tracked() {
        if (live) ++c->destroyed;
    }
    void operator()(const completion&) { ++c->runs; }
};

// Where each hands-off strategy's owner work runs: apply it where the contract says the
// owner applies it.
template <class R>
void settle(R& reg) {
    while (reg.apply_handed_off() != 0) {}
}

}  // namespace

template <class R>
class Contract : public ::testing::Test {
protected:
    static constexpr registry_config small{.max_fds = 16, .max_pending = 0};
    R reg{small};

    fd_token tok(int fd) { return reg.token_of(fd).value(); }
};
TYPED_TEST_SUITE(Contract, opreg_test::all_strategies);

// --- an empty callback is refused -------------------------------------------------------

TYPED_TEST(Contract, EmptyCallbackIsRefusedAndTheSlotStaysFree) {
    auto& reg = this->reg;
    void (*null_fn)(const completion&) = nullptr;
    for (int kind = 0; kind < 3; ++kind) {
        callback empty = kind == 0 ? callback{} : kind == 1 ? callback{nullptr} : callback{null_fn};
        auto r = reg.arm(3, direction::read, std::move(empty));
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error(), errc::no_callback);
    }
    settle(reg);
    EXPECT_EQ(reg.stats().failures, 3u);
    EXPECT_EQ(reg.stats().armed, 0u);
    // The refusals left nothing behind: the slot arms, ends and is not busy.
    record rec;
    ASSERT_TRUE(reg.arm(3, direction::read, recorder(rec)).ok());
    settle(reg);
    EXPECT_EQ(reg.dispatch(this->tok(3), readiness::readable), 1u);
    EXPECT_EQ(rec.calls, 1);
    record again;
    ASSERT_TRUE(reg.arm(3, direction::read, recorder(again)).ok());
    settle(reg);
    EXPECT_EQ(again.calls, 0) << "a refused empty callback left the slot ready or busy";
    EXPECT_EQ(reg.stats().errors, 0u);
    EXPECT_EQ(reg.close(3), errc::ok);
    settle(reg);
    EXPECT_EQ(again.calls, 1);
    EXPECT_EQ(again.last.result, outcome::closed);
}

// --- the invalid token ----------------------------------------------------------------

TYPED_TEST(Contract, TheInvalidTokenNamesNothing) {
    auto& reg = this->reg;
    record fd0;
    ASSERT_TRUE(reg.arm(0, direction::read, recorder(fd0)).ok());  // slot 0, generation 0
    settle(reg);
    EXPECT_FALSE(op_token{}.valid());
    EXPECT_EQ(op_token{}, op_token::invalid());
    const cancel_status s = reg.cancel(op_token{});
    settle(reg);
    EXPECT_TRUE(s == cancel_status::stale || (reg.hands_off() && s == cancel_status::requested));
    EXPECT_EQ(fd0.calls, 0) << "the invalid token cancelled fd 0's read";
    EXPECT_EQ(reg.dispatch(fd_token{}, readiness::readable), 0u);
    EXPECT_EQ(fd0.calls, 0);
    EXPECT_EQ(reg.stats().stale_dropped, 1u);
    EXPECT_EQ(reg.close(0), errc::ok);
    settle(reg);
    EXPECT_EQ(fd0.last.result, outcome::closed);
}

// --- closed wins -------------------------------------------------------------------

// One event ends both directions; the read callback closes the fd (and the number could be
// reused at once). The write op must end as closed, never as ready after close() returned.
TYPED_TEST(Contract, AReadCallbackThatClosesEndsTheWriteOpAsClosed) {
    auto& reg = this->reg;
    bool closed_in_callback = false;
    record wr;
    ASSERT_TRUE(reg.arm(5, direction::read,
                        [&](const completion& c) {
                            EXPECT_EQ(c.result, outcome::ready);
                            EXPECT_EQ(reg.close(c.fd), errc::ok);
                            closed_in_callback = true;
                        })
                    .ok());
    ASSERT_TRUE(reg.arm(5, direction::write, recorder(wr)).ok());
    settle(reg);
    const fd_token t = this->tok(5);
    reg.dispatch(t, readiness::readable | readiness::writable);
    settle(reg);
    ASSERT_TRUE(closed_in_callback);
    ASSERT_EQ(wr.calls, 1);
    EXPECT_EQ(wr.last.result, outcome::closed) << "the write op saw ready after its fd closed";
    // The next lifetime is clean: neither the event nor a latch of the old one reaches it.
    record next;
    ASSERT_TRUE(reg.arm(5, direction::write, recorder(next)).ok());
    settle(reg);
    EXPECT_EQ(next.calls, 0);
    const registry_stats s = reg.stats();
    EXPECT_EQ(s.completed, 1u);
    EXPECT_EQ(s.closed, 1u);
    EXPECT_EQ(s.armed, s.ended() + s.in_flight);
}

// The same with an error event: the read op ends as error, its callback closes, and the
// write op ends as closed.
TYPED_TEST(Contract, AnErrorCallbackThatClosesEndsTheOtherOpAsClosed) {
    auto& reg = this->reg;
    record wr;
    ASSERT_TRUE(reg.arm(6, direction::read,
                        [&](const completion& c) {
                            EXPECT_EQ(c.result, outcome::error);
                            EXPECT_EQ(reg.close(c.fd), errc::ok);
                        })
                    .ok());
    ASSERT_TRUE(reg.arm(6, direction::write, recorder(wr)).ok());
    settle(reg);
    reg.dispatch(this->tok(6), readiness::error);
    settle(reg);
    ASSERT_EQ(wr.calls, 1);
    EXPECT_EQ(wr.last.result, outcome::closed);
}

// --- what a refused or orphaned callback becomes -------------------------------------

TYPED_TEST(Contract, ARefusedCallbackIsDestroyedWithoutRunning) {
    auto& reg = this->reg;
    tracked::counts out_of_range;
    EXPECT_EQ(reg.arm(99, direction::read, tracked{out_of_range}).error(), errc::fd_out_of_range);
    EXPECT_EQ(out_of_range.runs, 0);
    EXPECT_EQ(out_of_range.destroyed, 1);
    if (!reg.hands_off()) {
        record first;
        ASSERT_TRUE(reg.arm(2, direction::read, recorder(first)).ok());
        tracked::counts busy;
        EXPECT_EQ(reg.arm(2, direction::read, tracked{busy}).error(), errc::busy);
        EXPECT_EQ(busy.runs, 0);
        EXPECT_EQ(busy.destroyed, 1);
    }
    if (reg.bounded_pending()) {
        TypeParam bounded{registry_config{.max_fds = 8, .max_pending = 1}};
        record one;
        ASSERT_TRUE(bounded.arm(1, direction::read, recorder(one)).ok());
        tracked::counts full;
        EXPECT_EQ(bounded.arm(2, direction::read, tracked{full}).error(), errc::full);
        EXPECT_EQ(full.runs, 0);
        EXPECT_EQ(full.destroyed, 1);
        settle(bounded);
        bounded.close(1);
        settle(bounded);
    }
}

TYPED_TEST(Contract, DestroyingTheRegistryDestroysPendingCallbacksWithoutRunning) {
    tracked::counts pending, queued;
    {
        TypeParam reg{registry_config{.max_fds = 8}};
        ASSERT_TRUE(reg.arm(1, direction::read, tracked{pending}).ok());
        ASSERT_TRUE(reg.arm(1, direction::write, tracked{pending}).ok());
        settle(reg);
        ASSERT_TRUE(reg.arm(2, direction::read, tracked{queued}).ok());  // hand-off: queued
        EXPECT_EQ(pending.destroyed, 0);
    }
    EXPECT_EQ(pending.runs, 0);
    EXPECT_EQ(pending.destroyed, 2);
    EXPECT_EQ(queued.runs, 0);
    EXPECT_EQ(queued.destroyed, 1);
}

// --- generations at the top of their width --------------------------------------------

// Every generation starts three below the top of its field, so a handful of operations
// crosses the wrap at full width.
template <class R>
class ContractAtTheWrap : public ::testing::Test {
protected:
    static constexpr registry_config near_top{
        .max_fds = 16, .max_pending = 0, .first_generation = ~std::uint64_t{0} - 2};
    R reg{near_top};

    fd_token tok(int fd) { return reg.token_of(fd).value(); }
};
TYPED_TEST_SUITE(ContractAtTheWrap, opreg_test::all_strategies);

TYPED_TEST(ContractAtTheWrap, OpTokensAcrossTheWrapStayDistinctAndStale) {
    auto& reg = this->reg;
    std::vector<op_token> issued;
    record rec;
    for (int i = 0; i < 6; ++i) {
        auto t = reg.arm(4, direction::read, recorder(rec));
        ASSERT_TRUE(t.ok());
        issued.push_back(t.value());
        settle(reg);
        if (i + 1 < 6) {
            ASSERT_EQ(reg.dispatch(this->tok(4), readiness::readable), 1u);
        }
    }
    EXPECT_EQ(rec.calls, 5);
    EXPECT_EQ(issued.front().generation(), token_generation_mask - 2) << "not started at the top";
    for (std::size_t i = 0; i < issued.size(); ++i)
        for (std::size_t j = i + 1; j < issued.size(); ++j)
            EXPECT_NE(issued[i], issued[j]) << "generations " << i << " and " << j << " alias";
    // Every token but the last names an op that ended: cancelling it must not end the one
    // pending now, on either side of the wrap.
    for (std::size_t i = 0; i + 1 < issued.size(); ++i) reg.cancel(issued[i]);
    settle(reg);
    EXPECT_EQ(rec.calls, 5) << "a token from before the wrap ended the op after it";
    EXPECT_EQ(reg.dispatch(this->tok(4), readiness::readable), 1u);
    EXPECT_EQ(rec.calls, 6);
    EXPECT_EQ(rec.last.token, issued.back());
    EXPECT_EQ(rec.last.result, outcome::ready);
}

// The latch across fd lifetimes at the top of the fd generation: an arm with nothing
// latched waits, an arm after readiness ends at once, and each lifetime's latch stays its
// own. (A latch stored as generation + 1, with 0 meaning "none", reads every arm at the top
// of the generation as latched: this catches it.)
TYPED_TEST(ContractAtTheWrap, LatchAndStalenessHoldAcrossTheFdGenerationWrap) {
    auto& reg = this->reg;
    for (int lifetime = 0; lifetime < 5; ++lifetime) {
        SCOPED_TRACE(lifetime);
        const fd_token t = this->tok(7);
        record waits;
        ASSERT_TRUE(reg.arm(7, direction::read, recorder(waits)).ok());
        settle(reg);
        EXPECT_EQ(waits.calls, 0) << "an arm with nothing latched ended at once";
        EXPECT_EQ(reg.dispatch(t, readiness::readable), 1u);
        EXPECT_EQ(waits.calls, 1);
        EXPECT_FALSE(waits.last.latched);
        // Readiness with nothing pending is latched for this lifetime's next arm only.
        EXPECT_EQ(reg.dispatch(t, readiness::readable), 0u);
        record latched;
        ASSERT_TRUE(reg.arm(7, direction::read, recorder(latched)).ok());
        settle(reg);
        EXPECT_EQ(latched.calls, 1);
        EXPECT_TRUE(latched.last.latched);
        EXPECT_EQ(reg.dispatch(t, readiness::readable), 0u);  // latched again, then closed
        ASSERT_EQ(reg.close(7), errc::ok);
        settle(reg);
        const fd_token next = this->tok(7);
        EXPECT_NE(next, t);
        EXPECT_EQ(reg.dispatch(t, readiness::readable), 0u) << "an old lifetime's event";
    }
    const registry_stats s = reg.stats();
    EXPECT_EQ(s.stale_dropped, 5u);
    EXPECT_EQ(s.completed, 10u);
    EXPECT_EQ(s.in_flight, 0u);
}

// --- the thread each callback runs on ----------------------------------------------

// A cancel from another thread: for hands_off() strategies the callback runs on the owner
// (here, the thread that applies the hand-off); for the others on the cancelling thread. The
// same for a completion-mode backend's cancel(t, outcome::ready): it is a cancel, and its
// callback runs where a cancel's does.
template <class R>
void expect_cancel_runs_where_the_contract_says(R& reg, outcome why) {
    std::atomic<std::thread::id> ran_on{};
    const op_token t = reg.arm(3, direction::read,
                               [&ran_on, why](const completion& c) {
                                   EXPECT_EQ(c.result, why);
                                   ran_on.store(std::this_thread::get_id());
                               })
                           .value();
    settle(reg);
    std::thread::id canceller;
    std::thread other([&] {
        canceller = std::this_thread::get_id();
        reg.cancel(t, why);
    });
    other.join();
    settle(reg);
    EXPECT_EQ(ran_on.load(), reg.hands_off() ? std::this_thread::get_id() : canceller);
}

TYPED_TEST(Contract, ACancelFromAnotherThreadRunsTheCallbackWhereTheContractSays) {
    expect_cancel_runs_where_the_contract_says(this->reg, outcome::cancelled);
    EXPECT_EQ(this->reg.stats().cancelled, 1u);
}

TYPED_TEST(Contract, AReadyCancelFromAnotherThreadRunsTheCallbackWhereTheContractSays) {
    expect_cancel_runs_where_the_contract_says(this->reg, outcome::ready);
    EXPECT_EQ(this->reg.stats().completed, 1u);
}

// An arm from another thread that finds readiness latched: it ends at once, on the arming
// thread for the strategies that do not hand off, on the owner for those that do.
TYPED_TEST(Contract, ALatchedArmFromAnotherThreadRunsTheCallbackWhereTheContractSays) {
    auto& reg = this->reg;
    EXPECT_EQ(reg.dispatch(this->tok(4), readiness::writable), 0u);  // latched
    std::atomic<std::thread::id> ran_on{};
    std::thread::id armer;
    std::thread other([&] {
        armer = std::this_thread::get_id();
        ASSERT_TRUE(reg.arm(4, direction::write,
                            [&ran_on](const completion& c) {
                                EXPECT_TRUE(c.latched);
                                ran_on.store(std::this_thread::get_id());
                            })
                        .ok());
    });
    other.join();
    settle(reg);
    EXPECT_EQ(ran_on.load(), reg.hands_off() ? std::this_thread::get_id() : armer);
}

// --- a callback that throws ----------------------------------------------------------

template <class R>
class ContractDeathTest : public Contract<R> {};
TYPED_TEST_SUITE(ContractDeathTest, opreg_test::direct_strategies);

// Callbacks must not throw; one that does ends the program, in every strategy alike, rather
// than leaving a batch half-ended (the second op counted ended and never run).
TYPED_TEST(ContractDeathTest, ACallbackThatThrowsTerminates) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    auto& reg = this->reg;
    record wr;
    ASSERT_TRUE(reg.arm(8, direction::read,
                        [](const completion&) { throw std::runtime_error("callback threw"); })
                    .ok());
    ASSERT_TRUE(reg.arm(8, direction::write, recorder(wr)).ok());
    settle(reg);
    const fd_token t = this->tok(8);
    EXPECT_DEATH(
        {
            try {
                reg.dispatch(t, readiness::readable | readiness::writable);
                settle(reg);
            } catch (...) {
                std::fputs("the exception escaped the registry\n", stderr);
                std::_Exit(0);  // not a death by terminate: the test fails
            }
            std::fputs("no exception, no termination\n", stderr);
            std::_Exit(0);
        },
        "");
}
