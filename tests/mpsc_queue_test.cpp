// SPDX-License-Identifier: Apache-2.0
// mpsc_queue (mpsc_queue) whitebox: hand-off order, owner-thread callbacks, back-pressure.
#include <thread>

#include <gtest/gtest.h>

#include <opreg/mpsc_queue.hpp>

#include "support/strategies.hpp"

using namespace opreg;
using opreg_test::record;
using opreg_test::recorder;

TEST(MpscQueueStrategy, NothingIsAppliedUntilTheOwnerPolls) {
    mpsc_queue reg{registry_config{.max_fds = 8}};
    record rec;
    const op_token t = reg.arm(3, direction::read, recorder(rec)).value();
    EXPECT_EQ(reg.cancel(t), cancel_status::requested);
    EXPECT_EQ(rec.calls, 0);
    EXPECT_EQ(reg.apply_handed_off(), 2u);  // the arm, then the cancel
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::cancelled);
    EXPECT_EQ(reg.apply_handed_off(), 0u);
}

TEST(MpscQueueStrategy, CommandsApplyInTheOrderTheyWerePushed) {
    mpsc_queue reg{registry_config{.max_fds = 8}};
    record first, second;
    const op_token a = reg.arm(3, direction::read, recorder(first)).value();
    reg.cancel(a);
    const op_token b = reg.arm(3, direction::read, recorder(second)).value();
    reg.apply_handed_off();
    EXPECT_EQ(first.calls, 1);
    EXPECT_EQ(first.last.result, outcome::cancelled);
    EXPECT_EQ(second.calls, 0);  // not busy: the cancel was applied before it
    EXPECT_EQ(reg.dispatch(reg.token_of(3).value(), readiness::readable), 1u);
    EXPECT_EQ(second.calls, 1);
    EXPECT_EQ(second.last.token, b);
}

TEST(MpscQueueStrategy, CallbacksRunOnTheOwnerThread) {
    mpsc_queue reg{registry_config{.max_fds = 8}};
    std::thread::id ran_on;
    std::thread other([&] {
        const op_token t =
            reg.arm(2, direction::write,
                    [&ran_on](const completion&) { ran_on = std::this_thread::get_id(); })
                .value();
        reg.cancel(t);
    });
    other.join();
    reg.apply_handed_off();
    EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(MpscQueueStrategy, CloseMakesTheOldFdTokenStaleBeforeTheOwnerPolls) {
    mpsc_queue reg{registry_config{.max_fds = 8}};
    const fd_token before = reg.token_of(4).value();
    ASSERT_EQ(reg.close(4), errc::ok);
    EXPECT_NE(reg.token_of(4).value(), before);
    EXPECT_EQ(reg.dispatch(before, readiness::readable), 0u);
    EXPECT_EQ(reg.stats().stale_dropped, 1u);
}

TEST(MpscQueueStrategy, FullCancelPoolIsReportedAndCloseNeverFails) {
    mpsc_queue reg{registry_config{.max_fds = 8, .max_pending = 2}};
    record rec;
    const op_token t = reg.arm(1, direction::read, recorder(rec)).value();
    EXPECT_EQ(reg.cancel(t), cancel_status::requested);
    EXPECT_EQ(reg.cancel(t), cancel_status::requested);
    EXPECT_EQ(reg.cancel(t), cancel_status::full);
    // close has its own preallocated command per fd; repeated closes coalesce.
    for (int i = 0; i < 5; ++i) EXPECT_EQ(reg.close(1), errc::ok);
    EXPECT_EQ(reg.token_of(1).value().generation(), 5u);
    reg.apply_handed_off();
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(reg.cancel(t), cancel_status::requested);  // room again once applied
}

// The owner may apply a close late (the queue withholds nodes behind a push in flight);
// an event of the new lifetime must still never end an op of the old one. Here the close is
// queued when the new lifetime's event arrives, and dispatch applies it first: the old op
// ends closed, never ready. (The interleaving where the owner cannot see the close yet is
// the stress's close_reuse scenario.)
TEST(MpscQueueStrategy, NewLifetimeEventNeverEndsAnOldLifetimeOp) {
    mpsc_queue reg{registry_config{.max_fds = 8}};
    record old_op, new_op;
    ASSERT_TRUE(reg.arm(5, direction::read, recorder(old_op)).ok());
    reg.apply_handed_off();
    const fd_token before = reg.token_of(5).value();
    ASSERT_EQ(reg.close(5), errc::ok);  // queued, applied by the next apply_handed_off()
    const fd_token after = reg.token_of(5).value();
    ASSERT_NE(before, after);
    // dispatch applies the hand-off first, so here the close is applied before the event; the
    // stress (close_reuse) covers the interleaving where the owner cannot see it yet.
    EXPECT_EQ(reg.dispatch(after, readiness::readable), 0u);
    EXPECT_EQ(old_op.calls, 1);
    EXPECT_EQ(old_op.last.result, outcome::closed);
    // The readiness belongs to the new lifetime: its first arm gets it.
    ASSERT_TRUE(reg.arm(5, direction::read, recorder(new_op)).ok());
    reg.apply_handed_off();
    EXPECT_EQ(new_op.calls, 1);
    EXPECT_EQ(new_op.last.result, outcome::ready);
    EXPECT_TRUE(new_op.last.latched);
}

TEST(MpscQueueStrategy, ArmUnderAClosedLifetimeEndsClosed) {
    mpsc_queue reg{registry_config{.max_fds = 8}};
    record rec;
    // Armed under generation 0, then the fd is closed before the owner applies the arm.
    ASSERT_TRUE(reg.arm(6, direction::write, recorder(rec)).ok());
    ASSERT_EQ(reg.close(6), errc::ok);
    reg.apply_handed_off();
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::closed);
    EXPECT_EQ(reg.stats().in_flight, 0u);
}

TEST(MpscQueueStrategy, DestroyingWithPendingOpsFreesThemWithoutRunningCallbacks) {
    record rec;
    {
        mpsc_queue reg{registry_config{.max_fds = 8}};
        ASSERT_TRUE(reg.arm(1, direction::read, recorder(rec)).ok());
        reg.apply_handed_off();
        ASSERT_TRUE(reg.arm(2, direction::read, recorder(rec)).ok());  // still queued
    }
    EXPECT_EQ(rec.calls, 0);
}

// apply_handed_off() is bounded: producers that never stop cannot keep the owner in one call.
TEST(MpscQueueStrategy, PollAppliesAtMostABatchPerCall) {
    mpsc_queue reg{registry_config{.max_fds = 8, .max_pending = 4096}};
    const op_token nothing{op_slot(1, direction::read), 12345};
    constexpr std::size_t pushed = 3000;
    for (std::size_t i = 0; i < pushed; ++i)
        ASSERT_EQ(reg.cancel(nothing), cancel_status::requested);
    EXPECT_EQ(reg.apply_handed_off(), mpsc_queue::apply_batch);
    EXPECT_EQ(reg.apply_handed_off(), mpsc_queue::apply_batch);
    EXPECT_EQ(reg.apply_handed_off(), pushed - 2 * mpsc_queue::apply_batch);
    EXPECT_EQ(reg.apply_handed_off(), 0u);
}
