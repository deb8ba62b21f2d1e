// opreg/sharded_map.hpp — striped mutexes over hash shards. Blocking.
//
// WHAT: the fix most people reach for first. fds are spread over `shard_count` shards by
// fd % shard_count (fds are dense small integers, so neighbours land on different shards);
// each shard is a std::mutex and an std::unordered_map<int, per-fd record> on its own cache
// line. The op's callback is stored inline in the record: no allocation per op once an
// fd has been seen (the map allocates one node the first time an fd is armed).
//
// GUARANTEES: blocking, but two threads contend only when their fds share a shard.
// Callbacks run after the shard lock is released. Ignores max_pending (bounded_pending()
// is false): every (fd, direction) has a place in its fd's record.
//
// WHEN TO USE: a drop-in for a single global mutex when fds are sparse or keys are not fds.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include <opreg/detail/common.hpp>
#include <opreg/detail/fd_ops.hpp>
#include <opreg/detail/stat_counters.hpp>
#include <opreg/registry.hpp>
#include <opreg/types.hpp>

namespace opreg {

class sharded_map {
public:
    static constexpr std::string_view name() noexcept { return "sharded_map"; }
    static constexpr bool hands_off() noexcept { return false; }
    static constexpr bool bounded_pending() noexcept { return false; }
    static constexpr std::size_t shard_count = 64;

    explicit sharded_map(registry_config cfg = {})
        : cfg_{detail::validated(cfg)}, shards_{std::make_unique<shard[]>(shard_count)} {}

    [[nodiscard]] const registry_config& config() const noexcept { return cfg_; }

    [[nodiscard]] result<fd_token> token_of(int fd) {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        shard& sh = shard_for(fd);
        std::lock_guard<std::mutex> lock(sh.mutex);
        auto it = sh.fds.find(fd);
        return fd_token{static_cast<std::uint32_t>(fd),
                               it == sh.fds.end() ? 0u : it->second.fd_gen};
    }

    [[nodiscard]] result<op_token> arm(int fd, direction d, callback cb) {
        if (!detail::fd_in_range(fd, cfg_)) return stats_.refuse(errc::fd_out_of_range);
        shard& sh = shard_for(fd);
        result<op_token> r = errc::busy;
        detail::taken_ops ready_now;
        {
            std::lock_guard<std::mutex> lock(sh.mutex);
            r = sh.fds[fd].arm(fd, d, std::move(cb), ready_now);
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
            shard& sh = shard_for(fd);
            std::lock_guard<std::mutex> lock(sh.mutex);
            auto it = sh.fds.find(fd);
            if (it == sh.fds.end() || !it->second.take(t, taken)) return cancel_status::stale;
        }
        detail::conclude(stats_, taken);
        return cancel_status::done;
    }

    std::size_t dispatch(fd_token t, readiness ev) {
        const int fd = static_cast<int>(t.slot());
        if (!detail::fd_in_range(fd, cfg_)) return stats_.drop_stale();
        detail::taken_ops taken;
        {
            shard& sh = shard_for(fd);
            std::lock_guard<std::mutex> lock(sh.mutex);
            // operator[]: an fd seen for the first time gets its record here, so that
            // readiness can be latched for its first arm.
            if (!sh.fds[fd].take_ready(t, detail::plan_delivery(ev), taken)) return stats_.drop_stale();
        }
        return detail::conclude(stats_, taken);
    }

    errc close(int fd) {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        detail::taken_ops taken;
        {
            shard& sh = shard_for(fd);
            std::lock_guard<std::mutex> lock(sh.mutex);
            sh.fds[fd].take_all_for_close(fd, taken);
        }
        detail::conclude(stats_, taken);
        return errc::ok;
    }

    std::size_t poll() noexcept { return 0; }

    [[nodiscard]] registry_stats stats() const noexcept { return stats_.snapshot(); }

private:
    struct alignas(64) shard {
        std::mutex mutex;
        std::unordered_map<int, detail::fd_ops> fds;
    };

    shard& shard_for(int fd) noexcept {
        return shards_[static_cast<std::size_t>(fd) % shard_count];
    }

    registry_config cfg_;
    std::unique_ptr<shard[]> shards_;
    detail::stat_counters stats_;
};

static_assert(registry<sharded_map>);

} // namespace opreg
