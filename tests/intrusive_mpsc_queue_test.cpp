// SPDX-License-Identifier: Apache-2.0
// Whitebox tests of opreg::intrusive_mpsc_queue, single-threaded; producers on several
// threads are exercised in tests/mt/primitives_mt_test.cpp.
#include <opreg/intrusive_mpsc_queue.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

// The hook is deliberately not the first member, so that hook -> node conversion is tested
// with a non-zero offset.
struct job {
    explicit job(int v = 0) : value{v} {}
    std::string label = "job";
    int value;
    opreg::mpsc_hook hook;
};
using job_queue = opreg::intrusive_mpsc_queue<job, &job::hook>;

// A polymorphic node type with an abstract base: the common "task with virtual run()" shape.
struct task {
    virtual ~task() = default;
    virtual int run() = 0;
    opreg::mpsc_hook hook;
};
struct add_task final : task {
    explicit add_task(int v) : v{v} {}
    int run() override { return v + 1; }
    int v;
};
using task_queue = opreg::intrusive_mpsc_queue<task, &task::hook>;

TEST(IntrusiveMpscQueue, EmptyQueuePopsNullptr) {
    job_queue q;
    EXPECT_TRUE(q.empty_approx());
    EXPECT_EQ(q.try_pop(), nullptr);
    EXPECT_EQ(q.try_pop(), nullptr);
    EXPECT_TRUE(q.empty_approx());
}

TEST(IntrusiveMpscQueue, SingleThreadIsFifo) {
    std::vector<job> jobs(10);  // nodes are not movable (the hook is atomic)
    for (int i = 0; i < 10; ++i) {
        jobs[static_cast<std::size_t>(i)].value = i;
    }
    job_queue q;
    for (job& j : jobs) {
        q.push(&j);
    }
    EXPECT_FALSE(q.empty_approx());
    for (int i = 0; i < 10; ++i) {
        job* j = q.try_pop();
        ASSERT_NE(j, nullptr) << "pop " << i;
        EXPECT_EQ(j, &jobs[static_cast<std::size_t>(i)]);
        EXPECT_EQ(j->value, i);
        EXPECT_EQ(j->label, "job");
    }
    EXPECT_EQ(q.try_pop(), nullptr);
    EXPECT_TRUE(q.empty_approx());
}

TEST(IntrusiveMpscQueue, SingleNodeRoundTrips) {
    job a{1};
    job_queue q;
    q.push(&a);
    EXPECT_FALSE(q.empty_approx());
    EXPECT_EQ(q.try_pop(), &a);
    EXPECT_TRUE(q.empty_approx());
    EXPECT_EQ(q.try_pop(), nullptr);
}

TEST(IntrusiveMpscQueue, NodeCanBePushedAgainAfterPop) {
    job a{1};
    job b{2};
    job_queue q;
    for (int round = 0; round < 5; ++round) {
        q.push(&a);
        q.push(&b);
        EXPECT_EQ(q.try_pop(), &a) << "round " << round;
        q.push(&a);  // a is out of the queue again, so it may go back in behind b
        EXPECT_EQ(q.try_pop(), &b) << "round " << round;
        EXPECT_EQ(q.try_pop(), &a) << "round " << round;
        EXPECT_EQ(q.try_pop(), nullptr) << "round " << round;
    }
}

TEST(IntrusiveMpscQueue, InterleavedPushAndPopKeepOrder) {
    std::vector<job> jobs(100);  // nodes are not movable (the hook is atomic)
    for (int i = 0; i < 100; ++i) {
        jobs[static_cast<std::size_t>(i)].value = i;
    }
    job_queue q;
    int next_push = 0;
    int next_pop = 0;
    // Push two, pop one, repeatedly, so the stub is skipped and re-inserted at every
    // position the queue's state machine has; then drain.
    while (next_push < 100) {
        q.push(&jobs[static_cast<std::size_t>(next_push++)]);
        if (next_push < 100) {
            q.push(&jobs[static_cast<std::size_t>(next_push++)]);
        }
        job* j = q.try_pop();
        ASSERT_NE(j, nullptr);
        EXPECT_EQ(j->value, next_pop++);
    }
    while (job* j = q.try_pop()) {
        EXPECT_EQ(j->value, next_pop++);
    }
    EXPECT_EQ(next_pop, 100);
    EXPECT_TRUE(q.empty_approx());
}

TEST(IntrusiveMpscQueue, DrainAndRefillRepeatedly) {
    std::vector<job> jobs(3);
    job_queue q;
    for (int round = 0; round < 4; ++round) {
        for (job& j : jobs) {
            j.value = round;
            q.push(&j);
        }
        for (job& expected : jobs) {
            job* j = q.try_pop();
            ASSERT_EQ(j, &expected) << "round " << round;
            EXPECT_EQ(j->value, round);
        }
        EXPECT_EQ(q.try_pop(), nullptr);
        EXPECT_TRUE(q.empty_approx());
    }
}

TEST(IntrusiveMpscQueue, AbstractNodeTypeThroughItsBase) {
    add_task a{1};
    add_task b{10};
    task_queue q;
    q.push(&a);
    q.push(&b);
    task* t = q.try_pop();
    ASSERT_EQ(t, &a);
    EXPECT_EQ(t->run(), 2);
    t = q.try_pop();
    ASSERT_EQ(t, &b);
    EXPECT_EQ(t->run(), 11);
    EXPECT_EQ(q.try_pop(), nullptr);
}

}  // namespace
