// opreg/mpsc_queue.hpp — strategy `mpsc_queue`: other threads hand work to the owner.
//
// WHAT: arm, cancel and close from any thread become commands, allocated from a lock-free
// object_pool and pushed onto an intrusive MPSC queue; the owning reactor thread drains the
// queue (poll(), and at the start of every dispatch()) and applies the commands to a table
// that only it touches, so the table needs no atomics and no locks. An arm command becomes
// the pending op's record in place: the callback is moved once, into the pool slot.
//
// GUARANTEES
// - arm/cancel/close are lock-free for the caller (a pool CAS loop and a wait-free push);
//   no heap allocation per op (pools are allocated at construction).
// - Commands are applied in the order their pushes were linearized, so a cancel issued
//   after its arm returned is applied after that arm.
// - Bounded: at most max_pending arm commands/pending ops (bounded_pending() is true); a
//   full pool is reported (errc::full, cancel_status::full), never dropped.
// - Because the owner alone sees the table, `busy` is detected there: the second op ends
//   on the owner with outcome::error and errc::busy. Callbacks always run on the owner.
// - cancel() returns cancel_status::requested: the outcome is decided on the owner.
// - The owner is whichever thread calls poll()/dispatch(); one at a time.
//
// WHEN TO USE: one reactor thread owns the fds and other threads mostly submit work to it.
// WHEN NOT: every thread must learn synchronously whether its arm took (use slot_array).
//
// MEMORY ORDERING: the queue's push (release) / try_pop (acquire) pair publishes a
// command's fields to the owner. fd generations are the one thing both sides read: close()
// bumps it with a release RMW, paired with the acquire loads in token_of() and dispatch().
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include <opreg/detail/common.hpp>
#include <opreg/detail/stat_counters.hpp>
#include <opreg/intrusive_mpsc_queue.hpp>
#include <opreg/object_pool.hpp>
#include <opreg/registry.hpp>
#include <opreg/types.hpp>

namespace opreg {

class mpsc_queue {
public:
    static constexpr std::string_view name() noexcept { return "mpsc_queue"; }
    static constexpr bool hands_off() noexcept { return true; }
    static constexpr bool bounded_pending() noexcept { return true; }

    explicit mpsc_queue(registry_config cfg = {})
        : cfg_{cfg},
          ops_{cfg.pending_limit()},
          control_{cfg.pending_limit()},
          table_{std::make_unique<command*[]>(std::size_t{cfg.max_fds} * 2)},
          tickets_{std::make_unique<std::atomic<std::uint32_t>[]>(std::size_t{cfg.max_fds} * 2)},
          fd_gen_{std::make_unique<std::atomic<std::uint32_t>[]>(cfg.max_fds)} {}

    mpsc_queue(const mpsc_queue&) = delete;
    mpsc_queue& operator=(const mpsc_queue&) = delete;

    // Pending ops are destroyed without running their callbacks.
    ~mpsc_queue() {
        while (command* c = queue_.try_pop()) release(c);
        for (std::size_t i = 0; i < std::size_t{cfg_.max_fds} * 2; ++i)
            if (table_[i] != nullptr) release(table_[i]);
    }

    [[nodiscard]] const registry_config& config() const noexcept { return cfg_; }

    [[nodiscard]] result<fd_token> token_of(int fd) const noexcept {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        // acquire: pairs with close()'s release fetch_add.
        return fd_token{static_cast<std::uint32_t>(fd),
                        fd_gen_[fd].load(std::memory_order_acquire)};
    }

    [[nodiscard]] result<op_token> arm(int fd, direction d, callback cb) noexcept {
        if (!detail::fd_in_range(fd, cfg_)) return refuse(errc::fd_out_of_range);
        const std::uint32_t slot = op_slot(fd, d);
        // relaxed: the ticket only has to be unique per slot; the queue orders the rest.
        const std::uint32_t gen = tickets_[slot].fetch_add(1, std::memory_order_relaxed);
        command* c = ops_.try_create(kind::arm, slot, gen, outcome::ready, std::move(cb));
        if (c == nullptr) return refuse(errc::full);
        stats_.add(detail::stat::armed);
        queue_.push(c);
        return op_token{slot, gen};
    }

    cancel_status cancel(op_token t, outcome why = outcome::cancelled) noexcept {
        assert(detail::cancel_outcome_valid(why));
        if (t.slot() >= std::size_t{cfg_.max_fds} * 2) return cancel_status::stale;
        command* c = control_.try_create(kind::cancel, t.slot(), t.generation(), why, callback{});
        if (c == nullptr) return cancel_status::full;
        queue_.push(c);
        return cancel_status::requested;
    }

    errc close(int fd) noexcept {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        command* c = control_.try_create(kind::close, op_slot(fd, direction::read), 0u,
                                         outcome::closed, callback{});
        if (c == nullptr) return errc::full;
        // release: pairs with the acquire loads in token_of() and dispatch(); from here on
        // events carrying the old generation are stale.
        fd_gen_[fd].fetch_add(1, std::memory_order_release);
        queue_.push(c);
        return errc::ok;
    }

    // Owner thread: apply every command pushed so far. Returns how many were applied.
    std::size_t poll() noexcept {
        std::size_t n = 0;
        while (command* c = queue_.try_pop()) {
            apply(c);
            ++n;
        }
        return n;
    }

    // Owner thread.
    std::size_t dispatch(fd_token t, readiness ev) noexcept {
        poll();
        const int fd = static_cast<int>(t.slot());
        // acquire: pairs with close()'s release fetch_add.
        if (!detail::fd_in_range(fd, cfg_) ||
            fd_gen_[fd].load(std::memory_order_acquire) != t.generation()) {
            stats_.add(detail::stat::stale_dropped);
            return 0;
        }
        const detail::delivery plan = detail::plan_delivery(ev);
        std::size_t ended = 0;
        for (const direction d : {direction::read, direction::write}) {
            const std::uint32_t slot = op_slot(fd, d);
            if (plan.dir[static_cast<int>(d)] && table_[slot] != nullptr) {
                end(take(slot), plan.result, errc::ok);
                ++ended;
            }
        }
        return ended;
    }

    [[nodiscard]] registry_stats stats() const noexcept { return stats_.snapshot(); }

private:
    enum class kind : std::uint8_t { arm, cancel, close };

    struct command {
        command(kind k_, std::uint32_t slot_, std::uint32_t gen_, outcome why_,
                callback&& cb_) noexcept
            : k{k_}, why{why_}, slot{slot_}, gen{gen_}, cb{std::move(cb_)} {}

        mpsc_hook hook;
        kind k;
        outcome why;          // cancel: the outcome requested
        std::uint32_t slot;   // op slot (fd * 2 + direction)
        std::uint32_t gen;    // arm: the op's generation; cancel: the op it names
        callback cb;          // arm: the op's callback
    };
    using queue_type = intrusive_mpsc_queue<command, &command::hook>;

    void apply(command* c) noexcept {
        switch (c->k) {
            case kind::arm:
                if (table_[c->slot] != nullptr) {
                    end(c, outcome::error, errc::busy);
                } else {
                    table_[c->slot] = c;  // the command is the pending op's record now
                }
                return;
            case kind::cancel: {
                command* op = table_[c->slot];
                if (op != nullptr && op->gen == c->gen) end(take(c->slot), c->why, errc::ok);
                release(c);
                return;
            }
            case kind::close: {
                const std::uint32_t read_slot = c->slot;
                release(c);
                for (std::uint32_t s = read_slot; s < read_slot + 2; ++s)
                    if (table_[s] != nullptr) end(take(s), outcome::closed, errc::ok);
                return;
            }
        }
    }

    command* take(std::uint32_t slot) noexcept { return std::exchange(table_[slot], nullptr); }

    // Ends an op: its record goes back to the pool before the callback runs, so a callback
    // that re-arms finds room.
    void end(command* op, outcome o, errc e) noexcept {
        const op_token t{op->slot, op->gen};
        callback cb = std::move(op->cb);
        ops_.destroy(op);
        stats_.add(detail::stat_for(o));
        cb(detail::make_completion(t, o, e));
    }

    void release(command* c) noexcept {
        if (c->k == kind::arm) {
            ops_.destroy(c);
        } else {
            control_.destroy(c);
        }
    }

    result<op_token> refuse(errc e) noexcept {
        stats_.add(detail::stat::failures);
        return e;
    }

    registry_config cfg_;
    object_pool<command> ops_;      // arm commands, then pending-op records
    object_pool<command> control_;  // cancel and close commands
    queue_type queue_;
    std::unique_ptr<command*[]> table_;                       // owner only
    std::unique_ptr<std::atomic<std::uint32_t>[]> tickets_;  // per op slot
    std::unique_ptr<std::atomic<std::uint32_t>[]> fd_gen_;   // per fd
    detail::stat_counters stats_;
};

static_assert(registry<mpsc_queue>);

} // namespace opreg
