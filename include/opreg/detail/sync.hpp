// SPDX-License-Identifier: Apache-2.0
// opreg/detail/sync.hpp — the synchronisation policy of the lock-free types.
//
// basic_slot_array<Sync>, object_pool<T, Sync>, basic_mpsc_hook<Sync> (and with it
// intrusive_mpsc_queue) and basic_mpsc_queue<Sync> take from `Sync` the few things a model
// checker must be able to replace: their atomics, the plain memory one thread hands to
// another through those atomics, and the memory order at the sites whose ordering a model
// proves necessary. The default, std_sync, is std::atomic, plain memory and the orders the
// headers write, all resolved at compile time: slot_array, object_pool<T>, mpsc_hook and
// mpsc_queue compile to the code they would be without a policy. The Relacy models in
// stress/relacy/ instantiate the same headers with Relacy's atomics and variables (see
// stress/relacy/rl_sync.hpp), so what they check is the shipped code, and they weaken one
// named site at a time to show that a model catches the bug it was given.
//
// A policy provides:
//   template <class T> using atomic     the std::atomic<T> member functions the headers
//                                       call: load, store, exchange, compare_exchange_weak
//                                       and _strong, fetch_add, fetch_sub, with
//                                       std::memory_order arguments;
//   template <class T> using cell       plain memory handed between threads by an atomic's
//                                       release and acquire; get() is one access to it;
//   static order(site, as_written)      the memory order at an order site below;
//   static broken(site)                 whether a code site below runs its broken variant.
#pragma once

#include <opreg/config.hpp>

#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace opreg::detail {

// The places where a model weakens the shipped code, each to show that it catches the bug.
enum class sync_site : std::uint8_t {
    // Order sites, all release as written: Sync::order(site, as_written) is the order used.
    slot_publish,  // basic_slot_array::publish_order: arm's CAS arming -> pending, (A)
    slot_finish,   // basic_slot_array::finish_order: finish()'s CAS completing -> idle, (C)
    queue_link,    // intrusive_mpsc_queue::link_order: link()'s store of prev->next
    pool_push,     // object_pool::push_order: push_free()'s CAS that frees a slot
    // Code sites: if Sync::broken(site), the header runs the named bug instead.
    pool_tag_kept,      // object_pool::next_tag: a CAS on the head word keeps the tag, the
                        // ABA the tag exists for
    close_flag_stored,  // basic_mpsc_queue::apply: the owner clears close_queued with a
                        // release store instead of an acq_rel exchange
};

// Plain memory, one access at a time: get() is the member itself.
template <class T>
class plain_cell {
public:
    constexpr plain_cell() = default;
    constexpr explicit plain_cell(T value) noexcept(std::is_nothrow_move_constructible_v<T>)
        : value_{std::move(value)} {}

    [[nodiscard]] constexpr T& get() noexcept { return value_; }

private:
    T value_;  // initialised as a plain member would be: a plain_cell<T> is that member
};

// The policy of every type in this library: std::atomic, plain memory, the orders as
// written, no broken variant.
struct std_sync {
    template <class T>
    using atomic = std::atomic<T>;
    template <class T>
    using cell = plain_cell<T>;

    static consteval std::memory_order order(sync_site, std::memory_order as_written) noexcept {
        return as_written;
    }
    static consteval bool broken(sync_site) noexcept { return false; }
};

}  // namespace opreg::detail
