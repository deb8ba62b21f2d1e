// SPDX-License-Identifier: Apache-2.0
// slot_array whitebox: the state word's layout, what generations guarantee over many reuses
// of one slot, and progress: a thread stopped mid-operation stops no other.
#include <cstdint>
#include <utility>

#include <gtest/gtest.h>

#include <opreg/slot_array.hpp>

#include "support/parking_sync.hpp"
#include "support/strategies.hpp"

using namespace opreg;
using opreg::detail::slot_word;
using opreg_test::record;
using opreg_test::recorder;

TEST(SlotArrayWord, PacksStateOpGenerationAndFdGeneration) {
    const slot_word w{(std::uint64_t{7} << slot_word::fd_gen_shift) | (std::uint64_t{5} << 3) | 2};
    EXPECT_EQ(w.fd_gen(), 7u);
    EXPECT_EQ(w.op_gen(), 5u);
    EXPECT_EQ(w.st(), slot_word::state::pending);
    EXPECT_FALSE(w.latched());
    EXPECT_TRUE(w.with_latch(true).latched());
    EXPECT_EQ(w.with_latch(true).op_gen(), 5u);
    const slot_word c = w.with(slot_word::state::completing);
    EXPECT_EQ(c.st(), slot_word::state::completing);
    EXPECT_EQ(c.op_gen(), 5u);
    EXPECT_EQ(c.fd_gen(), 7u);
}

TEST(SlotArrayWord, EndingAnOpBumpsTheOpGenerationGoesIdleAndKeepsTheLatch) {
    const slot_word w{(std::uint64_t{3} << slot_word::fd_gen_shift) | (std::uint64_t{9} << 3) | 3};
    const slot_word n = w.next_op();
    EXPECT_EQ(n.st(), slot_word::state::idle);
    EXPECT_EQ(n.op_gen(), 10u);
    EXPECT_EQ(n.fd_gen(), 3u);
    EXPECT_FALSE(n.latched());
    EXPECT_TRUE(w.with_latch(true).next_op().latched());  // readiness that came meanwhile
}

TEST(SlotArrayWord, CloseBumpsTheFdGenerationAndForgetsTheLatch) {
    const slot_word w =
        slot_word{(std::uint64_t{3} << slot_word::fd_gen_shift) | (std::uint64_t{9} << 3) | 1}
            .with_latch(true);
    const slot_word n = w.next_fd();
    EXPECT_EQ(n.fd_gen(), 4u);
    EXPECT_EQ(n.op_gen(), 9u);
    EXPECT_EQ(n.st(), slot_word::state::arming);
    EXPECT_FALSE(n.latched());
}

TEST(SlotArrayWord, OpGenerationWrapsInsideItsFieldWithoutTouchingTheFdGeneration) {
    const slot_word w{(std::uint64_t{1} << slot_word::fd_gen_shift) |
                      (slot_word::op_gen_mask << 3) | 3};
    const slot_word n = w.next_op();
    EXPECT_EQ(n.op_gen(), 0u);
    EXPECT_EQ(n.fd_gen(), 1u);
    EXPECT_EQ(n.st(), slot_word::state::idle);
}

// The op generation at the top of its 38 bits: the first op's token, issued just below the
// wrap, still resolves to nothing once the slot has wrapped past it and back to an op.
TEST(SlotArray, StaleOpTokenNeverResolvesAcrossTheOpGenerationWrap) {
    slot_array reg{registry_config{.max_fds = 4, .first_generation = slot_word::op_gen_mask - 1}};
    const fd_token ft = reg.token_of(1).value();
    int calls = 0;
    auto counted = [&calls](const completion&) { ++calls; };
    const op_token first = reg.arm(1, direction::read, counted).value();
    EXPECT_EQ(first.generation(), slot_word::op_gen_mask - 1);
    op_token last = first;
    for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(reg.dispatch(ft, readiness::readable), 1u);
        last = reg.arm(1, direction::read, counted).value();
    }
    EXPECT_EQ(last.generation(), 2u);  // top - 1, top, 0, 1, 2
    EXPECT_EQ(reg.cancel(first), cancel_status::stale);
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(reg.stats().in_flight, 1u);
    EXPECT_EQ(reg.cancel(last), cancel_status::done);
}

// The fd generation at the top of its 23 bits: an event of the lifetime before the wrap is
// still stale after it.
TEST(SlotArray, StaleFdTokenNeverResolvesAcrossTheFdGenerationWrap) {
    slot_array reg{registry_config{.max_fds = 4, .first_generation = slot_word::fd_gen_mask - 1}};
    const fd_token first = reg.token_of(2).value();
    EXPECT_EQ(first.generation(), slot_word::fd_gen_mask - 1);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(reg.close(2), errc::ok);
    EXPECT_EQ(reg.token_of(2).value().generation(), 1u);
    record rec;
    ASSERT_TRUE(reg.arm(2, direction::read, recorder(rec)).ok());
    EXPECT_EQ(reg.dispatch(first, readiness::readable), 0u);
    EXPECT_EQ(rec.calls, 0);
    EXPECT_EQ(reg.dispatch(reg.token_of(2).value(), readiness::readable), 1u);
    EXPECT_EQ(rec.calls, 1);
}

// The contract's `stale`: a close of the same fd that wins against an arm in progress. The
// callable's move constructor runs inside arm() while it owns the slot's `arming` state, so
// a close there lands exactly in that window.
TEST(SlotArray, ArmThatACloseOvertakesReportsStaleAndNeverRunsItsCallback) {
    slot_array reg{registry_config{.max_fds = 4}};
    struct closing_mover {
        slot_array* reg;
        int* runs;
        int* moves;
        closing_mover(slot_array* r, int* ru, int* mo) noexcept : reg{r}, runs{ru}, moves{mo} {}
        closing_mover(closing_mover&& o) noexcept : reg{o.reg}, runs{o.runs}, moves{o.moves} {
            // The arm moves the callable into the slot while it owns `arming`; the moves
            // before that (into the callback, into arm's parameter) happen before it. Close
            // on the last one: into the slot, the third move.
            if (++*moves == 3) (void)reg->close(1);
        }
        void operator()(const completion&) { ++*runs; }
    };
    int runs = 0, moves = 0;
    callback cb{closing_mover{&reg, &runs, &moves}};  // move 1
    const fd_token before = reg.token_of(1).value();
    auto r = reg.arm(1, direction::read, std::move(cb));  // move 2 (parameter), 3 (slot)
    ASSERT_EQ(moves, 3);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), errc::stale);
    EXPECT_EQ(runs, 0);
    EXPECT_NE(reg.token_of(1).value(), before);
    EXPECT_EQ(reg.stats().failures, 1u);
    EXPECT_EQ(reg.stats().armed, 0u);
    // The slot is idle again in the new lifetime.
    record rec;
    ASSERT_TRUE(reg.arm(1, direction::read, recorder(rec)).ok());
    EXPECT_EQ(reg.dispatch(reg.token_of(1).value(), readiness::readable), 1u);
    EXPECT_EQ(rec.calls, 1);
}

// Neighbouring directions and fds live on distinct cache lines: one op, one line.
TEST(SlotArray, OpsDoNotShareCacheLines) {
    EXPECT_EQ(sizeof(callback) + sizeof(std::uint64_t), 64u);
}

TEST(SlotArrayWord, FdGenerationWrapsInsideItsFieldWithoutTouchingTheRest) {
    const slot_word w{(slot_word::fd_gen_mask << slot_word::fd_gen_shift) |
                      (slot_word::op_gen_mask << 3) | 2};
    const slot_word n = w.next_fd();
    EXPECT_EQ(n.fd_gen(), 0u);
    EXPECT_EQ(n.op_gen(), slot_word::op_gen_mask);
    EXPECT_EQ(n.st(), slot_word::state::pending);
}

// The op generation takes all 38 bits a token carries; the fd generation the 23 left.
TEST(SlotArrayWord, OpGenerationIsAsWideAsATokensAndTheFieldsFillTheWord) {
    EXPECT_EQ(slot_word::op_gen_mask, token_generation_mask);
    EXPECT_EQ(slot_word::fd_gen_mask, (std::uint64_t{1} << 23) - 1);
    const slot_word w = slot_word::initial(~std::uint64_t{0});
    EXPECT_EQ(w.op_gen(), slot_word::op_gen_mask);
    EXPECT_EQ(w.fd_gen(), slot_word::fd_gen_mask);
    EXPECT_EQ(w.st(), slot_word::state::idle);
    EXPECT_FALSE(w.latched());
}

// ---- Progress: a thread stopped mid-operation stops no other -----------------------------
//
// slot_array.hpp claims every operation is lock-free: a thread that finds a slot in another
// thread's transient state (arming, completing) does not wait for it. A synchronisation
// policy whose CAS can park the calling thread right after it succeeds stops one thread
// inside arm(), holding its slot in `arming`, or inside dispatch(), holding it in
// `completing`; every other call on that slot and on others must then return, with the
// answer the header gives for a slot in that state.
using opreg_test::park_at;
using opreg_test::parked_thread;
using opreg_test::returns_promptly;
using parking_slot_array = basic_slot_array<opreg_test::parking_sync>;

TEST(SlotArrayProgress, AThreadStoppedWhileArmingStopsNoOther) {
    parking_slot_array reg{registry_config{.max_fds = 8}};
    record stopped_op, other_op, neighbour;
    result<op_token> stopped_arm = errc::ok;
    parked_thread arming{park_at::cas,
                         [&] { stopped_arm = reg.arm(3, direction::read, recorder(stopped_op)); }};
    // fd 3's read slot is `arming`, owned by the parked thread.
    size_t ended = 0;
    ASSERT_TRUE(returns_promptly(arming, [&] {
        ended = reg.dispatch(reg.token_of(3).value(), readiness::readable);  // sets the latch
    }));
    EXPECT_EQ(ended, 0u) << "nothing is pending there yet";
    result<op_token> second = errc::ok;
    ASSERT_TRUE(returns_promptly(arming, [&] { second = reg.arm(3, direction::read, recorder(other_op)); }));
    EXPECT_EQ(second.error(), errc::busy) << "the previous op has not ended";
    // Other slots are untouched by it: an op on fd 5 is armed and ended meanwhile.
    ASSERT_TRUE(returns_promptly(arming, [&] {
        (void)reg.arm(5, direction::read, recorder(neighbour));
        reg.dispatch(reg.token_of(5).value(), readiness::readable);
    }));
    EXPECT_EQ(neighbour.calls, 1);
    errc closed = errc::ok;
    ASSERT_TRUE(returns_promptly(arming, [&] { closed = reg.close(3); }));
    EXPECT_EQ(closed, errc::ok);
    arming.release();
    // The stopped arm sees the close in its leaving CAS: the op was never armed.
    EXPECT_FALSE(stopped_arm.ok());
    EXPECT_EQ(stopped_arm.error(), errc::stale);
    EXPECT_EQ(stopped_op.calls, 0);
    EXPECT_EQ(other_op.calls, 0);
    EXPECT_EQ(reg.stats().in_flight, 0u);
}

TEST(SlotArrayProgress, AThreadStoppedWhileCompletingStopsNoOther) {
    parking_slot_array reg{registry_config{.max_fds = 8}};
    record first, second;
    const result<op_token> armed = reg.arm(3, direction::read, recorder(first));
    ASSERT_TRUE(armed.ok());
    parked_thread completing{
        park_at::cas, [&] { reg.dispatch(reg.token_of(3).value(), readiness::readable); }};
    // fd 3's read slot is `completing`, owned by the parked dispatcher.
    cancel_status cancelled = cancel_status::done;
    ASSERT_TRUE(returns_promptly(completing, [&] { cancelled = reg.cancel(armed.value()); }));
    EXPECT_EQ(cancelled, cancel_status::stale) << "the dispatcher won: nothing is pending";
    result<op_token> again = errc::ok;
    ASSERT_TRUE(returns_promptly(completing, [&] { again = reg.arm(3, direction::read, recorder(second)); }));
    EXPECT_EQ(again.error(), errc::busy) << "the op being completed has not ended";
    errc closed = errc::stale;
    ASSERT_TRUE(returns_promptly(completing, [&] { closed = reg.close(3); }));
    EXPECT_EQ(closed, errc::ok);
    completing.release();
    EXPECT_EQ(first.calls, 1);
    EXPECT_EQ(first.last.result, outcome::ready) << "the winner's outcome stands";
    EXPECT_EQ(second.calls, 0);
    EXPECT_EQ(reg.stats().in_flight, 0u);
}
