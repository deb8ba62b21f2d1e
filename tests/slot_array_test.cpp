// slot_array whitebox: the state word's layout and what generations guarantee over many
// reuses of one slot.
#include <cstdint>

#include <gtest/gtest.h>

#include <opreg/slot_array.hpp>

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
    const slot_word w = slot_word{(std::uint64_t{3} << slot_word::fd_gen_shift) | (std::uint64_t{9} << 3) | 1}
                            .with_latch(true);
    const slot_word n = w.next_fd();
    EXPECT_EQ(n.fd_gen(), 4u);
    EXPECT_EQ(n.op_gen(), 9u);
    EXPECT_EQ(n.st(), slot_word::state::arming);
    EXPECT_FALSE(n.latched());
}

TEST(SlotArrayWord, OpGenerationWrapsInsideItsFieldWithoutTouchingTheFdGeneration) {
    const slot_word w{(std::uint64_t{1} << slot_word::fd_gen_shift) | (slot_word::op_gen_mask << 3) | 3};
    const slot_word n = w.next_op();
    EXPECT_EQ(n.op_gen(), 0u);
    EXPECT_EQ(n.fd_gen(), 1u);
    EXPECT_EQ(n.st(), slot_word::state::idle);
}

// One slot reused more than 2^16 times: the first op's token still resolves to nothing.
TEST(SlotArray, StaleOpTokenNeverResolvesAfterManyReusesOfOneSlot) {
    slot_array reg{registry_config{.max_fds = 4}};
    const fd_token ft = reg.token_of(1).value();
    int calls = 0;
    auto counted = [&calls](const completion&) { ++calls; };
    const op_token first = reg.arm(1, direction::read, counted).value();
    constexpr int reuses = (1 << 16) + 100;
    for (int i = 0; i < reuses; ++i) {
        ASSERT_EQ(reg.dispatch(ft, readiness::readable), 1u);
        ASSERT_TRUE(reg.arm(1, direction::read, counted).ok());
    }
    EXPECT_EQ(reg.cancel(first), cancel_status::stale);
    EXPECT_EQ(calls, reuses);
    EXPECT_EQ(reg.stats().in_flight, 1u);
}

// One fd closed more than 2^16 times: an event of its first lifetime is still stale.
TEST(SlotArray, StaleFdTokenNeverResolvesAfterManyLifetimes) {
    slot_array reg{registry_config{.max_fds = 4}};
    const fd_token first = reg.token_of(2).value();
    constexpr int lifetimes = (1 << 16) + 100;
    for (int i = 0; i < lifetimes; ++i) ASSERT_EQ(reg.close(2), errc::ok);
    record rec;
    ASSERT_TRUE(reg.arm(2, direction::read, recorder(rec)).ok());
    EXPECT_EQ(reg.dispatch(first, readiness::readable), 0u);
    EXPECT_EQ(rec.calls, 0);
    EXPECT_EQ(reg.token_of(2).value().generation(), first.generation() + lifetimes);
    EXPECT_EQ(reg.dispatch(reg.token_of(2).value(), readiness::readable), 1u);
    EXPECT_EQ(rec.calls, 1);
}

// Neighbouring directions and fds live on distinct cache lines: one op, one line.
TEST(SlotArray, OpsDoNotShareCacheLines) {
    EXPECT_EQ(sizeof(callback) + sizeof(std::uint64_t), 64u);
}

TEST(SlotArrayWord, FdGenerationWrapsInsideItsFieldWithoutTouchingTheRest) {
    const slot_word w{(std::uint64_t{slot_word::fd_gen_mask} << slot_word::fd_gen_shift) |
                      (std::uint64_t{0xffffffff} << 3) | 2};
    const slot_word n = w.next_fd();
    EXPECT_EQ(n.fd_gen(), 0u);
    EXPECT_EQ(n.op_gen(), 0xffffffffu);
    EXPECT_EQ(n.st(), slot_word::state::pending);
}
