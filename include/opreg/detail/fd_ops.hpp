// SPDX-License-Identifier: Apache-2.0
// opreg/detail/fd_ops.hpp — the per-fd record of the map strategies, and the transitions on
// it. The caller holds whatever lock guards the record (a shard mutex, a oneTBB accessor);
// callbacks are moved out into a taken_ops and run after that lock is released.
#pragma once

#include <opreg/config.hpp>

#include <cstdint>
#include <utility>

#include <opreg/detail/common.hpp>
#include <opreg/detail/stat_counters.hpp>
#include <opreg/registry.hpp>
#include <opreg/types.hpp>

namespace opreg::detail {

// Ops taken out of a record under its lock, to be run after it is released. An fd has at
// most two pending ops, so this never allocates.
struct taken_ops {
    struct op {
        op_token token;
        callback cb;
    };
    op ops[2];
    std::size_t count = 0;
    outcome result = outcome::ready;
    bool latched = false;  // ended at arm, from readiness latched before it
    bool hangup = false;   // ended by an event that carried readiness::hangup

    void push(op_token t, callback&& cb) noexcept { ops[count++] = op{t, std::move(cb)}; }

    // Runs the callbacks; returns how many ran.
    std::size_t run() noexcept {
        for (std::size_t i = 0; i < count; ++i)
            invoke(ops[i].cb, make_completion(ops[i].token, result, errc::ok, latched, hangup));
        return count;
    }
};

struct fd_ops {
    // Generations, within token_generation_mask. A new record starts at the registry's
    // registry_config::first_generation (start_at).
    std::uint64_t fd_gen = 0;
    std::uint64_t op_gen[2] = {0, 0};
    bool latched[2] = {false, false};  // readiness arrived with no op pending
    callback cb[2];                    // non-empty: an op is pending in that direction

    void start_at(std::uint64_t first) noexcept {
        fd_gen = op_gen[0] = op_gen[1] = first & token_generation_mask;
    }

    [[nodiscard]] bool pending(direction d) const noexcept {
        return static_cast<bool>(cb[static_cast<int>(d)]);
    }

    // If readiness is latched the op is accepted and moved to `ready_now` (result ready):
    // the caller runs it after releasing the lock. c is not empty (the caller checked).
    [[nodiscard]] result<op_token> arm(int fd, direction d, callback&& c,
                                       taken_ops& ready_now) noexcept {
        const int i = static_cast<int>(d);
        if (cb[i]) return errc::busy;
        const op_token t{op_slot(fd, d), op_gen[i]};
        if (latched[i]) {
            latched[i] = false;
            op_gen[i] = next_generation(op_gen[i]);
            ready_now.result = outcome::ready;
            ready_now.latched = true;
            ready_now.push(t, std::move(c));
            return t;
        }
        cb[i] = std::move(c);
        return t;
    }

    // Takes the op `t` names if it is still pending.
    bool take(op_token t, taken_ops& out) noexcept {
        const int i = static_cast<int>(op_direction(t));
        if (!cb[i] || op_gen[i] != t.generation()) return false;
        take_dir(op_fd(t), op_direction(t), out);
        return true;
    }

    // What a kernel event did to one direction.
    enum class delivered : std::uint8_t { stale, taken, latched, none };

    // The part of a kernel event for direction d: takes its pending op into `out`, or
    // latches the readiness; stale if the event's fd lifetime is not this record's.
    delivered take_ready(fd_token t, const delivery& plan, direction d, taken_ops& out) noexcept {
        if (fd_gen != t.generation()) return delivered::stale;
        if (!plan.dir[static_cast<int>(d)]) return delivered::none;
        out.result = plan.result;
        out.hangup = plan.hangup;
        if (!pending(d)) {
            latched[static_cast<int>(d)] = true;
            return delivered::latched;
        }
        take_dir(static_cast<int>(t.slot()), d, out);
        return delivered::taken;
    }

    // close(): bump the generation, take every pending op.
    void take_all_for_close(int fd, taken_ops& out) noexcept {
        fd_gen = next_generation(fd_gen);
        latched[0] = latched[1] = false;
        out.result = outcome::closed;
        for (const direction d : {direction::read, direction::write})
            if (pending(d)) take_dir(fd, d, out);
    }

private:
    void take_dir(int fd, direction d, taken_ops& out) noexcept {
        const int i = static_cast<int>(d);
        out.push(op_token{op_slot(fd, d), op_gen[i]}, std::move(cb[i]));
        op_gen[i] = next_generation(op_gen[i]);
    }
};

// After the record's lock is released: counts the ops taken and runs their callbacks.
inline std::size_t conclude(stat_counters& stats, taken_ops& taken) noexcept {
    if (taken.count != 0) stats.add(stat_for(taken.result), taken.count);
    return taken.run();
}

// After the record's lock is released: counts an arm (or its refusal) and runs an op that
// found readiness latched, which ended at once, on this thread.
inline result<op_token> conclude_arm(stat_counters& stats, result<op_token> r,
                                     taken_ops& ready_now) noexcept {
    if (!r) return stats.refuse(r.error());
    stats.add(stat::armed);
    conclude(stats, ready_now);
    return r;
}

}  // namespace opreg::detail
