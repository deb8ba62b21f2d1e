// opreg/tbb_map.hpp — oneTBB concurrent_hash_map with accessors. Blocking (per-bucket locks).
//
// WHAT: the "use a concurrent map" fix from the original analysis, done with the container
// that supports it: tbb::concurrent_hash_map keyed by fd, whose accessor holds a
// reader-writer lock on one element while we read or change that fd's record.
// (The analysis proposed tbb::concurrent_unordered_map; it has no concurrent erase, so a
// pending-op table built on it must never remove an op, or must lock around erase.)
//
// GUARANTEES: not lock-free. find/insert take per-bucket and per-element locks inside
// oneTBB; threads on different fds rarely contend. Records are never erased (an fd keeps
// its generations), so the map grows to the number of distinct fds seen. Callbacks run
// after the accessor is released. Ignores max_pending (bounded_pending() is false).
//
// ALLOCATOR: std::allocator rather than oneTBB's scalable allocator, whose internals draw a
// ThreadSanitizer report; the per-fd node is allocated once per fd, not per op.
#pragma once

#include <cassert>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include <tbb/concurrent_hash_map.h>

#include <opreg/detail/common.hpp>
#include <opreg/detail/fd_ops.hpp>
#include <opreg/detail/stat_counters.hpp>
#include <opreg/registry.hpp>
#include <opreg/types.hpp>

namespace opreg {

class tbb_map {
public:
    static constexpr std::string_view name() noexcept { return "tbb_map"; }
    static constexpr bool hands_off() noexcept { return false; }
    static constexpr bool bounded_pending() noexcept { return false; }

    explicit tbb_map(registry_config cfg = {}) : cfg_{detail::validated(cfg)} {}

    [[nodiscard]] const registry_config& config() const noexcept { return cfg_; }

    [[nodiscard]] result<fd_token> token_of(int fd) const {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        map_type::const_accessor acc;
        const std::uint32_t gen = map_.find(acc, fd) ? acc->second.fd_gen : 0;
        return fd_token{static_cast<std::uint32_t>(fd), gen};
    }

    [[nodiscard]] result<op_token> arm(int fd, direction d, callback cb) {
        if (!detail::fd_in_range(fd, cfg_)) return stats_.refuse(errc::fd_out_of_range);
        result<op_token> r = errc::busy;
        detail::taken_ops ready_now;
        {
            map_type::accessor acc;  // write lock on fd's record until the scope ends
            map_.insert(acc, fd);
            r = acc->second.arm(fd, d, std::move(cb), ready_now);
        }
        return detail::conclude_arm(stats_, r, ready_now);
    }

    cancel_status cancel(op_token t, outcome why = outcome::cancelled) {
        assert(detail::cancel_outcome_valid(why));
        const int fd = op_fd(t);
        if (!detail::fd_in_range(fd, cfg_)) return cancel_status::stale;
        detail::taken_ops taken;
        taken.result = why;
        {
            map_type::accessor acc;
            if (!map_.find(acc, fd) || !acc->second.take(t, taken)) return cancel_status::stale;
        }
        detail::conclude(stats_, taken);
        return cancel_status::done;
    }

    std::size_t dispatch(fd_token t, readiness ev) {
        const int fd = static_cast<int>(t.slot());
        if (!detail::fd_in_range(fd, cfg_)) return stats_.drop_stale();
        detail::taken_ops taken;
        {
            map_type::accessor acc;
            map_.insert(acc, fd);  // a first-seen fd gets its record, to latch readiness
            if (!acc->second.take_ready(t, detail::plan_delivery(ev), taken)) return stats_.drop_stale();
        }
        return detail::conclude(stats_, taken);
    }

    errc close(int fd) {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        detail::taken_ops taken;
        {
            map_type::accessor acc;
            map_.insert(acc, fd);
            acc->second.take_all_for_close(fd, taken);
        }
        detail::conclude(stats_, taken);
        return errc::ok;
    }

    std::size_t poll() noexcept { return 0; }

    [[nodiscard]] registry_stats stats() const noexcept { return stats_.snapshot(); }

private:
    using map_type = tbb::concurrent_hash_map<int, detail::fd_ops, tbb::tbb_hash_compare<int>,
                                              std::allocator<std::pair<const int, detail::fd_ops>>>;

    registry_config cfg_;
    mutable map_type map_;
    detail::stat_counters stats_;
};

static_assert(registry<tbb_map>);

} // namespace opreg
