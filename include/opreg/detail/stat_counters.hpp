// SPDX-License-Identifier: Apache-2.0
// opreg/detail/stat_counters.hpp — registry statistics without a shared hot counter.
//
// Each thread adds to one of `shard_count` cache-line-sized shards chosen once per thread,
// so threads on different shards never write the same line; reading sums the shards.
// The first shard_count - 1 threads of the process each own a shard outright: they are its
// only writer, so they add with a relaxed load and store (no locked instruction on the
// hot path). Later threads share the last shard and add with fetch_add.
// All accesses are relaxed: counters order nothing, and a snapshot taken while other
// threads work is approximate by contract (exact at quiescence, which the tests and the
// stress oracle read after joining their threads: the join provides the happens-before).
#pragma once

#include <opreg/config.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <opreg/detail/cache_line.hpp>
#include <opreg/registry.hpp>
#include <opreg/types.hpp>

namespace opreg::detail {

enum class stat : std::uint8_t {
    armed,
    completed,
    cancelled,
    closed,
    timed_out,
    errors,
    stale_dropped,
    failures,
    count
};

[[nodiscard]] constexpr stat stat_for(outcome o) noexcept {
    switch (o) {
        case outcome::ready: return stat::completed;
        case outcome::cancelled: return stat::cancelled;
        case outcome::closed: return stat::closed;
        case outcome::timed_out: return stat::timed_out;
        case outcome::error: return stat::errors;
    }
    return stat::errors;
}

// A small per-thread number, handed out once per thread (relaxed: it only needs to be
// distinct-ish, shards are correct whichever threads share them).
[[nodiscard]] inline std::size_t this_thread_shard_seed() noexcept {
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t seed = next.fetch_add(1, std::memory_order_relaxed);
    return seed;
}

class stat_counters {
public:
    static constexpr std::size_t shard_count = 16;  // power of 2

    void add(stat s, std::uint64_t n = 1) noexcept {
        const std::size_t seed = this_thread_shard_seed();
        // relaxed: a statistic; see the header comment.
        if (seed < shard_count - 1) {  // this thread is the shard's only writer
            std::atomic<std::uint64_t>& c = shards_[seed].v[static_cast<std::size_t>(s)];
            c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        } else {
            shards_[shard_count - 1].v[static_cast<std::size_t>(s)].fetch_add(
                n, std::memory_order_relaxed);
        }
    }

    // An arm refused with `e`: counted, and returned as the arm's result.
    result<op_token> refuse(errc e) noexcept {
        add(stat::failures);
        return e;
    }

    // An event whose fd_token is stale: counted; it ended nothing.
    std::size_t drop_stale() noexcept {
        add(stat::stale_dropped);
        return 0;
    }

    [[nodiscard]] registry_stats snapshot() const noexcept {
        std::uint64_t sum[static_cast<std::size_t>(stat::count)] = {};
        for (const shard& sh : shards_)
            for (std::size_t i = 0; i < static_cast<std::size_t>(stat::count); ++i)
                sum[i] += sh.v[i].load(std::memory_order_relaxed);
        registry_stats s;
        s.armed = sum[static_cast<std::size_t>(stat::armed)];
        s.completed = sum[static_cast<std::size_t>(stat::completed)];
        s.cancelled = sum[static_cast<std::size_t>(stat::cancelled)];
        s.closed = sum[static_cast<std::size_t>(stat::closed)];
        s.timed_out = sum[static_cast<std::size_t>(stat::timed_out)];
        s.errors = sum[static_cast<std::size_t>(stat::errors)];
        s.stale_dropped = sum[static_cast<std::size_t>(stat::stale_dropped)];
        s.failures = sum[static_cast<std::size_t>(stat::failures)];
        const std::uint64_t ended = s.ended();
        s.in_flight = s.armed > ended ? s.armed - ended : 0;
        return s;
    }

private:
    struct alignas(cache_line) shard {
        std::atomic<std::uint64_t> v[static_cast<std::size_t>(stat::count)] = {};
    };
    shard shards_[shard_count];
};

}  // namespace opreg::detail
