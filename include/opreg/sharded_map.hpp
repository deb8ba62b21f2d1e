// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/sharded_map.hpp — striped mutexes over hash shards. Blocking.
///
/// WHAT: the fix most people reach for first. fds are spread over `shard_count` shards by
/// fd % shard_count (fds are dense small integers, so neighbours land on different shards);
/// each shard is a std::mutex and an std::unordered_map<int, per-fd record> on its own cache
/// line. The op's callback is stored inline in the record: no allocation per op once an
/// fd has been seen (the map allocates one node the first time an fd is armed).
///
/// GUARANTEES: blocking, but two threads contend only when their fds share a shard.
/// Callbacks run after the shard lock is released. Ignores max_pending (bounded_pending()
/// is false): every (fd, direction) has a place in its fd's record.
///
/// WHEN TO USE: a drop-in for a single global mutex when fds are sparse or keys are not fds.
#pragma once

#include <opreg/config.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include <opreg/detail/cache_line.hpp>
#include <opreg/detail/fd_ops.hpp>
#include <opreg/detail/fd_record_map.hpp>
#include <opreg/registry.hpp>

namespace opreg {

/// 64 striped mutexes over hash shards; each fd's record holds its ops' callbacks inline.
class sharded_map : public detail::fd_record_map<sharded_map> {
public:
    /// The strategy's name, as make_registry() and the programs' --registry flag spell it.
    static constexpr std::string_view name() noexcept { return "sharded_map"; }
    /// How many shards (and mutexes) the fds hash to.
    static constexpr std::size_t shard_count = 64;

    /// An empty registry; throws std::invalid_argument for a configuration out of range
    /// (registry_config).
    explicit sharded_map(registry_config cfg = {})
        : fd_record_map{cfg},
          shards_{std::make_unique<shard[]>(shard_count)} {}

private:
    friend class detail::fd_record_map<sharded_map>;

    struct alignas(detail::cache_line) shard {
        std::mutex mutex;
        std::unordered_map<int, detail::fd_ops> fds;
    };

    shard& shard_for(int fd) noexcept {
        return shards_[static_cast<std::size_t>(fd) % shard_count];
    }

    template <class F>
    decltype(auto) with_record(int fd, F&& f) {
        shard& sh = shard_for(fd);
        std::lock_guard<std::mutex> lock(sh.mutex);
        auto [it, fresh] = sh.fds.try_emplace(fd);
        if (fresh) it->second.start_at(first_generation());
        return f(it->second);
    }

    template <class F>
    decltype(auto) with_existing(int fd, F&& f) {
        shard& sh = shard_for(fd);
        std::lock_guard<std::mutex> lock(sh.mutex);
        auto it = sh.fds.find(fd);
        return f(it == sh.fds.end() ? nullptr : &it->second);
    }

    std::unique_ptr<shard[]> shards_;
};

static_assert(registry<sharded_map>);

}  // namespace opreg
