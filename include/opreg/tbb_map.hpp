// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/tbb_map.hpp — oneTBB concurrent_hash_map with accessors. Blocking (per-bucket locks).
///
/// WHAT: the "use a concurrent map" fix from the original analysis, done with the container
/// that supports it: tbb::concurrent_hash_map keyed by fd, whose accessor holds a
/// reader-writer lock on one element while we read or change that fd's record.
/// (The analysis proposed tbb::concurrent_unordered_map; it has no concurrent erase, so a
/// pending-op table built on it must never remove an op, or must lock around erase.)
///
/// GUARANTEES: not lock-free. find/insert take per-bucket and per-element locks inside
/// oneTBB; threads on different fds rarely contend. Records are never erased (an fd keeps
/// its generations), so the map grows to the number of distinct fds seen. Callbacks run
/// after the accessor is released. Ignores max_pending (bounded_pending() is false).
///
/// ALLOCATOR: std::allocator rather than oneTBB's scalable allocator, whose internals draw a
/// ThreadSanitizer report; the per-fd node is allocated once per fd, not per op.
#pragma once

#include <opreg/config.hpp>

#include <memory>
#include <string_view>
#include <utility>

#include <tbb/concurrent_hash_map.h>

#include <opreg/detail/fd_ops.hpp>
#include <opreg/detail/fd_record_map.hpp>
#include <opreg/registry.hpp>

namespace opreg {

/// oneTBB's concurrent_hash_map with per-element locks (accessors); needs OPREG_WITH_TBB and
/// opreg::tbb.
class tbb_map : public detail::fd_record_map<tbb_map> {
public:
    /// The strategy's name, as make_registry() and the programs' --registry flag spell it.
    static constexpr std::string_view name() noexcept { return "tbb_map"; }

    /// An empty registry; throws std::invalid_argument for a configuration out of range
    /// (registry_config).
    explicit tbb_map(registry_config cfg = {}) : fd_record_map{cfg} {}

private:
    friend class detail::fd_record_map<tbb_map>;

    using map_type = tbb::concurrent_hash_map<int, detail::fd_ops, tbb::tbb_hash_compare<int>,
                                              std::allocator<std::pair<const int, detail::fd_ops>>>;

    template <class F>
    decltype(auto) with_record(int fd, F&& f) {
        map_type::accessor acc;  // write lock on fd's record until it goes out of scope
        if (map_.insert(acc, fd)) acc->second.start_at(first_generation());  // a new record
        return f(acc->second);
    }

    template <class F>
    decltype(auto) with_existing(int fd, F&& f) {
        // A write lock: cancel changes the record. token_of takes it too, once per fd
        // lifetime, where a const_accessor (read lock) would do.
        map_type::accessor acc;
        return f(map_.find(acc, fd) ? &acc->second : nullptr);
    }

    map_type map_;
};

static_assert(registry<tbb_map>);

}  // namespace opreg
