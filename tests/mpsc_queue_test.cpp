// SPDX-License-Identifier: Apache-2.0
// mpsc_queue (mpsc_queue) whitebox: hand-off order, owner-thread callbacks, back-pressure.
#include <thread>

#include <gtest/gtest.h>

#include <opreg/mpsc_queue.hpp>

#include "support/parking_sync.hpp"
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

// ---- Progress: a caller stopped mid-call stops no other caller, nor the owner --------------
//
// mpsc_queue.hpp claims arm, cancel and close are lock-free for the caller (a pool CAS loop
// and a wait-free push) and that the owner's apply_handed_off() and dispatch() never wait
// for a producer: a push stopped between its exchange and its link store withholds the
// commands behind it (intrusive_mpsc_queue.hpp) until it finishes, and loses none of them.
namespace {

using opreg_test::park_at;
using opreg_test::parked_thread;
using opreg_test::returns_promptly;
using parking_mpsc_queue = basic_mpsc_queue<opreg_test::parking_sync>;

// While `stopped` is parked inside an arm of fd 3, other threads arm fd 5 and cancel that
// arm, close fd 6, and the owner takes a turn with readiness for fd 3: each returns. The
// owner applies only what is ahead of the stopped push (`ahead`). Once it is let go, the
// rest is applied, in push order, and nothing is lost: fd 3's arm ends ready (the readiness
// waited for it), fd 5's op ends cancelled.
void others_return_while_stopped(park_at where, std::size_t ahead) {
    parking_mpsc_queue reg{registry_config{.max_fds = 8}};
    record stopped_op, other_op;
    result<op_token> stopped_arm = errc::ok;
    const fd_token fd3 = reg.token_of(3).value();
    parked_thread arming{where,
                         [&] { stopped_arm = reg.arm(3, direction::read, recorder(stopped_op)); }};

    result<op_token> other = errc::ok;
    ASSERT_TRUE(returns_promptly(
        arming, [&] { other = reg.arm(5, direction::read, recorder(other_op)); }));
    ASSERT_TRUE(other.ok());
    cancel_status cancelled = cancel_status::stale;
    ASSERT_TRUE(returns_promptly(arming, [&] { cancelled = reg.cancel(other.value()); }));
    EXPECT_EQ(cancelled, cancel_status::requested);
    errc closed = errc::stale;
    ASSERT_TRUE(returns_promptly(arming, [&] { closed = reg.close(6); }));
    EXPECT_EQ(closed, errc::ok);

    std::size_t applied = 99, ended = 99;
    ASSERT_TRUE(returns_promptly(arming, [&] {
        applied = reg.apply_handed_off();
        ended = reg.dispatch(fd3, readiness::readable);
    }));
    EXPECT_EQ(applied, ahead);
    EXPECT_EQ(ended, 0u) << "fd 3's arm has not been applied: its readiness is latched";
    EXPECT_EQ(other_op.calls, ahead == 0 ? 0 : 1);

    arming.release();
    ASSERT_TRUE(stopped_arm.ok());
    EXPECT_EQ(reg.apply_handed_off(), 4u - ahead);
    EXPECT_EQ(stopped_op.calls, 1) << "the readiness that came while it was withheld ends it";
    EXPECT_EQ(stopped_op.last.result, outcome::ready);
    EXPECT_EQ(other_op.calls, 1);
    EXPECT_EQ(other_op.last.result, outcome::cancelled);
    EXPECT_EQ(reg.stats().in_flight, 0u);
}

}  // namespace

// Stopped after the pool handed it a command, before its push: the others' commands are
// ahead of it and applied (arm 5, cancel 5, close 6).
TEST(MpscQueueProgress, ACallerStoppedHoldingAPoolSlotStopsNoOther) {
    others_return_while_stopped(park_at::cas, 3);
}

// Stopped inside its push, after the exchange and before the link: every command behind it
// waits for it, but no call does.
TEST(MpscQueueProgress, ACallerStoppedInsideItsPushStopsNoOther) {
    others_return_while_stopped(park_at::pointer_exchange, 0);
}
