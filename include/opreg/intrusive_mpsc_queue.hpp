// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/intrusive_mpsc_queue.hpp — an intrusive multi-producer, single-consumer FIFO.
///
/// Dmitry Vyukov's non-blocking MPSC queue with a stub node. A node is any T with an
/// mpsc_hook member; the queue links nodes through that hook and never allocates, copies or
/// owns them. A reactor uses it to take work handed over by other threads (arm, cancel,
/// post) without a lock; pair it with an eventfd or similar when the consumer must sleep.
///
/// Guarantees
/// - push (any thread, concurrently): wait-free, one exchange and one store.
/// - try_pop (the single consumer only): never blocks, but is NOT lock-free with respect to
///   producers. Between a producer's exchange and its link store the queue is "momentarily
///   inconsistent": try_pop returns nullptr even though that node, every node pushed after
///   it, and the last node before it (whose push has already returned: the consumer cannot
///   hand out a node until it sees the node's successor link or knows it is the last) are
///   in the queue. A later try_pop returns them once the producer has done its store. A
///   producer preempted in that window stalls delivery of everything up to it: a consumer
///   must not take "push returned" to mean "the next try_pop sees it".
/// - FIFO: nodes come out in the order of the producers' exchanges on the producer end,
///   which is a linearization of the pushes: a node pushed after another push returned is
///   popped after that node.
/// - No allocation, ever. A node may be pushed again once try_pop has returned it, and may
///   be freed then; a node must not be in the queue twice. Destroying the queue leaves the
///   nodes still in it untouched.
///
/// When to use: many threads hand items to one thread that owns the data they act on.
/// When not to: several consumers (use an MPMC queue); producers that must not be able to
/// delay the consumer (a preempted producer does, see above); a bounded queue is wanted
/// (this one is as long as the nodes the producers own).
///
/// Memory ordering: everything a producer did before push(node) happens-before everything
/// the consumer does after the try_pop that returns node (the release store of the link in
/// push pairs with the acquire load of that link in try_pop).
///
/// The hook's type names the synchronisation policy (detail/sync.hpp) of the queues it is
/// linked into: mpsc_hook is basic_mpsc_hook<std_sync>, std::atomic and the orders as written;
/// stress/relacy/mpsc_model.cpp links nodes with a Relacy hook and so checks this code, with
/// the link's release (link_order) weakened to show that it is needed.
#pragma once

#include <opreg/config.hpp>

#include <atomic>
#include <cstddef>
#include <type_traits>

#include <opreg/detail/cache_line.hpp>
#include <opreg/detail/sync.hpp>

namespace opreg {

/// The link a node embeds to travel on an intrusive_mpsc_queue; `Sync` as the queue's.
template <class Sync = detail::std_sync>
struct basic_mpsc_hook {
    /// The synchronisation policy (detail/sync.hpp).
    using sync = Sync;
    /// The next node in the queue; the queue's alone while the node is queued.
    typename Sync::template atomic<basic_mpsc_hook*> next{nullptr};
};

/// The hook with the standard atomics: what a node embeds.
using mpsc_hook = basic_mpsc_hook<>;

namespace detail {

// What a pointer to a hook member names: the node type and the hook (and so its policy).
template <class Member>
struct mpsc_member {};
template <class T, class Sync>
struct mpsc_member<basic_mpsc_hook<Sync> T::*> {
    using node = T;
    using hook = basic_mpsc_hook<Sync>;
};

template <auto Hook, class T>
concept mpsc_hook_of = std::is_same_v<typename mpsc_member<decltype(Hook)>::node, T>;

// Byte offset of the hook inside T. No T is constructed: the probe only names the member
// (allowed on an object whose storage exists but whose lifetime has not begun), and the
// compiler folds the whole function to a constant.
template <class T, auto Hook>
[[nodiscard]] std::ptrdiff_t mpsc_hook_offset() noexcept {
    if constexpr (!std::is_abstract_v<T>) {
        union probe {
            probe() noexcept {}
            ~probe() {}
            char none;
            T object;
        } p;
        return reinterpret_cast<char*>(&(p.object.*Hook)) - reinterpret_cast<char*>(&p.object);
    } else {
        // An abstract T cannot be a union member; the aligned storage plays the same role.
        alignas(T) unsigned char storage[sizeof(T)];
        T* object = reinterpret_cast<T*>(storage);
        return reinterpret_cast<char*>(&(object->*Hook)) - reinterpret_cast<char*>(object);
    }
}

}  // namespace detail

/// Hook: &T::member, where the member is an mpsc_hook (or a basic_mpsc_hook of another policy).
template <class T, auto Hook>
requires detail::mpsc_hook_of<Hook, T>
class intrusive_mpsc_queue {
    using hook_type = typename detail::mpsc_member<decltype(Hook)>::hook;
    using sync = typename hook_type::sync;

public:
    intrusive_mpsc_queue() noexcept = default;
    intrusive_mpsc_queue(const intrusive_mpsc_queue&) = delete;
    intrusive_mpsc_queue& operator=(const intrusive_mpsc_queue&) = delete;

    /// Any thread. node must not be in this (or any) queue through the same hook.
    void push(T* node) noexcept { link(&(node->*Hook)); }

    /// The single consumer only. nullptr when empty, or while the next node's producer is
    /// between its exchange and its link store (a later call returns it).
    [[nodiscard]] T* try_pop() noexcept {
        // relaxed: only this thread writes tail_.
        hook_type* tail = tail_.load(std::memory_order_relaxed);
        // acquire: pairs with the release store of the link in link(), publishing the next
        // node's payload (and, through it, its hook).
        hook_type* next = tail->next.load(std::memory_order_acquire);
        if (tail == &stub_) {
            if (next == nullptr) {
                return nullptr;
            }
            // Skip the stub; it is never handed out.
            tail_.store(next, std::memory_order_relaxed);  // relaxed: consumer-owned cursor
            tail = next;
            next = tail->next.load(std::memory_order_acquire);  // acquire: as above
        }
        if (next != nullptr) {
            tail_.store(next, std::memory_order_relaxed);  // relaxed: consumer-owned cursor
            return owner_of(tail);
        }
        // tail is the last linked node. It can only be handed out with a successor behind
        // it, so re-insert the stub, unless a producer has already exchanged past tail and
        // is about to link its node (then that node will do, on a later call).
        // relaxed: only compared. tail reached us through the acquire of its link, which
        // follows its producer's exchange, so this load sees that exchange or a later one.
        if (tail != head_.load(std::memory_order_relaxed)) {
            return nullptr;
        }
        link(&stub_);
        next = tail->next.load(std::memory_order_acquire);  // acquire: as above
        if (next != nullptr) {
            tail_.store(next, std::memory_order_relaxed);  // relaxed: consumer-owned cursor
            return owner_of(tail);
        }
        return nullptr;  // a producer exchanged between our load of head_ and the stub's push
    }

    /// Any thread; an estimate unless the consumer calls it with no push in flight. A node
    /// whose producer is still linking it counts as present.
    [[nodiscard]] bool empty_approx() const noexcept {
        // relaxed: both pointers are only compared, never dereferenced; the answer is
        // advisory. Empty means the list holds the stub alone: it is at both ends.
        return tail_.load(std::memory_order_relaxed) == &stub_ &&
               head_.load(std::memory_order_relaxed) == &stub_;
    }

private:
    static T* owner_of(hook_type* hook) noexcept {
        return reinterpret_cast<T*>(reinterpret_cast<char*>(hook) -
                                    detail::mpsc_hook_offset<T, Hook>());
    }

    // Appends hook at the producer end; the consumer uses it to re-insert the stub.
    void link(hook_type* hook) noexcept {
        // relaxed: published by the exchange below, to the producer that links after us.
        hook->next.store(nullptr, std::memory_order_relaxed);
        // acq_rel. release: pairs with the acquire of the next producer's exchange, so our
        // nullptr store above comes before its store of our successor. acquire: pairs with
        // the release of the previous producer's exchange, so its nullptr store into prev
        // comes before ours below.
        hook_type* prev = head_.exchange(hook, std::memory_order_acq_rel);
        // release: pairs with the acquire loads of `next` in try_pop, publishing the node.
        prev->next.store(hook, link_order);
    }

    // The release above; a model weakens it to show that it is needed.
    static constexpr std::memory_order link_order =
        sync::order(detail::sync_site::queue_link, std::memory_order_release);

    // Producer end: the most recently exchanged hook.
    alignas(detail::cache_line) typename sync::template atomic<hook_type*> head_{&stub_};
    // Consumer end: the next hook to hand out (or the stub). Atomic only so that
    // empty_approx may read it from any thread.
    alignas(detail::cache_line) typename sync::template atomic<hook_type*> tail_{&stub_};
    // On a line of its own: a producer that links behind the stub writes stub_.next, which
    // must not invalidate the consumer's tail_ line.
    alignas(detail::cache_line) hook_type stub_;
};

}  // namespace opreg
