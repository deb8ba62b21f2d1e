// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/mpsc_queue.hpp — strategy `mpsc_queue`: other threads hand work to the owner.
///
/// WHAT: arm, cancel and close from any thread become commands pushed onto an intrusive
/// MPSC queue (arm and cancel commands come from lock-free object_pools; each fd has one
/// preallocated close command); the owning reactor thread drains the queue (apply_handed_off(), and
/// at the start of every dispatch()) and applies the commands to a table that only it touches, so
/// the table needs no atomics and no locks. An arm command becomes the pending op's record in
/// place: the callback is moved once, into the pool slot.
///
/// GUARANTEES
/// - arm/cancel/close are lock-free for the caller (a pool CAS loop and a wait-free push);
///   no heap allocation per op (pools are allocated at construction). A caller stopped
///   inside its push holds back the commands behind it, never another call or the owner's
///   turn (tests/mpsc_queue_test.cpp, MpscQueueProgress).
/// - Commands are applied in the order their pushes were linearized, so a cancel issued
///   after its arm returned is applied after that arm. (The owner may see a returned push
///   late: the queue withholds every node behind a push still in flight; see below.)
/// - Bounded: at most max_pending arm commands/pending ops (bounded_pending() is true), and
///   as many queued cancels; a full pool is reported (errc::full, cancel_status::full),
///   never dropped. close() cannot fail for a valid fd: its command is preallocated, and
///   closes of one fd coalesce while it is queued.
/// - Because the owner alone sees the table, `busy` is detected there: the second op ends
///   on the owner with outcome::error and errc::busy. Callbacks always run on the owner.
/// - cancel() returns cancel_status::requested: the outcome is decided on the owner.
/// - The owner is whichever thread calls apply_handed_off()/dispatch(); one at a time.
/// apply_handed_off() applies at
///   most apply_batch commands per call, so that producers that never stop cannot keep the
///   owner in one call: a reactor applies it once per loop turn, and does not sleep while the last
///   apply_handed_off() applied anything.
///
/// FD LIFETIMES WITHOUT WAITING FOR THE QUEUE. close() bumps the fd's generation at once
/// (token_of() after close() returns names the new lifetime), but the owner may apply the
/// queued close later. So every arm records the generation it was armed under, and the
/// owner never lets one lifetime's readiness touch another's op or latch: dispatch() ends
/// only ops of the token's generation and latches readiness under that generation; an arm
/// of a generation already closed ends as closed; applying a close ends the ops of older
/// generations and drops their latches.
///
/// WHEN TO USE: one reactor thread owns the fds and other threads mostly submit work to it.
/// WHEN NOT: every thread must learn synchronously whether its arm took (use slot_array).
///
/// LAYOUT: per-fd state in packed arrays, each touched by its own kind of access: the fd
/// generations (read by every arm and by the owner, written only by close), the op tickets
/// (written by every arm), the close flags and the preallocated close commands; the owner's
/// table is apart, and only the owner touches it. Measured against one 128-byte line per fd
/// holding all of them (bench/results/2026-11-29-vm-ab.md): alike single-threaded, but with
/// an armer and the owner the line was 0.88 of the old code where the arrays are 1.34 (the
/// owner's generation loads shared the line the armers' ticket increments write), and it
/// cost 7 bytes more per pending op; so the arrays stay.
///
/// MEMORY ORDERING: the queue's push (release) / try_pop (acquire) pair publishes a
/// command's fields to the owner. fd generations are the one thing both sides read: close()
/// bumps it with a release RMW, paired with the acquire loads in arm(), token_of(),
/// dispatch() and the owner's apply. close_queued is an acq_rel exchange on both sides
/// (close() sets it, the owner clears it before it reads the generation), so a close either
/// finds the command queued and the owner's exchange acquires its bump, or queues it again.
///
/// Sync, the synchronisation policy (detail/sync.hpp), gives the atomics here and in the pools
/// and queue underneath, the arm command's fd generation (a cell: the one field both sides of
/// the lifetime protocol read) and the exchange that clears close_queued; std_sync, the
/// default, keeps them as written. stress/relacy/close_model.cpp runs this code with Relacy's.
#pragma once

#include <opreg/config.hpp>

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include <opreg/detail/common.hpp>
#include <opreg/detail/stat_counters.hpp>
#include <opreg/detail/sync.hpp>
#include <opreg/intrusive_mpsc_queue.hpp>
#include <opreg/object_pool.hpp>
#include <opreg/registry.hpp>
#include <opreg/types.hpp>

namespace opreg {

namespace detail {

// White-box access for the Relacy model (it watches an fd's generation); declared here,
// defined only by stress/relacy/close_model.cpp.
template <class Registry>
struct mpsc_queue_test_access;

}  // namespace detail

/// `Sync`: the synchronisation policy (detail/sync.hpp); use mpsc_queue, its default.
template <class Sync = detail::std_sync>
class basic_mpsc_queue {
public:
    /// The strategy's name, as make_registry() and the programs' --registry flag spell it.
    static constexpr std::string_view name() noexcept { return "mpsc_queue"; }
    /// Whether arms, cancels and closes from other threads are handed to the owner thread
    /// (registry.hpp, THREADS).
    static constexpr bool hands_off() noexcept { return true; }
    /// Whether pending ops live in bounded storage (registry_config::max_pending).
    static constexpr bool bounded_pending() noexcept { return true; }

    /// Commands apply_handed_off() applies at most per call.
    static constexpr std::size_t apply_batch = 1024;

    /// An empty registry; throws std::invalid_argument for a configuration out of range
    /// (registry_config).
    explicit basic_mpsc_queue(registry_config cfg = {})
        : cfg_{detail::validated(cfg)},
          ops_{cfg.pending_limit()},
          cancels_{cfg.pending_limit()},
          closes_{std::make_unique<command[]>(cfg.max_fds)},
          close_queued_{std::make_unique<atomic<bool>[]>(cfg.max_fds)},
          table_{std::make_unique<entry[]>(std::size_t{cfg.max_fds} * 2)},
          tickets_{std::make_unique<atomic<std::uint64_t>[]>(std::size_t{cfg.max_fds} * 2)},
          fd_gen_{std::make_unique<atomic<std::uint64_t>[]>(cfg.max_fds)} {
        // relaxed: no other thread sees the registry before the constructor returns.
        const std::uint64_t first = cfg.first_generation & token_generation_mask;
        for (std::uint32_t fd = 0; fd < cfg.max_fds; ++fd) {
            closes_[fd].what = kind::close;
            closes_[fd].slot = op_slot(static_cast<int>(fd), direction::read);
            fd_gen_[fd].store(first, std::memory_order_relaxed);
            tickets_[op_slot(static_cast<int>(fd), direction::read)].store(
                first, std::memory_order_relaxed);
            tickets_[op_slot(static_cast<int>(fd), direction::write)].store(
                first, std::memory_order_relaxed);
        }
    }

    basic_mpsc_queue(const basic_mpsc_queue&) = delete;
    basic_mpsc_queue& operator=(const basic_mpsc_queue&) = delete;

    // Pending ops, and arms still queued, are destroyed without running their callbacks.
    ~basic_mpsc_queue() {
        while (command* c = queue_.try_pop()) release(c);
        for (std::size_t i = 0; i < std::size_t{cfg_.max_fds} * 2; ++i)
            if (table_[i].op != nullptr) release(table_[i].op);
    }

    /// The configuration this registry was built with.
    [[nodiscard]] const registry_config& config() const noexcept { return cfg_; }

    /// The token of fd's current lifetime, which the kernel carries (registry.hpp, Tokens).
    [[nodiscard]] result<fd_token> token_of(int fd) const noexcept {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        return fd_token{static_cast<std::uint32_t>(fd), generation(fd)};
    }

    /// Arms one op on (fd, d) with its callback; the refusals are registry.hpp's (arm).
    [[nodiscard]] result<op_token> arm(int fd, direction d, callback cb) noexcept {
        if (!detail::fd_in_range(fd, cfg_)) return stats_.refuse(errc::fd_out_of_range);
        if (!cb) return stats_.refuse(errc::no_callback);
        const std::uint32_t slot = op_slot(fd, d);
        // relaxed: the ticket only has to be unique per slot; the queue orders the rest.
        const std::uint64_t gen =
            tickets_[slot].fetch_add(1, std::memory_order_relaxed) & token_generation_mask;
        command* c = ops_.try_create(kind::arm, slot, gen, generation(fd), std::move(cb));
        if (c == nullptr) return stats_.refuse(errc::full);
        stats_.add(detail::stat::armed);
        queue_.push(c);
        return op_token{slot, gen};
    }

    /// Ends the op `t` names with `why` unless a completion won (registry.hpp, cancel).
    cancel_status cancel(op_token t, outcome why = outcome::cancelled) noexcept {
        assert(detail::cancel_outcome_valid(why));
        if (t.slot() >= std::size_t{cfg_.max_fds} * 2) return cancel_status::stale;
        command* c = cancels_.try_create(kind::cancel, t.slot(), t.generation(), 0u, callback{});
        if (c == nullptr) return cancel_status::full;
        c->why = why;
        queue_.push(c);
        return cancel_status::requested;
    }

    /// Ends fd's lifetime and its pending ops as closed, before the number goes back to the kernel
    /// (registry.hpp, close).
    errc close(int fd) noexcept {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        // release: pairs with the acquire loads of generation(); from here on events
        // carrying the old generation are stale, and token_of() names the new lifetime.
        fd_gen_[fd].fetch_add(1, std::memory_order_release);
        // acq_rel: pairs with the owner's acq_rel exchange in apply(); if the command is
        // still queued, the owner has not read the generation yet and will see our bump.
        if (!close_queued_[fd].exchange(true, std::memory_order_acq_rel)) queue_.push(&closes_[fd]);
        return errc::ok;
    }

    /// Owner thread: applies the commands pushed so far, at most apply_batch of them. Returns
    /// how many it applied (apply_batch: there may be more).
    std::size_t apply_handed_off() noexcept {
        std::size_t n = 0;
        while (n < apply_batch) {
            command* c = queue_.try_pop();
            if (c == nullptr) break;
            apply(c);
            ++n;
        }
        return n;
    }

    /// Owner thread.
    std::size_t dispatch(fd_token t, readiness ev) noexcept {
        apply_handed_off();
        const int fd = static_cast<int>(t.slot());
        if (!detail::fd_in_range(fd, cfg_) || generation(fd) != t.generation()) {
            stats_.add(detail::stat::stale_dropped);
            return 0;
        }
        const detail::delivery plan = detail::plan_delivery(ev);
        std::size_t ended = 0;
        for (const direction d : {direction::read, direction::write}) {
            if (!plan.dir[static_cast<int>(d)]) continue;
            // Closed wins: once the fd is closed (by the read callback, or by another thread
            // meanwhile) its ops are the close's, which ends them as closed when the owner
            // applies it (next apply_handed_off).
            if (d == direction::write && generation(fd) != t.generation()) break;
            entry& e = table_[op_slot(fd, d)];
            if (e.op != nullptr && e.op->fd_gen.get() == t.generation()) {
                end(std::exchange(e.op, nullptr), plan.result, errc::ok, false, plan.hangup);
                ++ended;
            } else {
                // No op of this lifetime waiting (an op of an older one waits for its
                // queued close): keep the readiness for this lifetime's next arm.
                e.latch(t.generation());
            }
        }
        return ended;
    }

    /// A snapshot of the counts (registry_stats).
    [[nodiscard]] registry_stats stats() const noexcept { return stats_.snapshot(); }

private:
    template <class Registry>
    friend struct detail::mpsc_queue_test_access;

    template <class T>
    using atomic = typename Sync::template atomic<T>;

    enum class kind : std::uint8_t { arm, cancel, close };

    struct command {
        command() noexcept = default;
        command(kind what_it_is, std::uint32_t op_slot, std::uint64_t generation,
                std::uint64_t fd_generation, callback&& on_end) noexcept
            : what{what_it_is},
              slot{op_slot},
              gen{generation},
              fd_gen{fd_generation},
              cb{std::move(on_end)} {}

        basic_mpsc_hook<Sync> hook;
        kind what = kind::close;
        outcome why = outcome::cancelled;  // cancel: the outcome requested
        std::uint32_t slot = 0;            // op slot (fd * 2 + direction; close: the read slot)
        std::uint64_t gen = 0;             // arm: the op's generation; cancel: the op it names
        // arm: the fd lifetime it was armed under, compared with the fd's generation now
        typename Sync::template cell<std::uint64_t> fd_gen{0};
        callback cb;  // arm: the op's callback
    };
    using queue_type = intrusive_mpsc_queue<command, &command::hook>;

    struct entry {              // the owner's, per op slot: 16 bytes
        command* op = nullptr;  // the pending op, if any
        // Latched readiness: the fd generation it came under, with latch_bit set; 0 when
        // none. (Generations stay below 2^38, so no generation, 0 and the top included,
        // reads as "none".)
        std::uint64_t latch_word = 0;
        static constexpr std::uint64_t latch_bit = std::uint64_t{1} << 63;
        static_assert(token_generation_bits < 63);

        void latch(std::uint64_t fd_gen) noexcept { latch_word = fd_gen | latch_bit; }
        void unlatch() noexcept { latch_word = 0; }
        [[nodiscard]] bool latched_for(std::uint64_t fd_gen) const noexcept {
            return latch_word == (fd_gen | latch_bit);
        }
    };

    [[nodiscard]] std::uint64_t generation(int fd) const noexcept {
        // acquire: pairs with close()'s release fetch_add.
        // The counters count on past the token's width; a generation is their low bits.
        return fd_gen_[fd].load(std::memory_order_acquire) & token_generation_mask;
    }

    void apply(command* c) noexcept {
        switch (c->what) {
            case kind::arm: {
                entry& e = table_[c->slot];
                if (c->fd_gen.get() != generation(op_fd(op_token{c->slot, 0}))) {
                    end(c, outcome::closed, errc::ok);  // its fd was closed before we saw it
                    return;
                }
                // An op of an older lifetime still pending: its close is queued behind this
                // arm (a close() still in progress when the arm read the generation). It
                // ends now, as that close will find it ended, so busy means one lifetime.
                // (stress/relacy/close_model.cpp checks this interleaving.)
                if (e.op != nullptr && e.op->fd_gen.get() != c->fd_gen.get())
                    end(std::exchange(e.op, nullptr), outcome::closed, errc::ok);
                if (e.op != nullptr) {
                    end(c, outcome::error, errc::busy);
                } else if (e.latched_for(c->fd_gen.get())) {
                    e.unlatch();
                    end(c, outcome::ready, errc::ok, true);  // readiness came first
                } else {
                    e.op = c;  // the command is the pending op's record now
                }
                return;
            }
            case kind::cancel: {
                entry& e = table_[c->slot];
                if (e.op != nullptr && e.op->gen == c->gen) {
                    // Closed wins, as in dispatch(): a completion (cancel as ready) that
                    // reaches the owner after its fd was closed ends the op as closed, which
                    // is how a direct strategy, whose close ended it at once, ended it.
                    const bool fd_closed =
                        e.op->fd_gen.get() != generation(op_fd(op_token{c->slot, 0}));
                    end(std::exchange(e.op, nullptr),
                        c->why == outcome::ready && fd_closed ? outcome::closed : c->why, errc::ok);
                }
                cancels_.destroy(c);
                return;
            }
            case kind::close: {
                const int fd = op_fd(op_token{c->slot, 0});
                // acq_rel exchange, not a store: a close() whose exchange came before this
                // one (it found the command queued and did not queue it again) is read by
                // this RMW, which acquires its bump for the generation read next; one that
                // comes after finds false and queues the command again. (A plain release
                // store acquires nothing: the owner could read the old generation, leave
                // that lifetime's op pending and refuse the next arm as busy.)
                if constexpr (Sync::broken(detail::sync_site::close_flag_stored)) {
                    // That bug, which stress/relacy/close_model.cpp must catch.
                    close_queued_[fd].store(false, std::memory_order_release);
                } else {
                    close_queued_[fd].exchange(false, std::memory_order_acq_rel);
                }
                const std::uint64_t now = generation(fd);
                for (std::uint32_t s = c->slot; s < c->slot + 2; ++s) {
                    entry& e = table_[s];
                    if (!e.latched_for(now)) e.unlatch();
                    if (e.op != nullptr && e.op->fd_gen.get() != now)
                        end(std::exchange(e.op, nullptr), outcome::closed, errc::ok);
                }
                return;
            }
        }
    }

    // Ends an op: its record goes back to the pool before the callback runs, so a callback
    // that re-arms finds room.
    void end(command* op, outcome o, errc e, bool latched = false, bool hangup = false) noexcept {
        const op_token t{op->slot, op->gen};
        callback cb = std::move(op->cb);
        ops_.destroy(op);
        stats_.add(detail::stat_for(o));
        detail::invoke(cb, detail::make_completion(t, o, e, latched, hangup));
    }

    void release(command* c) noexcept {
        if (c->what == kind::arm) ops_.destroy(c);
        if (c->what == kind::cancel) cancels_.destroy(c);
        // close commands are the per-fd ones in closes_
    }

    registry_config cfg_;
    object_pool<command, Sync> ops_;                // arm commands, then pending-op records
    object_pool<command, Sync> cancels_;            // cancel commands
    std::unique_ptr<command[]> closes_;             // one close command per fd
    std::unique_ptr<atomic<bool>[]> close_queued_;  // per fd: its close is queued
    queue_type queue_;
    std::unique_ptr<entry[]> table_;                    // owner only, per op slot
    std::unique_ptr<atomic<std::uint64_t>[]> tickets_;  // per op slot: next op generation
    std::unique_ptr<atomic<std::uint64_t>[]> fd_gen_;   // per fd: its generation
    detail::stat_counters stats_;
};

/// The hand-off strategy: other threads' arms, cancels and closes are applied by the owner thread.
using mpsc_queue = basic_mpsc_queue<>;

static_assert(registry<mpsc_queue>);

}  // namespace opreg
