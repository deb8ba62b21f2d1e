// SPDX-License-Identifier: Apache-2.0
// object_pool allocates once, in its constructor; intrusive_mpsc_queue never allocates.
// Checked by counting calls to the global operator new (alloc_counter.cpp) around the code
// under test, with no test assertion inside the counted region.
#include "alloc_counter.hpp"

#include <opreg/intrusive_mpsc_queue.hpp>
#include <opreg/object_pool.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <latch>
#include <optional>
#include <thread>
#include <vector>

namespace {

struct op {
    op(std::uint32_t p, std::uint32_t s) : producer{p}, seq{s} {}
    std::uint32_t producer;
    std::uint32_t seq;
    opreg::mpsc_hook hook;
};
using op_queue = opreg::intrusive_mpsc_queue<op, &op::hook>;

struct alignas(64) over_aligned_op {
    std::uint64_t word = 0;
};

TEST(PrimitivesAlloc, CounterSeesOperatorNew) {
    // Through a volatile pointer, so that the compiler cannot elide the new/delete pair.
    static int* volatile sink = nullptr;
    const std::size_t before = opreg_test::allocations();
    sink = new int(7);
    const std::size_t after = opreg_test::allocations();
    delete sink;
    EXPECT_EQ(after - before, 1u) << "the replacement operator new is not linked in";
}

TEST(PrimitivesAlloc, PoolConstructionIsOneAllocation) {
    std::optional<opreg::object_pool<op>> pool;
    const std::size_t before = opreg_test::allocations();
    pool.emplace(4096);
    const std::size_t after = opreg_test::allocations();
    EXPECT_EQ(after - before, 1u);

    std::optional<opreg::object_pool<over_aligned_op>> aligned_pool;
    const std::size_t aligned_before = opreg_test::allocations();
    aligned_pool.emplace(100);
    const std::size_t aligned_after = opreg_test::allocations();
    EXPECT_EQ(aligned_after - aligned_before, 1u);
}

TEST(PrimitivesAlloc, PoolCreateDestroyNeverAllocates) {
    constexpr std::size_t kCapacity = 64;
    constexpr int kCycles = 100'000;
    opreg::object_pool<op> pool(kCapacity);
    std::vector<op*> held;
    held.reserve(kCapacity);
    std::size_t exhausted = 0;

    const std::size_t before = opreg_test::allocations();
    for (int i = 0; i < kCycles; ++i) {
        op* p = pool.try_create(0u, static_cast<std::uint32_t>(i));
        pool.destroy(p);
    }
    // Fill to exhaustion and drain: the exhaustion path must not allocate either.
    for (std::size_t i = 0; i <= kCapacity; ++i) {
        if (op* p = pool.try_create(1u, 0u)) {
            held.push_back(p);
        } else {
            ++exhausted;
        }
    }
    for (op* p : held) {
        pool.destroy(p);
    }
    const std::size_t after = opreg_test::allocations();

    EXPECT_EQ(after - before, 0u);
    EXPECT_EQ(held.size(), kCapacity);
    EXPECT_EQ(exhausted, 1u);
    EXPECT_EQ(pool.size_approx(), 0u);
}

TEST(PrimitivesAlloc, QueueConstructionAndPushPopNeverAllocate) {
    std::deque<op> nodes;  // nodes are not movable (the hook is atomic)
    for (std::uint32_t s = 0; s < 16; ++s) {
        nodes.emplace_back(0u, s);
    }
    std::size_t popped = 0;

    const std::size_t before = opreg_test::allocations();
    {
        op_queue queue;
        for (int round = 0; round < 10'000; ++round) {
            for (op& n : nodes) {
                queue.push(&n);
            }
            while (queue.try_pop() != nullptr) {
                ++popped;
            }
        }
    }
    const std::size_t after = opreg_test::allocations();

    EXPECT_EQ(after - before, 0u);
    EXPECT_EQ(popped, 10'000u * nodes.size());
}

// Producers create from the pool and push, the consumer pops and destroys, on different
// threads: the counter is global, so any allocation on any thread in the loop shows.
TEST(PrimitivesAlloc, CrossThreadHandOffNeverAllocates) {
    constexpr std::uint32_t kProducers = 2;
    constexpr std::uint32_t kPerProducer = 50'000;
    opreg::object_pool<op> pool(64);
    op_queue queue;
    std::latch start(1);

    std::vector<std::thread> producers;
    producers.reserve(kProducers);
    for (std::uint32_t p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            start.wait();
            for (std::uint32_t s = 0; s < kPerProducer; ++s) {
                op* m;
                while ((m = pool.try_create(p, s)) == nullptr) {
                    std::this_thread::yield();
                }
                queue.push(m);
            }
        });
    }

    // Counted from here: the threads exist, and each std::thread allocated its state in
    // its constructor, on this thread, before this reading.
    const std::size_t before = opreg_test::allocations();
    start.count_down();
    std::uint32_t received = 0;
    while (received < kProducers * kPerProducer) {
        if (op* m = queue.try_pop()) {
            pool.destroy(m);
            ++received;
        } else {
            std::this_thread::yield();
        }
    }
    for (std::thread& t : producers) {
        t.join();
    }
    const std::size_t after = opreg_test::allocations();

    EXPECT_EQ(after - before, 0u);
    EXPECT_EQ(pool.size_approx(), 0u);
}

}  // namespace
