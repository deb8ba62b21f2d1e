// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/mutex_map.hpp — the original design, kept as the baseline. Blocking.
///
/// WHAT: one std::mutex around std::unordered_map<int, std::vector<std::unique_ptr<op>>>,
/// a heap-allocated op and a std::function per operation: the structure the original async
/// server used, reproduced so that every other strategy is measured against it in the same
/// run. Only what the contract requires was added: generations (so stale tokens resolve to
/// nothing), the busy check, the pending bound, the readiness latch, and running callbacks
/// outside the lock (so a callback may re-arm without deadlocking).
///
/// GUARANTEES: blocking. Every call takes the one mutex; every arm allocates (the op, the
/// std::function, and the shared_ptr that lets a move-only opreg::callback live inside a
/// copyable std::function, which costs the same kind of allocation the original paid for
/// its captures). Honours max_pending (bounded_pending() is true).
///
/// WHEN TO USE: as a baseline. Never in a hot path.
#pragma once

#include <opreg/config.hpp>

#include <cassert>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <opreg/detail/common.hpp>
#include <opreg/registry.hpp>
#include <opreg/token.hpp>
#include <opreg/types.hpp>

namespace opreg {

/// The original design, kept as the baseline: one std::mutex around an unordered_map of
/// heap-allocated ops, a std::function per op.
class mutex_map {
public:
    /// The strategy's name, as make_registry() and the programs' --registry flag spell it.
    static constexpr std::string_view name() noexcept { return "mutex_map"; }
    /// Whether arms, cancels and closes from other threads are handed to the owner thread
    /// (registry.hpp, THREADS).
    static constexpr bool hands_off() noexcept { return false; }
    /// Whether pending ops live in bounded storage (registry_config::max_pending).
    static constexpr bool bounded_pending() noexcept { return true; }

    /// An empty registry; throws std::invalid_argument for a configuration out of range
    /// (registry_config).
    explicit mutex_map(registry_config cfg = {}) : cfg_{detail::validated(cfg)} {}

    /// The configuration this registry was built with.
    [[nodiscard]] const registry_config& config() const noexcept { return cfg_; }

    /// The token of fd's current lifetime, which the kernel carries (registry.hpp, Tokens).
    [[nodiscard]] result<fd_token> token_of(int fd) {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        std::lock_guard<std::mutex> lock(ops_mutex_);
        return fd_token{static_cast<std::uint32_t>(fd), gens(fd).fd_gen};
    }

    /// Arms one op on (fd, d) with its callback; the refusals are registry.hpp's (arm).
    [[nodiscard]] result<op_token> arm(int fd, direction d, callback cb) {
        std::unique_lock<std::mutex> lock(ops_mutex_);
        if (!detail::fd_in_range(fd, cfg_)) return refuse(errc::fd_out_of_range);
        if (!cb) return refuse(errc::no_callback);
        auto& ops = pending_ops_[fd];
        for (const auto& op : ops)
            if (op->dir == d) return refuse(errc::busy);
        generations& g = gens(fd);
        std::uint64_t& op_gen = g.op_gen[static_cast<int>(d)];
        if (g.latched[static_cast<int>(d)]) {  // readiness came first: the op ends at once
            g.latched[static_cast<int>(d)] = false;
            const op_token t{op_slot(fd, d), op_gen};
            op_gen = next_generation(op_gen);
            ++stats_.armed;
            ++stats_.completed;
            lock.unlock();
            detail::invoke(cb, detail::latched_completion(t));
            return t;
        }
        if (pending_ >= cfg_.pending_limit()) return refuse(errc::full);
        auto op = std::make_unique<pending_op>();
        op->dir = d;
        op->gen = op_gen;
        op_gen = next_generation(op_gen);
        op->fn = [box = std::make_shared<callback>(std::move(cb))](const completion& c) {
            (*box)(c);
        };
        const op_token t{op_slot(fd, d), op->gen};
        ops.push_back(std::move(op));
        ++pending_;
        ++stats_.armed;
        return t;
    }

    /// Ends the op `t` names with `why` unless a completion won (registry.hpp, cancel).
    cancel_status cancel(op_token t, outcome why = outcome::cancelled) {
        assert(detail::cancel_outcome_valid(why));
        std::unique_ptr<pending_op> op;
        {
            std::lock_guard<std::mutex> lock(ops_mutex_);
            auto it = pending_ops_.find(op_fd(t));
            if (it == pending_ops_.end()) return cancel_status::stale;
            auto& ops = it->second;
            for (auto o = ops.begin(); o != ops.end(); ++o) {
                if ((*o)->dir == op_direction(t) && (*o)->gen == t.generation()) {
                    op = std::move(*o);
                    ops.erase(o);
                    end_locked(why);
                    break;
                }
            }
        }
        if (!op) return cancel_status::stale;
        run(*op, detail::make_completion(t, why));
        return cancel_status::done;
    }

    /// Closed wins (registry.hpp): when the event ends the read op and finds a write op
    /// pending too, the write direction is taken under a second lock, after the read callback
    /// ran, so a read callback that closes the fd ends the write op as closed.
    std::size_t dispatch(fd_token t, readiness ev) {
        const int fd = static_cast<int>(t.slot());
        const detail::delivery plan = detail::plan_delivery(ev);
        std::unique_ptr<pending_op> read_op, write_op;
        bool write_later = false;
        {
            std::lock_guard<std::mutex> lock(ops_mutex_);
            if (!detail::fd_in_range(fd, cfg_) || gens(fd).fd_gen != t.generation()) {
                ++stats_.stale_dropped;
                return 0;
            }
            if (plan.dir[0]) read_op = take_ready_locked(fd, direction::read, plan);
            if (plan.dir[1]) {
                if (read_op && has_pending_locked(fd, direction::write))
                    write_later = true;
                else
                    write_op = take_ready_locked(fd, direction::write, plan);
            }
        }
        std::size_t ended = 0;
        for (auto* op : {&read_op, &write_op}) {
            if (!*op) continue;
            run(**op, completion_of(fd, **op, plan));
            ++ended;
        }
        if (write_later) {
            {
                std::lock_guard<std::mutex> lock(ops_mutex_);
                if (gens(fd).fd_gen == t.generation())  // else close() ended it as closed
                    write_op = take_ready_locked(fd, direction::write, plan);
            }
            if (write_op) {
                run(*write_op, completion_of(fd, *write_op, plan));
                ++ended;
            }
        }
        return ended;
    }

    /// Ends fd's lifetime and its pending ops as closed, before the number goes back to the kernel
    /// (registry.hpp, close).
    errc close(int fd) {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        std::vector<std::unique_ptr<pending_op>> doomed;
        {
            std::lock_guard<std::mutex> lock(ops_mutex_);
            generations& g = gens(fd);
            g.fd_gen = next_generation(g.fd_gen);
            g.latched[0] = g.latched[1] = false;
            auto it = pending_ops_.find(fd);
            if (it != pending_ops_.end()) {
                doomed = std::move(it->second);
                pending_ops_.erase(it);
                for (std::size_t i = 0; i < doomed.size(); ++i) end_locked(outcome::closed);
            }
        }
        for (auto& op : doomed)
            run(*op,
                detail::make_completion(op_token{op_slot(fd, op->dir), op->gen}, outcome::closed));
        return errc::ok;
    }

    /// Owner thread: applies work handed over by other threads; returns how many commands
    /// (registry.hpp).
    std::size_t apply_handed_off() noexcept { return 0; }

    /// A snapshot of the counts (registry_stats).
    [[nodiscard]] registry_stats stats() const {
        std::lock_guard<std::mutex> lock(ops_mutex_);
        registry_stats s = stats_;
        s.in_flight = pending_;
        return s;
    }

private:
    struct pending_op {
        direction dir = direction::read;
        std::uint64_t gen = 0;
        std::function<void(const completion&)> fn;
    };
    struct generations {  // within token_generation_mask, from cfg_.first_generation
        std::uint64_t fd_gen = 0;
        std::uint64_t op_gen[2] = {0, 0};
        bool latched[2] = {false, false};  // readiness arrived with no op pending
    };

    // Callbacks must not throw (registry.hpp): one that does ends the program here.
    static void run(pending_op& op, const completion& c) noexcept { op.fn(c); }

    static completion completion_of(int fd, const pending_op& op, const detail::delivery& plan) {
        return detail::make_completion(op_token{op_slot(fd, op.dir), op.gen}, plan.result, errc::ok,
                                       false, plan.hangup);
    }

    generations& gens(int fd) {  // ops_mutex_ held
        auto [it, fresh] = generations_.try_emplace(fd);
        if (fresh) {
            const std::uint64_t first = cfg_.first_generation & token_generation_mask;
            it->second.fd_gen = it->second.op_gen[0] = it->second.op_gen[1] = first;
        }
        return it->second;
    }

    bool has_pending_locked(int fd, direction d) const {  // ops_mutex_ held
        auto it = pending_ops_.find(fd);
        if (it == pending_ops_.end()) return false;
        for (const auto& op : it->second)
            if (op->dir == d) return true;
        return false;
    }

    // Takes fd's op in direction d for a kernel event, or latches the readiness when none
    // waits. ops_mutex_ held.
    std::unique_ptr<pending_op> take_ready_locked(int fd, direction d,
                                                  const detail::delivery& plan) {
        auto it = pending_ops_.find(fd);
        if (it != pending_ops_.end()) {
            auto& ops = it->second;
            for (auto o = ops.begin(); o != ops.end(); ++o) {
                if ((*o)->dir != d) continue;
                std::unique_ptr<pending_op> op = std::move(*o);
                ops.erase(o);
                end_locked(plan.result);
                return op;
            }
        }
        gens(fd).latched[static_cast<int>(d)] = true;  // no op waiting: keep the readiness
        return nullptr;
    }

    result<op_token> refuse(errc e) {  // ops_mutex_ held
        ++stats_.failures;
        return e;
    }

    void end_locked(outcome o) {  // ops_mutex_ held
        --pending_;
        switch (o) {
            case outcome::ready: ++stats_.completed; break;
            case outcome::cancelled: ++stats_.cancelled; break;
            case outcome::closed: ++stats_.closed; break;
            case outcome::timed_out: ++stats_.timed_out; break;
            case outcome::error: ++stats_.errors; break;
        }
    }

    registry_config cfg_;
    mutable std::mutex ops_mutex_;
    std::unordered_map<int, std::vector<std::unique_ptr<pending_op>>> pending_ops_;
    std::unordered_map<int, generations> generations_;
    std::uint64_t pending_ = 0;
    registry_stats stats_;
};

static_assert(registry<mutex_map>);

}  // namespace opreg
