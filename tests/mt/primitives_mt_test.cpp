// SPDX-License-Identifier: Apache-2.0
// Concurrency tests of object_pool and intrusive_mpsc_queue, with exact oracles: a slot
// handed out twice, a node lost or delivered twice, or a reordering within one producer is a
// failure, and under ThreadSanitizer a missing happens-before edge is a reported race on
// the plain payload fields. Work is sized by a fixed count (smaller under TSan), not time.
#include <opreg/intrusive_mpsc_queue.hpp>
#include <opreg/object_pool.hpp>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <latch>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace {

#if defined(__SANITIZE_THREAD__)
constexpr bool kUnderTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kUnderTsan = true;
#else
constexpr bool kUnderTsan = false;
#endif
#else
constexpr bool kUnderTsan = false;
#endif

// TSan slows every atomic down several times; fewer rounds keep its run well under a
// second on two cores, and at this size it still reports a release or acquire weakened
// to relaxed in either primitive.
constexpr int kScale = kUnderTsan ? 4 : 10;

struct tracked {
    tracked(std::uint32_t o, std::uint32_t s) : owner{o}, seq{s} {}
    // Plain fields on purpose: if the pool handed this slot to a second thread, TSan reports
    // the race and the owner check below sees the other thread's values.
    std::uint32_t owner;
    std::uint32_t seq;
};

TEST(ObjectPoolMt, ChurnNeverHandsOutALiveSlot) {
    constexpr int kThreads = 6;
    constexpr int kOpsPerThread = 10'000 * kScale;
    constexpr int kHeldPerThread = 4;
    // Fewer slots than the threads can hold together, so exhaustion is hit under contention.
    constexpr std::size_t kCapacity = 16;

    opreg::object_pool<tracked> pool(kCapacity);
    // The in-use flag sits beside the pool, indexed by slot, not inside the object: a second
    // construction in a live slot would reset a flag kept inside it and hide the bug.
    auto in_use = std::make_unique<std::atomic<int>[]>(kCapacity);
    std::atomic<int> handed_out_twice{0};
    std::atomic<int> overwritten{0};
    std::atomic<long> exhausted{0};
    std::latch start(kThreads);

    auto worker = [&](std::uint32_t me) {
        std::array<tracked*, kHeldPerThread> held{};
        start.arrive_and_wait();
        for (int i = 0; i < kOpsPerThread; ++i) {
            tracked*& mine = held[static_cast<std::size_t>(i % kHeldPerThread)];
            if (mine != nullptr) {
                if (mine->owner != me) {
                    overwritten.fetch_add(1, std::memory_order_relaxed);
                }
                // relaxed: the flag must add no synchronization of its own, so that only the
                // pool's ordering stands between two owners of a slot.
                if (in_use[pool.index_of(mine)].exchange(0, std::memory_order_relaxed) != 1) {
                    handed_out_twice.fetch_add(1, std::memory_order_relaxed);
                }
                pool.destroy(mine);
                mine = nullptr;
                continue;
            }
            mine = pool.try_create(me, static_cast<std::uint32_t>(i));
            if (mine == nullptr) {
                exhausted.fetch_add(1, std::memory_order_relaxed);
                continue;
            }
            // relaxed: as above.
            if (in_use[pool.index_of(mine)].exchange(1, std::memory_order_relaxed) != 0) {
                handed_out_twice.fetch_add(1, std::memory_order_relaxed);
            }
        }
        for (tracked* p : held) {
            if (p != nullptr) {
                in_use[pool.index_of(p)].exchange(0, std::memory_order_relaxed);
                pool.destroy(p);
            }
        }
    };

    std::vector<std::thread> threads;
    for (std::uint32_t t = 0; t < kThreads; ++t) {
        threads.emplace_back(worker, t);
    }
    for (std::thread& t : threads) {
        t.join();
    }

    EXPECT_EQ(handed_out_twice.load(), 0);
    EXPECT_EQ(overwritten.load(), 0);
    EXPECT_EQ(pool.size_approx(), 0u);
    RecordProperty("exhausted", static_cast<int>(exhausted.load()));

    // Every slot made it back to the free list: capacity objects fit again, all distinct.
    std::set<tracked*> again;
    for (std::size_t i = 0; i < kCapacity; ++i) {
        tracked* p = pool.try_create(0u, 0u);
        ASSERT_NE(p, nullptr) << "slot " << i << " was lost";
        EXPECT_TRUE(again.insert(p).second);
    }
    EXPECT_EQ(pool.try_create(0u, 0u), nullptr);
    for (tracked* p : again) {
        pool.destroy(p);
    }
}

struct message {
    // Written by the producer just before push, read by the consumer after try_pop: TSan
    // checks that the queue's release/acquire pair publishes them.
    std::uint32_t producer = 0;
    std::uint32_t seq = 0;
    opreg::mpsc_hook hook;
};
using message_queue = opreg::intrusive_mpsc_queue<message, &message::hook>;

TEST(IntrusiveMpscQueueMt, EveryNodeExactlyOnceInPerProducerOrder) {
    constexpr std::uint32_t kProducers = 4;
    constexpr std::uint32_t kPerProducer = 5'000 * kScale;
    constexpr std::size_t kTotal = std::size_t{kProducers} * kPerProducer;

    std::vector<message> nodes(kTotal);  // preallocated: nothing allocates while threads run
    message_queue queue;
    std::latch start(kProducers + 1);

    std::vector<std::thread> producers;
    for (std::uint32_t p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            start.arrive_and_wait();
            for (std::uint32_t s = 0; s < kPerProducer; ++s) {
                message& m = nodes[std::size_t{p} * kPerProducer + s];
                m.producer = p;
                m.seq = s;
                queue.push(&m);
            }
        });
    }

    std::vector<unsigned char> seen(kTotal, 0);
    std::array<std::int64_t, kProducers> last_seq{};
    last_seq.fill(-1);
    std::size_t received = 0;
    std::size_t duplicates = 0;
    std::size_t out_of_order = 0;
    std::size_t bad_tags = 0;
    start.arrive_and_wait();
    while (received < kTotal) {
        message* m = queue.try_pop();
        if (m == nullptr) {
            std::this_thread::yield();  // empty, or a producer is between exchange and link
            continue;
        }
        if (m->producer >= kProducers || m->seq >= kPerProducer ||
            m != &nodes[std::size_t{m->producer} * kPerProducer + m->seq]) {
            ++bad_tags;
            ++received;
            continue;
        }
        const std::size_t index = std::size_t{m->producer} * kPerProducer + m->seq;
        if (seen[index]++ != 0) {
            ++duplicates;
        }
        if (static_cast<std::int64_t>(m->seq) <= last_seq[m->producer]) {
            ++out_of_order;
        }
        last_seq[m->producer] = m->seq;
        ++received;
    }
    for (std::thread& t : producers) {
        t.join();
    }

    EXPECT_EQ(bad_tags, 0u);
    EXPECT_EQ(duplicates, 0u);
    EXPECT_EQ(out_of_order, 0u);
    for (std::size_t i = 0; i < kTotal; ++i) {
        ASSERT_EQ(seen[i], 1u) << "node " << i << " (producer " << i / kPerProducer << ", seq "
                               << i % kPerProducer << ")";
    }
    EXPECT_EQ(queue.try_pop(), nullptr);
    EXPECT_TRUE(queue.empty_approx());
}

struct pooled_message {
    pooled_message(std::uint32_t p, std::uint32_t s) : producer{p}, seq{s} {}
    std::uint32_t producer;
    std::uint32_t seq;
    opreg::mpsc_hook hook;
};
using pooled_queue = opreg::intrusive_mpsc_queue<pooled_message, &pooled_message::hook>;

// The shape a reactor uses: other threads create an operation from a pool and hand it over
// through the queue; the owning thread consumes it and frees the slot, which a producer
// then reuses. Creation and destruction happen on different threads for every object.
TEST(PrimitivesMt, PoolSlotsHandedThroughQueueAndFreedByConsumer) {
    constexpr std::uint32_t kProducers = 3;
    constexpr std::uint32_t kPerProducer = 5'000 * kScale;
    constexpr std::size_t kCapacity = 32;  // small, so producers wait on exhaustion

    opreg::object_pool<pooled_message> pool(kCapacity);
    pooled_queue queue;
    std::latch start(kProducers + 1);

    std::vector<std::thread> producers;
    for (std::uint32_t p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            start.arrive_and_wait();
            for (std::uint32_t s = 0; s < kPerProducer; ++s) {
                pooled_message* m;
                while ((m = pool.try_create(p, s)) == nullptr) {
                    std::this_thread::yield();  // every slot is in the queue or the consumer
                }
                queue.push(m);
            }
        });
    }

    std::array<std::int64_t, kProducers> last_seq{};
    last_seq.fill(-1);
    std::size_t received = 0;
    std::size_t out_of_order = 0;
    start.arrive_and_wait();
    while (received < std::size_t{kProducers} * kPerProducer) {
        pooled_message* m = queue.try_pop();
        if (m == nullptr) {
            std::this_thread::yield();
            continue;
        }
        if (m->producer >= kProducers ||
            static_cast<std::int64_t>(m->seq) <= last_seq[m->producer]) {
            ++out_of_order;
        } else {
            last_seq[m->producer] = m->seq;
        }
        pool.destroy(m);
        ++received;
    }
    for (std::thread& t : producers) {
        t.join();
    }

    EXPECT_EQ(out_of_order, 0u);
    for (std::uint32_t p = 0; p < kProducers; ++p) {
        EXPECT_EQ(last_seq[p], std::int64_t{kPerProducer} - 1) << "producer " << p;
    }
    EXPECT_EQ(pool.size_approx(), 0u);
    EXPECT_TRUE(queue.empty_approx());
}

}  // namespace
