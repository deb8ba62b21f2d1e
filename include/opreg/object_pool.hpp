// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/object_pool.hpp — a lock-free, fixed-capacity pool of T, with a tagged free list.
///
/// object_pool<T> hands out storage for up to `capacity` objects of T. The storage is one
/// array allocated in the constructor; try_create and destroy never allocate, never block,
/// and never hand out a slot that is still in use: when every slot is live, try_create
/// returns nullptr. (The pool this library grew out of, `next_free.fetch_add(1) % N`, wraps
/// around onto live objects instead; tests/object_pool_test.cpp shows both side by side.)
///
/// Guarantees
/// - Lock-free, not wait-free: try_create and destroy are CAS retry loops on one head word.
///   A CAS fails only because another thread's CAS succeeded, so some thread always makes
///   progress, but one thread can in principle retry indefinitely under heavy contention.
/// - Any thread may call try_create and destroy, concurrently; a slot may be created on one
///   thread and destroyed on another.
/// - Slot indices are stable for the pool's life: index_of/at map an object to a 32-bit
///   index and back, which is what a token (index + generation) carries through the kernel.
/// - If T's constructor throws, the slot goes back on the free list and the exception
///   propagates. destroy runs ~T exactly once; ~object_pool destroys nothing, since it cannot
///   know which slots are live. Objects still alive then are a caller bug (asserted in debug).
///
/// When to use: many short-lived objects of one type with a known upper bound (pending
/// operations, connection state), created and destroyed on several threads, where a heap
/// allocation per object, or a mutex around a free list, is the cost to remove.
/// When not to: the bound is unknown (exhaustion is reported, not absorbed by growing); one
/// thread does all creates and destroys (a plain free list is cheaper); objects are large
/// and the pool mostly empty (the whole capacity is reserved up front).
///
/// Memory ordering
/// - Everything a thread did to an object before destroy(p), ~T included, happens-before
///   everything the thread whose try_create later returns the same slot does with it: the
///   release CAS in destroy pairs with the acquire CAS in try_create.
/// - size_approx walks the free list: exact when no create or destroy is in flight, an
///   estimate otherwise. (There is no live counter: it would be one more contended atomic on
///   every create and destroy, only for statistics.)
///
/// Free list and capacity limits
/// - head_ packs [tag | index]: the index takes the bits the capacity needs
///   (index_bits = bit_width(capacity), at least 1) and the tag takes the rest, 64 - index_bits,
///   at least 32. Each slot's `next` link is a std::atomic<uint32_t> index. Every successful
///   CAS on head_ increments the tag, so a popper that read a stale `next` (the slot was
///   popped and pushed back meanwhile) fails its CAS and retries. A wrong pop (ABA) would
///   need exactly a multiple of 2^tag_bits successful CASes on head_ while one thread sits
///   between its load of head_ and its CAS, with the same index back on top: for a pool of
///   4096 that is 2^51 CASes (a stall of 1.4 years at 50M CAS/s); for the largest pool a
///   registry makes (2^25 ops, max_fds 2^24) 2^38, a stall of 90 minutes.
/// - The index field's all-ones value marks the end of the list, so capacity must be below
///   2^32 - 1; the constructor throws std::length_error otherwise.
///
/// Sync, the synchronisation policy (detail/sync.hpp), gives the atomics, push_free's
/// release (push_order) and the tag bump (next_tag); std_sync, the default, keeps them as
/// written. stress/relacy/pool_model.cpp runs this code with Relacy's.
#pragma once

#include <opreg/config.hpp>

#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <opreg/detail/cache_line.hpp>
#include <opreg/detail/sync.hpp>

namespace opreg {

namespace detail {

// The end of the list in a slot's `next` link.
inline constexpr std::uint32_t pool_end = std::numeric_limits<std::uint32_t>::max();

// White-box access for tests (a stalled popper, a tag near the top of its width); declared
// here, defined only by the tests.
template <class Pool>
struct pool_test_access;

}  // namespace detail

/// A lock-free pool of `capacity` objects of T, with a tagged free list: exhaustion returns
/// nullptr, never an object in use.
template <class T, class Sync = detail::std_sync>
class object_pool {
public:
    /// Room for `capacity` objects, allocated up front; throws std::invalid_argument beyond the
    /// index width.
    explicit object_pool(std::size_t capacity)
        : capacity_{checked_capacity(capacity)},
          index_bits_{capacity_ == 0 ? 1 : static_cast<int>(std::bit_width(capacity_))},
          index_mask_{(std::uint64_t{1} << index_bits_) - 1} {
        slots_ = std::make_unique<slot[]>(capacity_);
        for (std::size_t i = 0; i + 1 < capacity_; ++i) {
            // relaxed: no other thread can see the pool before the constructor returns.
            slots_[i].next.store(static_cast<std::uint32_t>(i + 1), std::memory_order_relaxed);
        }
        if (capacity_ != 0) {
            slots_[capacity_ - 1].next.store(detail::pool_end, std::memory_order_relaxed);
        }
        head_.store(pack(0, capacity_ == 0 ? end_index() : 0), std::memory_order_relaxed);
    }

    ~object_pool() {
        assert(size_approx() == 0 && "object_pool destroyed with objects still alive");
    }

    object_pool(const object_pool&) = delete;
    object_pool& operator=(const object_pool&) = delete;

    /// Constructs a T from args in a free slot; nullptr when every slot is live.
    template <class... Args>
    [[nodiscard]] T* try_create(Args&&... args) {
        const std::uint32_t index = pop_free();
        if (index == end_index()) {
            return nullptr;
        }
        T* p;
#if defined(__cpp_exceptions)
        if constexpr (std::is_nothrow_constructible_v<T, Args&&...>) {
            p = std::construct_at(&slots_[index].value, std::forward<Args>(args)...);
        } else {
            try {
                p = std::construct_at(&slots_[index].value, std::forward<Args>(args)...);
            } catch (...) {
                push_free(index);
                throw;
            }
        }
#else  // -fno-exceptions: a constructor cannot throw
        p = std::construct_at(&slots_[index].value, std::forward<Args>(args)...);
#endif
        return p;
    }

    /// Runs ~T and returns the slot. p must be a live object from this pool's try_create.
    void destroy(T* p) noexcept {
        assert(p != nullptr && owns(p));
        const std::uint32_t index = index_of(p);
        std::destroy_at(p);
        push_free(index);
    }

    /// How many objects the pool holds.
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

    /// Live objects: capacity minus the free list's length. Exact when quiescent; while
    /// creates/destroys are in flight, an estimate. O(free slots): not for a hot path.
    [[nodiscard]] std::size_t size_approx() const noexcept {
        // acquire: pairs with push_free's release CAS, so the links of the nodes on the
        // list are visible; under concurrent use they may be stale, hence the bound.
        std::uint32_t i = index_in(head_.load(std::memory_order_acquire));
        std::size_t free = 0;
        while (i != end_index() && i < capacity_ && free < capacity_) {
            ++free;
            // relaxed: ordered by the acquire above when quiescent; an estimate otherwise.
            const std::uint32_t next = slots_[i].next.load(std::memory_order_relaxed);
            i = next == detail::pool_end ? end_index() : next;
        }
        return capacity_ - free;
    }

    /// Bits of the ABA tag in the head word: 64 - bit_width(capacity), at least 32.
    [[nodiscard]] int tag_bits() const noexcept { return 64 - index_bits_; }

    /// True when p is the address of one of this pool's slots (live or not).
    [[nodiscard]] bool owns(const T* p) const noexcept {
        const auto addr = reinterpret_cast<std::uintptr_t>(p);
        const auto base = base_address();
        if (addr < base) {
            return false;
        }
        const std::uintptr_t offset = addr - base;
        return offset / sizeof(slot) < capacity_ && offset % sizeof(slot) == 0;
    }

    /// Slot index of p, in [0, capacity()). p must be owned by this pool.
    [[nodiscard]] std::uint32_t index_of(const T* p) const noexcept {
        assert(owns(p));
        return static_cast<std::uint32_t>((reinterpret_cast<std::uintptr_t>(p) - base_address()) /
                                          sizeof(slot));
    }

    /// Address of slot index. The object there may not be alive: the caller knows (a token's
    /// generation, say) before using it. The pointer names the slot's T member, so it refers
    /// to whichever object try_create constructs there, without std::launder.
    [[nodiscard]] T* at(std::uint32_t index) noexcept {
        assert(index < capacity_);
        return &slots_[index].value;
    }

private:
    template <class Pool>
    friend struct detail::pool_test_access;

    template <class U>
    using atomic = typename Sync::template atomic<U>;

    // push_free's release; a model weakens it to show that it is needed.
    static constexpr std::memory_order push_order =
        Sync::order(detail::sync_site::pool_push, std::memory_order_release);

    // One slot: the object's storage first, so a T* and its slot share an address.
    struct slot {
        union {
            T value;  // constructed by try_create, destroyed by destroy; never by the slot
        };
        atomic<std::uint32_t> next{detail::pool_end};  // free-list link, valid while free
        slot() noexcept {}
        ~slot() {}
    };

    // The head word: [tag: 64 - index_bits_ | index: index_bits_]. The tag wraps within its
    // field (the carry leaves the word).
    [[nodiscard]] std::uint64_t pack(std::uint64_t tag, std::uint32_t index) const noexcept {
        return (tag << index_bits_) | index;
    }
    [[nodiscard]] std::uint64_t tag_of(std::uint64_t head) const noexcept {
        return head >> index_bits_;
    }
    [[nodiscard]] std::uint32_t index_in(std::uint64_t head) const noexcept {
        return static_cast<std::uint32_t>(head & index_mask_);
    }
    // The tag of the head word a successful CAS installs: one more than the head it replaces.
    // (A model's policy can keep it instead, the ABA the tag is for, which its model catches.)
    [[nodiscard]] std::uint64_t next_tag(std::uint64_t head) const noexcept {
        if constexpr (Sync::broken(detail::sync_site::pool_tag_kept)) {
            return tag_of(head);
        } else {
            return tag_of(head) + 1;
        }
    }
    // The end of the list in the head word: the index field's all-ones value.
    [[nodiscard]] std::uint32_t end_index() const noexcept {
        return static_cast<std::uint32_t>(index_mask_);
    }
    // A slot's link as an index in the head word's terms.
    [[nodiscard]] std::uint32_t link_to_index(std::uint32_t link) const noexcept {
        return link == detail::pool_end ? end_index() : link;
    }

    [[nodiscard]] static std::uint32_t checked_capacity(std::size_t capacity) {
        if (capacity >= detail::pool_end) {
#if defined(__cpp_exceptions)
            throw std::length_error("opreg::object_pool: capacity must be below 2^32 - 1");
#else
            std::fputs("opreg::object_pool: capacity must be below 2^32 - 1\n", stderr);
            std::abort();
#endif
        }
        return static_cast<std::uint32_t>(capacity);
    }

    [[nodiscard]] std::uintptr_t base_address() const noexcept {
        return reinterpret_cast<std::uintptr_t>(slots_.get());
    }

    // Takes the top index off the free list; end_index() when the list is empty.
    [[nodiscard]] std::uint32_t pop_free() noexcept {
        // acquire: pairs with the release CAS in push_free that put the top index there,
        // making its `next` link visible. Every write to head_ is an RMW, so a value written
        // by a pop still carries the release of each earlier push (release sequence).
        std::uint64_t head = head_.load(std::memory_order_acquire);
        for (;;) {
            const std::uint32_t index = index_in(head);
            if (index == end_index()) {
                return end_index();
            }
            // relaxed: the acquire on head_ made the link visible. If the slot was popped and
            // pushed back since, this may be stale, but head_'s tag has moved and the CAS fails.
            const std::uint32_t next =
                link_to_index(slots_[index].next.load(std::memory_order_relaxed));
            if (head_.compare_exchange_weak(
                    head, pack(next_tag(head), next),
                    // acquire: pairs with the release CAS in push_free (destroy) that freed
                    // this slot: the previous object's ~T happens-before our construction.
                    std::memory_order_acquire,
                    // acquire: on retry we read the new top's link, as for the first load.
                    std::memory_order_acquire)) {
                return index;
            }
        }
    }

    void push_free(std::uint32_t index) noexcept {
        // relaxed: the old top is only stored as our link and compared by the CAS; nothing
        // is read through it.
        std::uint64_t head = head_.load(std::memory_order_relaxed);
        for (;;) {
            // relaxed: published by the release CAS below.
            const std::uint32_t top = index_in(head);
            slots_[index].next.store(top == end_index() ? detail::pool_end : top,
                                     std::memory_order_relaxed);
            if (head_.compare_exchange_weak(
                    head, pack(next_tag(head), index),
                    // release: pairs with the acquire load/CAS in pop_free, publishing the
                    // link stored above and everything done to the slot before it was freed.
                    push_order,
                    // relaxed: as for the first load.
                    std::memory_order_relaxed)) {
                return;
            }
        }
    }

    std::unique_ptr<slot[]> slots_;
    std::uint32_t capacity_;
    int index_bits_;
    std::uint64_t index_mask_;
    alignas(detail::cache_line) atomic<std::uint64_t> head_{0};
    // The rest of head_'s line stays empty: nothing else is written by every create. (Sized
    // for std::atomic, 8 bytes; a model's larger atomic needs no padding.)
    char pad_[detail::cache_line - sizeof(std::uint64_t)] = {};
    static_assert(sizeof(std::atomic<std::uint64_t>) == sizeof(std::uint64_t));
};

}  // namespace opreg
