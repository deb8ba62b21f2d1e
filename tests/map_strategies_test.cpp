// SPDX-License-Identifier: Apache-2.0
// Whitebox tests of the map strategies: sharding, record lifetime, the baseline's bound.
#include <gtest/gtest.h>

#include <opreg/mutex_map.hpp>
#include <opreg/sharded_map.hpp>
#if OPREG_WITH_TBB
#include <opreg/tbb_map.hpp>
#endif

#include "support/strategies.hpp"

using namespace opreg;
using opreg_test::record;
using opreg_test::recorder;

TEST(ShardedMap, FdsThatShareAShardStayIndependent) {
    sharded_map reg{registry_config{.max_fds = 256}};
    const int a = 5, b = 5 + static_cast<int>(sharded_map::shard_count);
    record ra, rb;
    ASSERT_TRUE(reg.arm(a, direction::read, recorder(ra)).ok());
    ASSERT_TRUE(reg.arm(b, direction::read, recorder(rb)).ok());
    ASSERT_EQ(reg.close(b), errc::ok);
    EXPECT_EQ(rb.calls, 1);
    EXPECT_EQ(ra.calls, 0);
    EXPECT_EQ(reg.token_of(a).value().generation(), 0u);
    EXPECT_EQ(reg.dispatch(reg.token_of(a).value(), readiness::readable), 1u);
    EXPECT_EQ(ra.calls, 1);
}

#if OPREG_WITH_TBB  // tbb_map is built only with oneTBB
TEST(TbbMap, GenerationsSurviveAcrossManyFds) {
    tbb_map reg{registry_config{.max_fds = 1024}};
    for (int round = 0; round < 3; ++round)
        for (int fd = 0; fd < 1024; ++fd) ASSERT_EQ(reg.close(fd), errc::ok);
    for (int fd = 0; fd < 1024; ++fd) ASSERT_EQ(reg.token_of(fd).value().generation(), 3u);
}

TEST(TbbMap, UnseenFdHasGenerationZeroAndAcceptsItsFirstEvent) {
    tbb_map reg{registry_config{.max_fds = 8}};
    EXPECT_EQ(reg.dispatch(reg.token_of(6).value(), readiness::readable), 0u);
    EXPECT_EQ(reg.stats().stale_dropped, 0u);
}
#endif

TEST(MutexMap, PendingBoundCountsOpsNotFds) {
    mutex_map reg{registry_config{.max_fds = 8, .max_pending = 3}};
    record r[4];
    ASSERT_TRUE(reg.arm(1, direction::read, recorder(r[0])).ok());
    ASSERT_TRUE(reg.arm(1, direction::write, recorder(r[1])).ok());
    ASSERT_TRUE(reg.arm(2, direction::read, recorder(r[2])).ok());
    EXPECT_EQ(reg.arm(2, direction::write, recorder(r[3])).error(), errc::full);
    ASSERT_EQ(reg.close(1), errc::ok);
    EXPECT_TRUE(reg.arm(2, direction::write, recorder(r[3])).ok());
    EXPECT_EQ(reg.stats().in_flight, 2u);
}
