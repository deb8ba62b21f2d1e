// SPDX-License-Identifier: Apache-2.0
// Zero heap allocations per operation for slot_array and mpsc_queue (also through
// any_registry), and for sharded_map and tbb_map once an fd has been armed, counted with the
// replacement operator new (alloc_counter.cpp) around loops that contain no test assertion. The baseline is counted too, to show what it pays.
#include "alloc_counter.hpp"

#include <cstddef>
#include <utility>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>
#if OPREG_WITH_TBB
#include <opreg/tbb_map.hpp>
#endif

using namespace opreg;

namespace {

constexpr int cycles = 10000;

// One cycle: arm read and write on a few fds, end them by dispatch, cancel and close.
// Returns the callbacks run, so the loop cannot be optimised away.
template <class R>
std::size_t churn(R& reg, int rounds) {
    std::size_t ran = 0;
    auto count = [&ran](const completion&) { ++ran; };
    for (int i = 0; i < rounds; ++i) {
        const int fd = i % 8;
        auto r = reg.arm(fd, direction::read, count);
        auto w = reg.arm(fd, direction::write, count);
        reg.apply_handed_off();
        reg.dispatch(reg.token_of(fd).value(), readiness::readable);
        if (w.ok()) reg.cancel(w.value());
        reg.apply_handed_off();
        if (i % 4 == 0) {
            (void)reg.arm(fd, direction::read, count);
            reg.close(fd);
            reg.apply_handed_off();
        }
        (void)r;
    }
    return ran;
}

template <class R>
std::pair<std::size_t, std::size_t> allocations_per_churn(R& reg) {
    churn(reg, 64);  // warm up: first touches of thread-local stat shards and the like
    const std::size_t before = opreg_test::allocations();
    const std::size_t ran = churn(reg, cycles);
    const std::size_t after = opreg_test::allocations();
    return {after - before, ran};
}

}  // namespace

TEST(RegistryAlloc, SlotArrayAllocatesNothingPerOp) {
    slot_array reg{registry_config{.max_fds = 8}};
    const auto [allocs, ran] = allocations_per_churn(reg);
    EXPECT_EQ(allocs, 0u);
    EXPECT_GE(ran, std::size_t{2} * cycles);
}

TEST(RegistryAlloc, MpscQueueAllocatesNothingPerOp) {
    mpsc_queue reg{registry_config{.max_fds = 8}};
    const auto [allocs, ran] = allocations_per_churn(reg);
    EXPECT_EQ(allocs, 0u);
    EXPECT_GE(ran, std::size_t{2} * cycles);
}

TEST(RegistryAlloc, AnyRegistryAddsNoAllocationPerOp) {
    for (const std::string_view name : {"slot_array", "mpsc_queue"}) {
        any_registry reg = make_registry(name, registry_config{.max_fds = 8});
        const auto [allocs, ran] = allocations_per_churn(reg);
        EXPECT_EQ(allocs, 0u) << name;
        EXPECT_GE(ran, std::size_t{2} * cycles) << name;
    }
}

// The map strategies keep an fd's record once it exists (a close bumps its generation), and
// hold the callback inline in it: after the warm-up's first arm of each fd, nothing.
TEST(RegistryAlloc, ShardedMapAllocatesNothingAfterAnFdsFirstArm) {
    sharded_map reg{registry_config{.max_fds = 8}};
    const auto [allocs, ran] = allocations_per_churn(reg);
    EXPECT_EQ(allocs, 0u);
    EXPECT_GE(ran, std::size_t{2} * cycles);
}

#if OPREG_WITH_TBB
TEST(RegistryAlloc, TbbMapAllocatesNothingAfterAnFdsFirstArm) {
    tbb_map reg{registry_config{.max_fds = 8}};  // its records through std::allocator: counted
    const auto [allocs, ran] = allocations_per_churn(reg);
    EXPECT_EQ(allocs, 0u);
    EXPECT_GE(ran, std::size_t{2} * cycles);
}
#endif

// The baseline as the original had it: an op object and a std::function on the heap for
// every arm. Counted so that the table in bench/README.md can say what it costs.
TEST(RegistryAlloc, MutexMapBaselineAllocatesForEveryArm) {
    mutex_map reg{registry_config{.max_fds = 8}};
    const auto [allocs, ran] = allocations_per_churn(reg);
    EXPECT_GE(allocs, std::size_t{2} * 2 * cycles);  // >= 2 per arm, >= 2 arms per cycle
    EXPECT_GE(ran, std::size_t{2} * cycles);
}
