// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/slot_array.hpp — fd-indexed slots with one atomic state word each. Lock-free.
///
/// WHAT: one 64-byte slot per (fd, direction), index fd * 2 + direction. A slot is its state
/// word plus the op's callback stored inline; nothing is allocated after construction.
///
/// GUARANTEES
/// - arm, cancel, dispatch, close and token_of are lock-free: every transition is a CAS on
///   the slot's word, and no thread ever waits for another. A thread that finds a slot in a
///   transient state (another thread is arming it or moving a callback out of it) does not
///   wait: arm reports busy (the previous op has not ended yet), cancel finds nothing
///   pending, dispatch sets the latch, close bumps the generation in place; the owner of the
///   transient state sees the change in its leaving CAS. (tests/slot_array_test.cpp,
///   SlotArrayProgress: with a thread stopped inside arm or dispatch, every other call on
///   that slot and on others returns, with these answers.)
/// - An arm that finds readiness latched ends its op at once, running the callback on the
///   arming thread before arm returns.
/// - Zero heap allocations per operation; construction allocates the slot array once
///   (2 * max_fds * 64 bytes).
/// - Ops on different slots never share a cache line.
/// - max_pending is ignored (bounded_pending() is false): every (fd, direction) has a slot,
///   so a registry with every slot pending reports busy, never drops.
///
/// WHEN TO USE: fds are small dense integers (as on POSIX) and many threads arm and cancel
/// while a reactor thread dispatches. WHEN NOT: sparse or huge keys (use a map strategy).
///
/// THE STATE WORD (64 bits)
///   [63..41] fd generation   bumped by close(); must match the fd_token in dispatch (23 bits)
///   [40..3]  op generation   bumped each time an op on this slot ends; an op_token carries
///                            it, all 38 bits of a token's generation, since op tokens live
///                            as long as timers and users keep them
///   [2]      latch           readiness arrived while no op was pending (see registry.hpp)
///   [1..0]   state           idle, arming, pending, completing
/// The fd generation gets what is left: a stale fd token lives in a kernel batch, so it
/// would take 2^23 closes of one fd number while that batch is dispatched to alias (see
/// token.hpp for both budgets).
///
///   idle --arm CAS--> arming --publish CAS--> pending --winner CAS--> completing --> idle
///   (owner: the arming thread)                         (owner: the winner: dispatch,
///                                                        cancel or close)
/// Only the owner of `arming` or `completing` leaves it. Other threads may change two fields
/// of a word in any state, and the owner's leaving CAS notices: close() bumps the fd
/// generation (an arm whose fd was closed meanwhile fails with errc::stale; a completer
/// keeps the bumped generation), and dispatch() sets the latch when no op is pending (an
/// arm that finds it, before or while arming, ends its op at once with outcome::ready;
/// a completer keeps it for the next arm). close() clears the latch: it belongs to the
/// fd lifetime that set it.
///
/// MEMORY ORDERING (the callback storage is plain memory handed between threads)
/// - arm writes the callback, then publishes pending with a release CAS (A).
/// - the winner's acquire CAS pending->completing (B) pairs with A: it sees the callback.
/// - the winner moves the callback out, then releases the slot with a release CAS to idle (C).
/// - the next arm's acquire CAS idle->arming (D) pairs with C: its write of the new callback
///   happens after the old one was moved out.
/// A and C are publish_order and finish_order below; the callback storage is a Sync cell. Both
/// come from the synchronisation policy (detail/sync.hpp): release and plain memory in
/// `slot_array`, Relacy's in stress/relacy/slot_model.cpp, which checks this code.
#pragma once

#include <opreg/config.hpp>

#include <atomic>
#include <cassert>
#include <cstdint>
#include <memory>
#include <string_view>
#include <type_traits>

#include <opreg/detail/cache_line.hpp>
#include <opreg/detail/common.hpp>
#include <opreg/detail/stat_counters.hpp>
#include <opreg/detail/sync.hpp>
#include <opreg/registry.hpp>
#include <opreg/token.hpp>
#include <opreg/types.hpp>

namespace opreg {

namespace detail {

// The state word, as a value type. Pure bit twiddling: no atomics here.
struct slot_word {
    enum class state : std::uint64_t { idle = 0, arming = 1, pending = 2, completing = 3 };
    static constexpr std::uint64_t state_mask = 3;
    static constexpr std::uint64_t latch_bit = 4;
    static constexpr int op_gen_shift = 3;
    static constexpr std::uint64_t op_gen_mask = token_generation_mask;  // 38 bits
    static constexpr int fd_gen_shift = 41;
    static constexpr std::uint64_t fd_gen_mask = (std::uint64_t{1} << 23) - 1;
    static_assert(op_gen_shift + token_generation_bits == fd_gen_shift);

    // The word of a fresh slot: idle, no latch, both generations at `first` (reduced).
    [[nodiscard]] static constexpr slot_word initial(std::uint64_t first) noexcept {
        return {((first & fd_gen_mask) << fd_gen_shift) | ((first & op_gen_mask) << op_gen_shift)};
    }

    std::uint64_t bits = 0;

    [[nodiscard]] constexpr state st() const noexcept {
        return static_cast<state>(bits & state_mask);
    }
    [[nodiscard]] constexpr bool latched() const noexcept { return (bits & latch_bit) != 0; }
    [[nodiscard]] constexpr std::uint64_t op_gen() const noexcept {
        return (bits >> op_gen_shift) & op_gen_mask;
    }
    [[nodiscard]] constexpr std::uint64_t fd_gen() const noexcept { return bits >> fd_gen_shift; }
    [[nodiscard]] constexpr slot_word with(state s) const noexcept {
        return {(bits & ~state_mask) | static_cast<std::uint64_t>(s)};
    }
    [[nodiscard]] constexpr slot_word with_latch(bool on) const noexcept {
        return {on ? bits | latch_bit : bits & ~latch_bit};
    }
    // Op generation + 1 (wrapping in its field), idle; fd generation and latch kept.
    [[nodiscard]] constexpr slot_word next_op() const noexcept {
        const std::uint64_t g = (op_gen() + 1) & op_gen_mask;
        const std::uint64_t keep = (bits & (fd_gen_mask << fd_gen_shift)) | (bits & latch_bit);
        return {keep | (g << op_gen_shift)};
    }
    // fd generation + 1 (wrapping: the top field, so the carry leaves the word), latch
    // cleared; op generation and state kept.
    [[nodiscard]] constexpr slot_word next_fd() const noexcept {
        return {(bits + (std::uint64_t{1} << fd_gen_shift)) & ~latch_bit};
    }
};

// White-box access for the Relacy model (it watches a slot's word); declared here, defined
// only by stress/relacy/slot_model.cpp.
template <class Registry>
struct slot_array_test_access;

}  // namespace detail

/// `Sync`: the synchronisation policy (detail/sync.hpp); use slot_array, its default.
template <class Sync = detail::std_sync>
class basic_slot_array {
public:
    /// The strategy's name, as make_registry() and the programs' --registry flag spell it.
    static constexpr std::string_view name() noexcept { return "slot_array"; }
    /// Whether arms, cancels and closes from other threads are handed to the owner thread
    /// (registry.hpp, THREADS).
    static constexpr bool hands_off() noexcept { return false; }
    /// Whether pending ops live in bounded storage (registry_config::max_pending).
    static constexpr bool bounded_pending() noexcept { return false; }

    /// An empty registry; throws std::invalid_argument for a configuration out of range
    /// (registry_config).
    explicit basic_slot_array(registry_config cfg = {})
        : cfg_{detail::validated(cfg)},
          slots_{std::make_unique<slot[]>(std::size_t{cfg.max_fds} * 2)} {
        const word first = word::initial(cfg.first_generation);
        for (std::size_t i = 0; i < std::size_t{cfg.max_fds} * 2; ++i)
            // relaxed: no other thread sees the registry before the constructor returns.
            slots_[i].word.store(first.bits, std::memory_order_relaxed);
    }

    // Pending ops are destroyed without running their callbacks (see registry.hpp).
    ~basic_slot_array() = default;

    basic_slot_array(const basic_slot_array&) = delete;
    basic_slot_array& operator=(const basic_slot_array&) = delete;

    /// The configuration this registry was built with.
    [[nodiscard]] const registry_config& config() const noexcept { return cfg_; }

    /// The token of fd's current lifetime, which the kernel carries (registry.hpp, Tokens).
    [[nodiscard]] result<fd_token> token_of(int fd) const noexcept {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        // acquire: pairs with close()'s release CAS, so a token read after close() returned
        // carries the new generation.
        const word w{slots_[op_slot(fd, direction::read)].word.load(std::memory_order_acquire)};
        return fd_token{static_cast<std::uint32_t>(fd), w.fd_gen()};
    }

    /// Arms one op on (fd, d) with its callback; the refusals are registry.hpp's (arm).
    [[nodiscard]] result<op_token> arm(int fd, direction d, callback cb) noexcept {
        if (!detail::fd_in_range(fd, cfg_)) return stats_.refuse(errc::fd_out_of_range);
        if (!cb) return stats_.refuse(errc::no_callback);
        const std::uint32_t index = op_slot(fd, d);
        slot& s = slots_[index];
        word w{s.word.load(std::memory_order_relaxed)};  // relaxed: only a guess for the CAS
        for (;;) {
            if (w.st() != word::state::idle) return stats_.refuse(errc::busy);
            if (w.latched()) {
                // Readiness came first: the op ends at once. The slot's callback storage is
                // not touched, so nothing needs ordering (relaxed).
                if (s.word.compare_exchange_weak(w.bits, w.next_op().with_latch(false).bits,
                                                 std::memory_order_relaxed)) {
                    return end_at_once(op_token{index, w.op_gen()}, std::move(cb));
                }
                continue;
            }
            // acquire (D): pairs with the completer's release (C); the old callback has been
            // moved out before we write the new one.
            if (s.word.compare_exchange_weak(w.bits, w.with(word::state::arming).bits,
                                             std::memory_order_acquire, std::memory_order_relaxed))
                break;
        }
        const word armed_at = w.with(word::state::arming);
        const op_token token{index, armed_at.op_gen()};
        s.cb.get() = std::move(cb);

        // Publish. While we own `arming`, close() may bump the fd generation (the fd this
        // arm was meant for is gone) and dispatch() may set the latch (readiness arrived).
        word cur = armed_at;
        // release (A): pairs with the winner's acquire (B); the callback is visible to it.
        while (!s.word.compare_exchange_weak(cur.bits, cur.with(word::state::pending).bits,
                                             publish_order, std::memory_order_relaxed)) {
            if (cur.fd_gen() != armed_at.fd_gen()) {
                s.cb.get().reset();
                // release: the emptied callback storage is handed back like in (C).
                while (!s.word.compare_exchange_weak(cur.bits, cur.with(word::state::idle).bits,
                                                     std::memory_order_release,
                                                     std::memory_order_relaxed)) {}
                return stats_.refuse(errc::stale);
            }
            if (cur.latched()) {
                callback now = std::move(s.cb.get());
                // release (C): as in finish(); the next arm's acquire (D) pairs with it.
                // We consume the latch of our own fd lifetime only: if close() and an
                // event of the next lifetime got in meanwhile, that latch is theirs.
                while (!s.word.compare_exchange_weak(
                    cur.bits,
                    cur.next_op()
                        .with_latch(cur.latched() && cur.fd_gen() != armed_at.fd_gen())
                        .bits,
                    std::memory_order_release, std::memory_order_relaxed)) {}
                return end_at_once(token, std::move(now));
            }
        }
        stats_.add(detail::stat::armed);
        return token;
    }

    /// Ends the op `t` names with `why` unless a completion won (registry.hpp, cancel).
    cancel_status cancel(op_token t, outcome why = outcome::cancelled) noexcept {
        assert(detail::cancel_outcome_valid(why));
        if (t.slot() >= std::size_t{cfg_.max_fds} * 2) return cancel_status::stale;
        slot& s = slots_[t.slot()];
        word w{s.word.load(std::memory_order_relaxed)};  // relaxed: the CAS below acquires
        do {
            if (w.st() != word::state::pending || w.op_gen() != t.generation())
                return cancel_status::stale;
            // acquire (B): pairs with arm's release (A).
        } while (!s.word.compare_exchange_weak(w.bits, w.with(word::state::completing).bits,
                                               std::memory_order_acquire,
                                               std::memory_order_relaxed));
        finish(s, t, why);
        return cancel_status::done;
    }

    /// Owner thread: ends the ops the kernel's readiness `ev` for `t` makes ready (registry.hpp,
    /// dispatch).
    std::size_t dispatch(fd_token t, readiness ev) noexcept {
        const int fd = static_cast<int>(t.slot());
        if (!detail::fd_in_range(fd, cfg_)) return stats_.drop_stale();
        const detail::delivery plan = detail::plan_delivery(ev);
        std::size_t ended = 0;
        bool stale = false;
        for (const direction d : {direction::read, direction::write}) {
            const std::uint32_t index = op_slot(fd, d);
            slot& s = slots_[index];
            word w{s.word.load(std::memory_order_relaxed)};  // relaxed: the CAS acquires
            bool won = false;
            while (true) {
                if (w.fd_gen() != t.generation()) {
                    stale = true;
                    break;
                }
                if (!plan.dir[static_cast<int>(d)]) break;
                if (w.st() == word::state::pending) {
                    // acquire (B): pairs with arm's release (A).
                    if (s.word.compare_exchange_weak(w.bits, w.with(word::state::completing).bits,
                                                     std::memory_order_acquire,
                                                     std::memory_order_relaxed)) {
                        won = true;
                        break;
                    }
                    continue;
                }
                // No op pending: keep the readiness for the next arm. relaxed: the latch
                // publishes no data, and every reader of it RMWs this same word.
                if (w.latched() || s.word.compare_exchange_weak(w.bits, w.with_latch(true).bits,
                                                                std::memory_order_relaxed))
                    break;
            }
            if (stale) break;
            if (won) {
                finish(s, op_token{index, w.op_gen()}, plan.result, plan.hangup);
                ++ended;
            }
        }
        if (stale && ended == 0) stats_.drop_stale();
        return ended;
    }

    /// Ends fd's lifetime and its pending ops as closed, before the number goes back to the kernel
    /// (registry.hpp, close).
    errc close(int fd) noexcept {
        if (!detail::fd_in_range(fd, cfg_)) return errc::fd_out_of_range;
        for (const direction d : {direction::read, direction::write}) {
            const std::uint32_t index = op_slot(fd, d);
            slot& s = slots_[index];
            word w{s.word.load(std::memory_order_relaxed)};  // relaxed: the CAS orders
            word next;
            do {
                next = w.next_fd();
                if (w.st() == word::state::pending) next = next.with(word::state::completing);
                // acq_rel: acquire (B) pairs with arm's release (A) when we take a pending
                // op; release publishes the new fd generation to token_of()'s acquire load.
            } while (!s.word.compare_exchange_weak(w.bits, next.bits, std::memory_order_acq_rel,
                                                   std::memory_order_relaxed));
            if (w.st() == word::state::pending)
                finish(s, op_token{index, w.op_gen()}, outcome::closed);
        }
        return errc::ok;
    }

    /// Owner thread: applies work handed over by other threads; returns how many commands
    /// (registry.hpp).
    std::size_t apply_handed_off() noexcept { return 0; }

    /// A snapshot of the counts (registry_stats).
    [[nodiscard]] registry_stats stats() const noexcept { return stats_.snapshot(); }

private:
    template <class Registry>
    friend struct detail::slot_array_test_access;

    using word = detail::slot_word;

    // (A) and (C), release: the two orders a model weakens to show that it needs them.
    static constexpr std::memory_order publish_order =
        Sync::order(detail::sync_site::slot_publish, std::memory_order_release);
    static constexpr std::memory_order finish_order =
        Sync::order(detail::sync_site::slot_finish, std::memory_order_release);

    struct alignas(detail::cache_line) slot {
        typename Sync::template atomic<std::uint64_t> word{0};
        // Plain memory, handed from arm to the winner by (A)/(B) and back by (C)/(D).
        typename Sync::template cell<callback> cb;
    };
    static_assert(sizeof(slot) == detail::cache_line || !std::is_same_v<Sync, detail::std_sync> ||
                      callback_capacity != 48,
                  "one op, one cache line at the default capacity");

    // The caller owns `completing` on s for op t. Moves the callback out, releases the slot,
    // then runs the callback: a callback that re-arms this slot finds it idle.
    void finish(slot& s, op_token t, outcome o, bool hangup = false) noexcept {
        callback cb = std::move(s.cb.get());
        word cur{s.word.load(std::memory_order_relaxed)};  // relaxed: we own the slot
        // release (C): pairs with the next arm's acquire (D). The loop keeps an fd
        // generation that close() bumped while we owned the slot.
        while (!s.word.compare_exchange_weak(cur.bits, cur.next_op().bits, finish_order,
                                             std::memory_order_relaxed)) {}
        stats_.add(detail::stat_for(o));
        detail::invoke(cb, detail::make_completion(t, o, errc::ok, false, hangup));
    }

    // An arm that found readiness latched: the op is accepted and ends at once, here.
    result<op_token> end_at_once(op_token t, callback cb) noexcept {
        stats_.add(detail::stat::armed);
        stats_.add(detail::stat::completed);
        detail::invoke(cb, detail::latched_completion(t));
        return t;
    }

    registry_config cfg_;
    std::unique_ptr<slot[]> slots_;
    detail::stat_counters stats_;
};

/// The lock-free strategy: one 64-byte slot per (fd, direction), every transition a CAS.
using slot_array = basic_slot_array<>;

static_assert(registry<slot_array>);

}  // namespace opreg
