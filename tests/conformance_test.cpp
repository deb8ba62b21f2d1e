// SPDX-License-Identifier: Apache-2.0
// The registry contract (include/opreg/registry.hpp), clause by clause, for every strategy.
// Strategies that hand work to their owner thread (hands_off()) apply their hand-off where the
// contract says the owner applies it; everything else is asserted the same for all.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

#include "support/strategies.hpp"

using namespace opreg;
using opreg_test::record;
using opreg_test::recorder;

template <class R>
class Conformance : public ::testing::Test {
protected:
    static constexpr registry_config small{.max_fds = 16, .max_pending = 0};

    R reg{small};

    fd_token tok(int fd) {
        auto t = reg.token_of(fd);
        EXPECT_TRUE(t.ok());
        return t.value();
    }

    op_token arm_ok(int fd, direction d, record& rec) {
        auto t = reg.arm(fd, d, recorder(rec));
        EXPECT_TRUE(t.ok()) << to_string(t.error());
        reg.apply_handed_off();
        return t.value();
    }

    // cancel and, for hand-off strategies, let the owner apply it.
    cancel_status cancel(op_token t, outcome why = outcome::cancelled) {
        const cancel_status s = reg.cancel(t, why);
        if (reg.hands_off()) {
            EXPECT_EQ(s, cancel_status::requested);
            reg.apply_handed_off();
        }
        return s;
    }

    void close(int fd) {
        EXPECT_EQ(reg.close(fd), errc::ok);
        reg.apply_handed_off();
    }

    void expect_balanced() {
        const registry_stats s = reg.stats();
        EXPECT_EQ(s.armed, s.ended() + s.in_flight);
    }
};
TYPED_TEST_SUITE(Conformance, opreg_test::all_strategies);

TYPED_TEST(Conformance, ArmThenDispatchRunsCallbackOnceWithReady) {
    record rec;
    const op_token t = this->arm_ok(3, direction::read, rec);
    EXPECT_EQ(rec.calls, 0);
    EXPECT_EQ(this->reg.dispatch(this->tok(3), readiness::readable), 1u);
    ASSERT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::ready);
    EXPECT_EQ(rec.last.token, t);
    EXPECT_EQ(rec.last.fd, 3);
    EXPECT_EQ(rec.last.dir, direction::read);
    EXPECT_EQ(rec.last.error, errc::ok);
    // The op has ended: more readiness reaches nothing.
    EXPECT_EQ(this->reg.dispatch(this->tok(3), readiness::readable), 0u);
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(this->reg.stats().completed, 1u);
    EXPECT_EQ(this->reg.stats().in_flight, 0u);
}

TYPED_TEST(Conformance, DispatchEndsOnlyTheReadyDirection) {
    record rd, wr;
    this->arm_ok(4, direction::read, rd);
    this->arm_ok(4, direction::write, wr);
    EXPECT_EQ(this->reg.dispatch(this->tok(4), readiness::writable), 1u);
    EXPECT_EQ(rd.calls, 0);
    EXPECT_EQ(wr.calls, 1);
    EXPECT_EQ(wr.last.dir, direction::write);
    EXPECT_EQ(this->reg.dispatch(this->tok(4), readiness::readable | readiness::writable), 1u);
    EXPECT_EQ(rd.calls, 1);
    EXPECT_EQ(wr.calls, 1);
}

// A reader that stops at a short read needs to know the edge carried the FIN: no edge
// follows it. The event says so; a latched ready cannot, and says nothing.
TYPED_TEST(Conformance, HangupReachesTheOpsTheEventEndsAndOnlyThem) {
    record plain, hung, wr, latched;
    this->arm_ok(6, direction::read, plain);
    EXPECT_EQ(this->reg.dispatch(this->tok(6), readiness::readable), 1u);
    ASSERT_EQ(plain.calls, 1);
    EXPECT_FALSE(plain.last.hangup);
    this->arm_ok(6, direction::read, hung);
    this->arm_ok(6, direction::write, wr);
    EXPECT_EQ(this->reg.dispatch(this->tok(6),
                                 readiness::readable | readiness::writable | readiness::hangup),
              2u);
    ASSERT_EQ(hung.calls, 1);
    EXPECT_EQ(hung.last.result, outcome::ready);
    EXPECT_TRUE(hung.last.hangup);
    EXPECT_FALSE(hung.last.latched);
    ASSERT_EQ(wr.calls, 1);
    EXPECT_TRUE(wr.last.hangup);
    // Per event: the next plain edge says no hang-up, and an error says error, not hang-up.
    record after, failed;
    this->arm_ok(6, direction::read, after);
    EXPECT_EQ(this->reg.dispatch(this->tok(6), readiness::readable), 1u);
    ASSERT_EQ(after.calls, 1);
    EXPECT_FALSE(after.last.hangup);
    this->arm_ok(6, direction::read, failed);
    EXPECT_EQ(this->reg.dispatch(this->tok(6), readiness::error | readiness::hangup), 1u);
    ASSERT_EQ(failed.calls, 1);
    EXPECT_EQ(failed.last.result, outcome::error);
    EXPECT_FALSE(failed.last.hangup);
    // Hang-up alone ends nothing.
    record alone;
    const op_token t = this->arm_ok(6, direction::read, alone);
    EXPECT_EQ(this->reg.dispatch(this->tok(6), readiness::hangup), 0u);
    EXPECT_EQ(alone.calls, 0);
    this->cancel(t);
    ASSERT_EQ(alone.calls, 1);
    EXPECT_EQ(alone.last.result, outcome::cancelled);
    EXPECT_FALSE(alone.last.hangup);
    // With readable and no op waiting it latches like any readiness; the latched ready
    // cannot say whether the peer hung up.
    EXPECT_EQ(this->reg.dispatch(this->tok(6), readiness::readable | readiness::hangup), 0u);
    this->arm_ok(6, direction::read, latched);
    ASSERT_EQ(latched.calls, 1);
    EXPECT_TRUE(latched.last.latched);
    EXPECT_FALSE(latched.last.hangup);
    this->expect_balanced();
}

TYPED_TEST(Conformance, ErrorReadinessEndsEveryPendingOpWithError) {
    record rd, wr;
    this->arm_ok(5, direction::read, rd);
    this->arm_ok(5, direction::write, wr);
    EXPECT_EQ(this->reg.dispatch(this->tok(5), readiness::error), 2u);
    EXPECT_EQ(rd.calls, 1);
    EXPECT_EQ(wr.calls, 1);
    EXPECT_EQ(rd.last.result, outcome::error);
    EXPECT_EQ(wr.last.result, outcome::error);
    EXPECT_EQ(this->reg.stats().errors, 2u);
}

TYPED_TEST(Conformance, CancelEndsOnceWithCancelled) {
    record rec;
    const op_token t = this->arm_ok(2, direction::write, rec);
    const cancel_status first = this->cancel(t);
    if (!this->reg.hands_off()) {
        EXPECT_EQ(first, cancel_status::done);
    }
    ASSERT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::cancelled);
    EXPECT_EQ(rec.last.token, t);
    // A second cancel and a later event find nothing.
    const cancel_status second = this->cancel(t);
    if (!this->reg.hands_off()) {
        EXPECT_EQ(second, cancel_status::stale);
    }
    EXPECT_EQ(this->reg.dispatch(this->tok(2), readiness::writable), 0u);
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(this->reg.stats().cancelled, 1u);
}

TYPED_TEST(Conformance, CancelAsTimedOut) {
    record rec;
    const op_token t = this->arm_ok(2, direction::read, rec);
    this->cancel(t, outcome::timed_out);
    ASSERT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::timed_out);
    EXPECT_EQ(this->reg.stats().timed_out, 1u);
    EXPECT_EQ(this->reg.stats().cancelled, 0u);
}

// A completion-mode backend (io_uring) gets the op token back in the kernel's completion and
// ends exactly that op as ready through cancel(t, outcome::ready).
TYPED_TEST(Conformance, CancelAsReadyEndsTheOpOnceAsCompleted) {
    record rec;
    const op_token t = this->arm_ok(2, direction::write, rec);
    const cancel_status first = this->reg.cancel(t, outcome::ready);
    if (this->reg.hands_off()) {
        EXPECT_EQ(first, cancel_status::requested);
        EXPECT_EQ(rec.calls, 0) << "a hand-off strategy ends the op on the owner";
        this->reg.apply_handed_off();
    } else {
        EXPECT_EQ(first, cancel_status::done);
    }
    ASSERT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::ready);
    EXPECT_EQ(rec.last.error, errc::ok);
    EXPECT_EQ(rec.last.token, t);
    EXPECT_EQ(rec.last.fd, 2);
    EXPECT_EQ(rec.last.dir, direction::write);
    EXPECT_FALSE(rec.last.latched);
    EXPECT_FALSE(rec.last.hangup);
    registry_stats s = this->reg.stats();
    EXPECT_EQ(s.completed, 1u);
    EXPECT_EQ(s.cancelled, 0u);
    EXPECT_EQ(s.timed_out, 0u);
    EXPECT_EQ(s.in_flight, 0u);
    // The op has ended: a second completion naming it, and a later event, find nothing.
    const cancel_status second = this->cancel(t, outcome::ready);
    if (!this->reg.hands_off()) {
        EXPECT_EQ(second, cancel_status::stale);
    }
    EXPECT_EQ(this->reg.dispatch(this->tok(2), readiness::writable), 0u);
    EXPECT_EQ(rec.calls, 1);
    s = this->reg.stats();
    EXPECT_EQ(s.completed, 1u);
    EXPECT_EQ(s.in_flight, 0u);
    this->expect_balanced();
}

// A completion that arrives after the op ended some other way names an op that is gone: it
// is stale, never the newer op armed on the same slot since.
TYPED_TEST(Conformance, AReadyCancelOfAnEndedOpNeverReachesTheNextOp) {
    record first, second, third;
    const op_token old = this->arm_ok(7, direction::read, first);
    this->cancel(old, outcome::ready);
    ASSERT_EQ(first.calls, 1);
    const op_token fresh = this->arm_ok(7, direction::read, second);
    EXPECT_EQ(old.slot(), fresh.slot());
    EXPECT_NE(old.generation(), fresh.generation());
    const cancel_status s = this->cancel(old, outcome::ready);
    if (!this->reg.hands_off()) {
        EXPECT_EQ(s, cancel_status::stale);
    }
    EXPECT_EQ(first.calls, 1);
    EXPECT_EQ(second.calls, 0) << "a stale op token completed the newer op";
    // One winner: a cancel that came first leaves the completion nothing to end.
    this->cancel(fresh, outcome::cancelled);
    this->cancel(fresh, outcome::ready);
    ASSERT_EQ(second.calls, 1);
    EXPECT_EQ(second.last.result, outcome::cancelled);
    EXPECT_EQ(second.last.token, fresh);
    // ...and the slot's next op is still reached by its own token only.
    const op_token third_t = this->arm_ok(7, direction::read, third);
    this->cancel(fresh, outcome::ready);
    EXPECT_EQ(third.calls, 0) << "a stale op token completed the newer op";
    this->cancel(third_t, outcome::ready);
    ASSERT_EQ(third.calls, 1);
    EXPECT_EQ(third.last.result, outcome::ready);
    EXPECT_EQ(third.last.token, third_t);
    const registry_stats st = this->reg.stats();
    EXPECT_EQ(st.completed, 2u);
    EXPECT_EQ(st.cancelled, 1u);
    EXPECT_EQ(st.in_flight, 0u);
    this->expect_balanced();
}

// Closed wins over a completion that comes after close(): the op ended as closed, once.
TYPED_TEST(Conformance, CloseThenReadyCancelEndsTheOpOnlyAsClosed) {
    record rec;
    const op_token t = this->arm_ok(8, direction::read, rec);
    this->close(8);
    ASSERT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::closed);
    const cancel_status s = this->cancel(t, outcome::ready);
    if (!this->reg.hands_off()) {
        EXPECT_EQ(s, cancel_status::stale);
    }
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::closed);
    const registry_stats st = this->reg.stats();
    EXPECT_EQ(st.closed, 1u);
    EXPECT_EQ(st.completed, 0u);
    EXPECT_EQ(st.in_flight, 0u);
    this->expect_balanced();
}

TYPED_TEST(Conformance, CancelAfterCompletionIsStale) {
    record rec;
    const op_token t = this->arm_ok(6, direction::read, rec);
    this->reg.dispatch(this->tok(6), readiness::readable);
    const cancel_status s = this->cancel(t);
    if (!this->reg.hands_off()) {
        EXPECT_EQ(s, cancel_status::stale);
    }
    EXPECT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::ready);
    EXPECT_EQ(this->reg.stats().cancelled, 0u);
}

TYPED_TEST(Conformance, TokenOfAnEndedOpNeverReachesTheNextOpOnTheSameSlot) {
    record first, second;
    const op_token old = this->arm_ok(7, direction::read, first);
    this->reg.dispatch(this->tok(7), readiness::readable);
    const op_token fresh = this->arm_ok(7, direction::read, second);
    EXPECT_EQ(old.slot(), fresh.slot());
    EXPECT_NE(old.generation(), fresh.generation());
    this->cancel(old);
    EXPECT_EQ(second.calls, 0) << "a stale op token cancelled the newer op";
    EXPECT_EQ(this->reg.dispatch(this->tok(7), readiness::readable), 1u);
    EXPECT_EQ(second.calls, 1);
    EXPECT_EQ(second.last.result, outcome::ready);
    EXPECT_EQ(second.last.token, fresh);
}

TYPED_TEST(Conformance, CloseEndsPendingOpsWithClosedAndBumpsTheGeneration) {
    record rd, wr;
    this->arm_ok(8, direction::read, rd);
    this->arm_ok(8, direction::write, wr);
    const fd_token before = this->tok(8);
    this->close(8);
    EXPECT_EQ(rd.calls, 1);
    EXPECT_EQ(wr.calls, 1);
    EXPECT_EQ(rd.last.result, outcome::closed);
    EXPECT_EQ(wr.last.result, outcome::closed);
    const fd_token after = this->tok(8);
    EXPECT_EQ(before.slot(), after.slot());
    EXPECT_NE(before.generation(), after.generation());
    EXPECT_EQ(this->reg.stats().closed, 2u);
}

TYPED_TEST(Conformance, StaleEventAfterCloseAndFdReuseResolvesToNothing) {
    record old_op, new_op;
    this->arm_ok(9, direction::read, old_op);
    const fd_token old_fd = this->tok(9);  // what the kernel still carries in its batch
    this->close(9);                        // ... the fd is closed, and the number reused:
    const op_token fresh = this->arm_ok(9, direction::read, new_op);
    const fd_token new_fd = this->tok(9);
    ASSERT_NE(old_fd, new_fd);

    EXPECT_EQ(this->reg.dispatch(old_fd, readiness::readable), 0u);
    EXPECT_EQ(new_op.calls, 0) << "an event of the old fd lifetime reached the new op";
    EXPECT_EQ(this->reg.stats().stale_dropped, 1u);
    EXPECT_EQ(old_op.calls, 1);
    EXPECT_EQ(old_op.last.result, outcome::closed);

    EXPECT_EQ(this->reg.dispatch(new_fd, readiness::readable), 1u);
    EXPECT_EQ(new_op.calls, 1);
    EXPECT_EQ(new_op.last.token, fresh);
}

TYPED_TEST(Conformance, RoundTripsThroughTheKernelsSixtyFourBits) {
    record rec;
    const op_token t = this->arm_ok(10, direction::write, rec);
    // What epoll_event.data.u64 / io_uring user_data / kevent.udata carry back.
    const std::uint64_t carried = this->tok(10).to_u64();
    EXPECT_EQ(this->reg.dispatch(fd_token::from_u64(carried), readiness::writable), 1u);
    EXPECT_EQ(rec.last.token.to_u64(), t.to_u64());
}

TYPED_TEST(Conformance, BusyDirectionIsReportedAndTheFirstOpIsUnharmed) {
    record first, second;
    const op_token t = this->arm_ok(11, direction::read, first);
    auto again = this->reg.arm(11, direction::read, recorder(second));
    if (this->reg.hands_off()) {
        // The owner sees the clash: the second op ends there with error/busy.
        ASSERT_TRUE(again.ok());
        this->reg.apply_handed_off();
        ASSERT_EQ(second.calls, 1);
        EXPECT_EQ(second.last.result, outcome::error);
        EXPECT_EQ(second.last.error, errc::busy);
        EXPECT_EQ(this->reg.stats().errors, 1u);
    } else {
        ASSERT_FALSE(again.ok());
        EXPECT_EQ(again.error(), errc::busy);
        EXPECT_EQ(second.calls, 0) << "a refused op's callback must not run";
        EXPECT_EQ(this->reg.stats().failures, 1u);
    }
    EXPECT_EQ(this->reg.dispatch(this->tok(11), readiness::readable), 1u);
    EXPECT_EQ(first.calls, 1);
    EXPECT_EQ(first.last.token, t);
    EXPECT_EQ(first.last.result, outcome::ready);
}

TYPED_TEST(Conformance, FdOutOfRangeIsReported) {
    record rec;
    const int too_big = static_cast<int>(this->reg.config().max_fds);
    for (const int fd : {-1, too_big}) {
        auto t = this->reg.arm(fd, direction::read, recorder(rec));
        ASSERT_FALSE(t.ok());
        EXPECT_EQ(t.error(), errc::fd_out_of_range);
        EXPECT_EQ(this->reg.token_of(fd).error(), errc::fd_out_of_range);
        EXPECT_EQ(this->reg.close(fd), errc::fd_out_of_range);
    }
    this->reg.apply_handed_off();
    EXPECT_EQ(rec.calls, 0);
    EXPECT_EQ(this->reg.stats().failures, 2u);
    EXPECT_EQ(this->reg.stats().armed, 0u);
    // An event naming an fd the registry never had is stale, not a crash.
    EXPECT_EQ(
        this->reg.dispatch(fd_token{static_cast<std::uint32_t>(too_big), 0}, readiness::readable),
        0u);
    EXPECT_EQ(this->reg.stats().stale_dropped, 1u);
}

TYPED_TEST(Conformance, FullRegistryIsReportedNeverDropped) {
    if (!this->reg.bounded_pending())
        GTEST_SKIP() << this->reg.name() << " has a place for every (fd, direction): it is never"
                     << " full (EveryFdAndDirectionMayBePendingAtOnce checks that place)";
    TypeParam reg{registry_config{.max_fds = 8, .max_pending = 2}};
    record a, b, c;
    ASSERT_TRUE(reg.arm(0, direction::read, recorder(a)).ok());
    ASSERT_TRUE(reg.arm(1, direction::read, recorder(b)).ok());
    auto t = reg.arm(2, direction::read, recorder(c));
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error(), errc::full);
    EXPECT_EQ(reg.stats().failures, 1u);
    reg.apply_handed_off();
    EXPECT_EQ(reg.dispatch(reg.token_of(0).value(), readiness::readable), 1u);
    EXPECT_EQ(reg.dispatch(reg.token_of(1).value(), readiness::readable), 1u);
    EXPECT_EQ(a.calls + b.calls, 2);
    EXPECT_EQ(c.calls, 0);
    // Room again once an op ended.
    EXPECT_TRUE(reg.arm(2, direction::read, recorder(c)).ok());
}

// Every strategy holds an op on every (fd, direction) at once; a further arm of a pending
// (fd, direction) is busy, and every pending op is still there. (max_pending leaves a bounded
// strategy room for the two refused arms' records; the fd-indexed ones ignore it.)
TYPED_TEST(Conformance, EveryFdAndDirectionMayBePendingAtOnce) {
    TypeParam reg{registry_config{.max_fds = 2, .max_pending = 6}};
    record recs[4], extra;
    for (int fd = 0; fd < 2; ++fd)
        for (const direction d : {direction::read, direction::write})
            ASSERT_TRUE(reg.arm(fd, d, recorder(recs[fd * 2 + static_cast<int>(d)])).ok());
    reg.apply_handed_off();
    for (int fd = 0; fd < 2; ++fd) {
        auto t = reg.arm(fd, direction::write, recorder(extra));
        if (reg.hands_off()) {
            // The owner finds it busy when it applies the arm (registry.hpp, arm).
            ASSERT_TRUE(t.ok()) << to_string(t.error());
        } else {
            ASSERT_FALSE(t.ok());
            EXPECT_EQ(t.error(), errc::busy);
        }
    }
    reg.apply_handed_off();
    for (int fd = 0; fd < 2; ++fd)
        EXPECT_EQ(
            reg.dispatch(reg.token_of(fd).value(), readiness::readable | readiness::writable),
            2u);
    for (const record& r : recs) EXPECT_EQ(r.calls, 1);
    if (reg.hands_off()) {
        EXPECT_EQ(extra.calls, 2);
        EXPECT_EQ(extra.last.result, outcome::error);
        EXPECT_EQ(extra.last.error, errc::busy);
    } else {
        EXPECT_EQ(extra.calls, 0);
    }
}

TYPED_TEST(Conformance, CallbackMayReArmTheSameSlot) {
    int calls = 0;
    TypeParam& reg = this->reg;
    callback again = [&calls](const completion&) { ++calls; };
    auto t = reg.arm(12, direction::read, [&reg, &calls, &again](const completion& c) {
        ++calls;
        auto r = reg.arm(c.fd, c.dir, std::move(again));
        EXPECT_TRUE(r.ok());
    });
    ASSERT_TRUE(t.ok());
    reg.apply_handed_off();
    EXPECT_EQ(reg.dispatch(this->tok(12), readiness::readable), 1u);
    EXPECT_EQ(calls, 1);
    reg.apply_handed_off();
    EXPECT_EQ(reg.dispatch(this->tok(12), readiness::readable), 1u);
    EXPECT_EQ(calls, 2);
}

TYPED_TEST(Conformance, StatsAddUp) {
    record r[6], refused;
    const op_token a = this->arm_ok(0, direction::read, r[0]);
    this->arm_ok(0, direction::write, r[1]);
    this->arm_ok(1, direction::read, r[2]);
    const op_token d = this->arm_ok(2, direction::read, r[3]);
    this->arm_ok(3, direction::read, r[4]);
    this->arm_ok(4, direction::write, r[5]);
    EXPECT_FALSE(this->reg.arm(99, direction::read, recorder(refused)).ok());

    this->reg.dispatch(this->tok(0), readiness::readable);    // ready: r0
    this->cancel(a);                                          // stale: nothing
    this->close(0);                                           // closed: r1
    this->cancel(d);                                          // cancelled: r3
    this->reg.dispatch(this->tok(1), readiness::error);       // error: r2
    this->reg.dispatch(fd_token{0, 0}, readiness::readable);  // stale event: dropped
    this->expect_balanced();

    const registry_stats s = this->reg.stats();
    EXPECT_EQ(s.armed, 6u);
    EXPECT_EQ(s.completed, 1u);
    EXPECT_EQ(s.closed, 1u);
    EXPECT_EQ(s.cancelled, 1u);
    EXPECT_EQ(s.errors, 1u);
    EXPECT_EQ(s.timed_out, 0u);
    EXPECT_EQ(s.failures, 1u);
    EXPECT_EQ(s.stale_dropped, 1u);
    EXPECT_EQ(s.in_flight, 2u);  // r4, r5
    int ended = 0;
    for (const record& x : r) {
        EXPECT_LE(x.calls, 1);
        ended += x.calls;
    }
    EXPECT_EQ(ended, 4);

    this->close(3);
    this->close(4);
    EXPECT_EQ(this->reg.stats().in_flight, 0u);
    this->expect_balanced();
}

TYPED_TEST(Conformance, ReadinessBeforeArmIsKeptForTheNextArm) {
    record rec;
    // The edge fires while nothing waits (between the user's EAGAIN and its arm).
    EXPECT_EQ(this->reg.dispatch(this->tok(13), readiness::readable), 0u);
    const op_token t = this->arm_ok(13, direction::read, rec);  // ends at once
    ASSERT_EQ(rec.calls, 1);
    EXPECT_EQ(rec.last.result, outcome::ready);
    EXPECT_EQ(rec.last.token, t);
    // The latch is consumed: the next arm waits.
    record next;
    this->arm_ok(13, direction::read, next);
    EXPECT_EQ(next.calls, 0);
    EXPECT_EQ(this->reg.stats().completed, 1u);
    EXPECT_EQ(this->reg.stats().in_flight, 1u);
    this->expect_balanced();
}

TYPED_TEST(Conformance, LatchedReadinessIsPerDirection) {
    record rd, wr;
    this->reg.dispatch(this->tok(14), readiness::writable);
    this->arm_ok(14, direction::read, rd);
    this->arm_ok(14, direction::write, wr);
    EXPECT_EQ(rd.calls, 0);
    EXPECT_EQ(wr.calls, 1);
}

TYPED_TEST(Conformance, CloseForgetsLatchedReadiness) {
    record rec;
    this->reg.dispatch(this->tok(15), readiness::readable);
    this->close(15);
    this->arm_ok(15, direction::read, rec);
    EXPECT_EQ(rec.calls, 0) << "readiness of a closed fd lifetime reached the next one";
}

TYPED_TEST(Conformance, StaleEventLatchesNothing) {
    record rec;
    const fd_token old = this->tok(15);
    this->close(15);
    this->reg.dispatch(old, readiness::readable);
    this->arm_ok(15, direction::read, rec);
    EXPECT_EQ(rec.calls, 0);
    EXPECT_EQ(this->reg.stats().stale_dropped, 1u);
}

TYPED_TEST(Conformance, ReportsItsName) {
    const std::string_view n = this->reg.name();
    bool known = false;
    for (const std::string_view name : registry_names()) known = known || name == n;
    EXPECT_TRUE(known) << n;
}
