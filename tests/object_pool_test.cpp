// SPDX-License-Identifier: Apache-2.0
// Whitebox tests of opreg::object_pool, single-threaded; the concurrent churn test is in
// tests/mt/primitives_mt_test.cpp.
#include <opreg/object_pool.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace opreg::detail {

// The steps of a pop, taken apart so that a test can stall a popper between its load of
// the head and its CAS, and the tag moved as n successful CASes would move it.
template <class T>
struct pool_test_access<object_pool<T>> {
    using pool = object_pool<T>;
    struct stalled_pop {
        std::uint64_t head;  // the head word the popper loaded
        std::uint32_t next;  // the top slot's link it read
    };
    static stalled_pop begin_pop(pool& p) {
        const std::uint64_t h = p.head_.load();
        return {h, p.link_to_index(p.slots_[p.index_in(h)].next.load())};
    }
    // The popper's CAS after the stall: true if it took the slot.
    static bool finish_pop(pool& p, stalled_pop s) {
        std::uint64_t expected = s.head;
        return p.head_.compare_exchange_strong(expected, p.pack(p.tag_of(s.head) + 1, s.next));
    }
    static void advance_tag(pool& p, std::uint64_t n) {
        const std::uint64_t h = p.head_.load();
        p.head_.store(p.pack(p.tag_of(h) + n, p.index_in(h)));
    }
    static std::uint64_t tag(const pool& p) { return p.tag_of(p.head_.load()); }
};

}  // namespace opreg::detail

namespace {

using pool_access = opreg::detail::pool_test_access<opreg::object_pool<int>>;

// The tag takes every bit the index does not need.
TEST(ObjectPoolTag, TakesTheBitsTheIndexDoesNotNeed) {
    EXPECT_EQ(opreg::object_pool<int>(0).tag_bits(), 63);
    EXPECT_EQ(opreg::object_pool<int>(3).tag_bits(), 62);
    EXPECT_EQ(opreg::object_pool<int>(4096).tag_bits(), 51);    // the reactor's post pool
    EXPECT_EQ(opreg::object_pool<int>(131072).tag_bits(), 46);  // 2 * the default max_fds
}

// A popper stalled between its load of the head and its CAS while exactly 2^32 CASes
// succeed, with its slot back on top: with a 32-bit tag the CAS succeeds and installs a
// stale link, and the next create hands out a slot that is still live. The tag is wider
// now: the CAS fails.
TEST(ObjectPoolTag, APopperStalledFor2To32CasesFailsItsCas) {
    opreg::object_pool<int> pool(2);                    // free list: 0 -> 1
    const auto stalled = pool_access::begin_pop(pool);  // reads head = 0, next = 1
    int* a = pool.try_create(1);                        // pops 0
    int* b = pool.try_create(2);                        // pops 1: live
    pool.destroy(a);  // pushes 0: the head is 0 again, its link now the end
    pool_access::advance_tag(pool, (std::uint64_t{1} << 32) - 3);  // 2^32 CASes in all
    EXPECT_FALSE(pool_access::finish_pop(pool, stalled))
        << "a popper stalled for 2^32 CASes took a slot with a stale link";
    int* c = pool.try_create(3);
    ASSERT_NE(c, nullptr);
    EXPECT_NE(c, b) << "a live slot was handed out twice";
    EXPECT_EQ(pool.try_create(4), nullptr);
    pool.destroy(b);
    pool.destroy(c);
    EXPECT_EQ(pool.size_approx(), 0u);
}

// The tag wraps at the top of its width without touching the index, and the pool goes on
// handing out distinct slots.
TEST(ObjectPoolTag, WrapsAtTheTopOfItsWidth) {
    opreg::object_pool<int> pool(4);
    const std::uint64_t top = (std::uint64_t{1} << pool.tag_bits()) - 1;
    pool_access::advance_tag(pool, top - 2);
    EXPECT_EQ(pool_access::tag(pool), top - 2);
    for (int round = 0; round < 4; ++round) {
        std::set<int*> live;
        for (int i = 0; i < 4; ++i) {
            int* p = pool.try_create(i);
            ASSERT_NE(p, nullptr);
            ASSERT_TRUE(live.insert(p).second) << "slot handed out twice at round " << round;
        }
        EXPECT_EQ(pool.try_create(9), nullptr);
        for (int* p : live) pool.destroy(p);
    }
    EXPECT_LT(pool_access::tag(pool), 64u) << "the tag did not wrap within its field";
    EXPECT_EQ(pool.size_approx(), 0u);
}

struct pending_op {
    int fd = -1;
    bool in_use = false;
};

struct counted {
    static inline int constructed = 0;
    static inline int destroyed = 0;
    explicit counted(int v) : value{v} { ++constructed; }
    ~counted() { ++destroyed; }
    counted(const counted&) = delete;
    counted& operator=(const counted&) = delete;
    int value;
};

struct throws_when_negative {
    explicit throws_when_negative(int v) : value{v} {
        if (v < 0) {
            throw std::runtime_error("negative");
        }
    }
    int value;
};

struct alignas(64) over_aligned {
    std::uint64_t word = 0;
};

TEST(ObjectPool, CreateConstructsInPlaceAndDestroyFreesTheSlot) {
    opreg::object_pool<std::string> pool(4);
    EXPECT_EQ(pool.capacity(), 4u);
    EXPECT_EQ(pool.size_approx(), 0u);

    std::string* s = pool.try_create(5, 'x');
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(*s, "xxxxx");
    EXPECT_EQ(pool.size_approx(), 1u);

    pool.destroy(s);
    EXPECT_EQ(pool.size_approx(), 0u);
}

TEST(ObjectPool, ExhaustionReturnsNullptrAndRecoversAfterDestroy) {
    constexpr std::size_t kCapacity = 8;
    opreg::object_pool<int> pool(kCapacity);
    std::vector<int*> live;
    for (std::size_t i = 0; i < kCapacity; ++i) {
        int* p = pool.try_create(static_cast<int>(i));
        ASSERT_NE(p, nullptr) << "slot " << i;
        live.push_back(p);
    }
    EXPECT_EQ(pool.try_create(99), nullptr);
    EXPECT_EQ(pool.try_create(99), nullptr) << "exhaustion must be stable, not wrap around";
    EXPECT_EQ(pool.size_approx(), kCapacity);

    int* freed = live[3];
    pool.destroy(freed);
    int* again = pool.try_create(42);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again, freed) << "the only free slot is the one just destroyed";
    EXPECT_EQ(*again, 42);
    live[3] = again;
    EXPECT_EQ(pool.try_create(99), nullptr);

    for (int* p : live) {
        pool.destroy(p);
    }
    EXPECT_EQ(pool.size_approx(), 0u);
}

TEST(ObjectPool, ZeroCapacityAlwaysReportsExhaustion) {
    opreg::object_pool<int> pool(0);
    EXPECT_EQ(pool.capacity(), 0u);
    EXPECT_EQ(pool.try_create(1), nullptr);
}

TEST(ObjectPool, CapacityThatDoesNotFitTheIndexThrowsLengthError) {
    EXPECT_THROW(opreg::object_pool<char>(std::size_t{0xFFFFFFFFu}), std::length_error);
}

TEST(ObjectPool, IndexOfAtAndOwnsRoundTrip) {
    constexpr std::size_t kCapacity = 16;
    opreg::object_pool<pending_op> pool(kCapacity);
    std::vector<pending_op*> live;
    std::set<std::uint32_t> indices;
    for (std::size_t i = 0; i < kCapacity; ++i) {
        pending_op* p = pool.try_create();
        ASSERT_NE(p, nullptr);
        EXPECT_TRUE(pool.owns(p));
        const std::uint32_t index = pool.index_of(p);
        EXPECT_LT(index, kCapacity);
        EXPECT_EQ(pool.at(index), p);
        indices.insert(index);
        live.push_back(p);
    }
    EXPECT_EQ(indices.size(), kCapacity) << "every live object has its own index";

    // The index is the slot's, not the object's: a new object in the same slot keeps it.
    const std::uint32_t index = pool.index_of(live[5]);
    pool.destroy(live[5]);
    live[5] = pool.try_create();
    ASSERT_NE(live[5], nullptr);
    EXPECT_EQ(pool.index_of(live[5]), index);

    pending_op outside;
    EXPECT_FALSE(pool.owns(&outside));
    EXPECT_FALSE(pool.owns(nullptr));
    auto* inside_but_misaligned =
        reinterpret_cast<const pending_op*>(reinterpret_cast<const char*>(pool.at(0)) + 1);
    EXPECT_FALSE(pool.owns(inside_but_misaligned));
    const auto stride =
        reinterpret_cast<std::uintptr_t>(pool.at(1)) - reinterpret_cast<std::uintptr_t>(pool.at(0));
    const auto* past_the_end = reinterpret_cast<const pending_op*>(
        reinterpret_cast<std::uintptr_t>(pool.at(kCapacity - 1)) + stride);
    EXPECT_FALSE(pool.owns(past_the_end)) << "where a slot after the last one would be";

    for (pending_op* p : live) {
        pool.destroy(p);
    }
}

TEST(ObjectPool, ThrowingConstructorReturnsTheSlot) {
    opreg::object_pool<throws_when_negative> pool(1);
    EXPECT_THROW((void)pool.try_create(-1), std::runtime_error);
    EXPECT_EQ(pool.size_approx(), 0u);

    // The single slot is free again, not leaked by the failed construction.
    throws_when_negative* p = pool.try_create(7);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->value, 7);
    pool.destroy(p);
}

TEST(ObjectPool, NonTrivialDestructorRunsExactlyOnce) {
    counted::constructed = 0;
    counted::destroyed = 0;
    {
        opreg::object_pool<counted> pool(4);
        counted* a = pool.try_create(1);
        counted* b = pool.try_create(2);
        ASSERT_NE(a, nullptr);
        ASSERT_NE(b, nullptr);
        EXPECT_EQ(counted::constructed, 2);
        EXPECT_EQ(counted::destroyed, 0);
        pool.destroy(a);
        EXPECT_EQ(counted::destroyed, 1);
        pool.destroy(b);
        EXPECT_EQ(counted::destroyed, 2);
    }
    // The pool's own destruction must not run ~T again on slots that held objects.
    EXPECT_EQ(counted::constructed, 2);
    EXPECT_EQ(counted::destroyed, 2);
}

TEST(ObjectPool, OverAlignedTypeGetsAlignedSlots) {
    opreg::object_pool<over_aligned> pool(3);
    std::vector<over_aligned*> live;
    for (int i = 0; i < 3; ++i) {
        over_aligned* p = pool.try_create();
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignof(over_aligned), 0u);
        live.push_back(p);
    }
    for (over_aligned* p : live) {
        pool.destroy(p);
    }
}

// At the size the original analysis gave its pool (10,000, a pool whose allocation N+1
// wrapped onto slot 0 while it was still pending), every address handed out while live is
// distinct, allocation N+1 is reported as exhaustion, and only a freed slot comes back,
// holding a freshly constructed object.
TEST(ObjectPool, NeverHandsOutALiveSlotAtTheAnalysisSize) {
    constexpr int kSize = 10000;

    opreg::object_pool<pending_op> pool(kSize);
    std::set<const pending_op*> live;
    std::vector<pending_op*> order;
    for (int i = 0; i < kSize; ++i) {
        pending_op* p = pool.try_create();
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(live.insert(p).second) << "address " << p << " handed out while live";
        p->in_use = true;
        order.push_back(p);
    }
    EXPECT_EQ(pool.try_create(), nullptr) << "allocation N+1 is reported as exhaustion";

    pool.destroy(order.front());
    live.erase(order.front());
    pending_op* reused = pool.try_create();
    ASSERT_NE(reused, nullptr);
    EXPECT_EQ(live.count(reused), 0u) << "only a freed slot comes back";
    EXPECT_FALSE(reused->in_use) << "and it holds a freshly constructed object";
    order.front() = reused;

    for (pending_op* p : order) {
        pool.destroy(p);
    }
    EXPECT_EQ(pool.size_approx(), 0u);
}

}  // namespace
