// SPDX-License-Identifier: Apache-2.0
// opreg/detail/fd_record_map.hpp — the registry operations of the map strategies, written
// once. sharded_map and tbb_map keep one fd_ops record per fd and differ only in how a
// thread reaches that record under a lock; every transition (fd_ops) and every step around
// it (range checks, stats, running callbacks after the lock is released) is here.
//
// Store (CRTP) provides, each running f under the lock that guards fd's record and
// returning what f returns:
//   with_record(fd, f)     f(fd_ops&): the record, created on first use (an fd seen for
//                          the first time gets one, started at first_generation(), so
//                          readiness can be latched for its first arm);
//   with_existing(fd, f)   f(fd_ops*): the record, or nullptr if fd has none yet.
#pragma once

#include <opreg/config.hpp>

#include <cassert>
#include <cstdint>

#include <opreg/detail/common.hpp>
#include <opreg/detail/fd_ops.hpp>
#include <opreg/detail/stat_counters.hpp>
#include <opreg/registry.hpp>
#include <opreg/types.hpp>

namespace opreg::detail {

template <class Store>
class fd_record_map {
public:
    static constexpr bool hands_off() noexcept { return false; }
    static constexpr bool bounded_pending() noexcept { return false; }

    [[nodiscard]] const registry_config& config() const noexcept { return cfg_; }

    [[nodiscard]] result<fd_token> token_of(int fd) {
        if (!fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        const std::uint64_t gen = store().with_existing(
            fd, [this](fd_ops* r) { return r != nullptr ? r->fd_gen : first_generation(); });
        return fd_token{static_cast<std::uint32_t>(fd), gen};
    }

    [[nodiscard]] result<op_token> arm(int fd, direction d, callback cb) {
        if (!fd_in_range(fd, cfg_)) return stats_.refuse(errc::fd_out_of_range);
        if (!cb) return stats_.refuse(errc::no_callback);
        taken_ops ready_now;
        const result<op_token> r = store().with_record(
            fd, [&](fd_ops& rec) { return rec.arm(fd, d, std::move(cb), ready_now); });
        return conclude_arm(stats_, r, ready_now);
    }

    cancel_status cancel(op_token t, outcome why = outcome::cancelled) {
        assert(cancel_outcome_valid(why));
        const int fd = op_fd(t);
        if (!fd_in_range(fd, cfg_)) return cancel_status::stale;
        taken_ops taken;
        taken.result = why;
        if (!store().with_existing(fd,
                                   [&](fd_ops* r) { return r != nullptr && r->take(t, taken); }))
            return cancel_status::stale;
        conclude(stats_, taken);
        return cancel_status::done;
    }

    // One lock for the event, unless it ends the read op and also finds a write op pending:
    // the write direction is then taken in a second lock, after the read callback ran, so
    // that a read callback which closes the fd ends the write op as closed (closed wins).
    std::size_t dispatch(fd_token t, readiness ev) {
        const int fd = static_cast<int>(t.slot());
        if (!fd_in_range(fd, cfg_)) return stats_.drop_stale();
        const delivery plan = plan_delivery(ev);
        taken_ops first;
        bool write_later = false;
        const bool current = store().with_record(fd, [&](fd_ops& r) {
            const auto rd = r.take_ready(t, plan, direction::read, first);
            if (rd == fd_ops::delivered::stale) return false;
            if (rd == fd_ops::delivered::taken && plan.dir[1] && r.pending(direction::write))
                write_later = true;
            else
                (void)r.take_ready(t, plan, direction::write, first);
            return true;
        });
        if (!current) return stats_.drop_stale();
        std::size_t ended = conclude(stats_, first);
        if (write_later) {
            taken_ops second;
            store().with_record(
                fd, [&](fd_ops& r) { (void)r.take_ready(t, plan, direction::write, second); });
            ended += conclude(stats_, second);
        }
        return ended;
    }

    errc close(int fd) {
        if (!fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        taken_ops taken;
        store().with_record(fd, [&](fd_ops& r) { r.take_all_for_close(fd, taken); });
        conclude(stats_, taken);
        return errc::ok;
    }

    std::size_t apply_handed_off() noexcept { return 0; }

    [[nodiscard]] registry_stats stats() const noexcept { return stats_.snapshot(); }

protected:
    explicit fd_record_map(registry_config cfg) : cfg_{validated(cfg)} {}
    // Pending ops are destroyed without running their callbacks (registry.hpp).
    ~fd_record_map() = default;

    // Where a new record's generations start.
    [[nodiscard]] std::uint64_t first_generation() const noexcept {
        return cfg_.first_generation & token_generation_mask;
    }

private:
    Store& store() noexcept { return static_cast<Store&>(*this); }

    registry_config cfg_;
    stat_counters stats_;
};

}  // namespace opreg::detail
