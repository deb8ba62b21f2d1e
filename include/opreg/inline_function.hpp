// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/inline_function.hpp — a move-only callable stored inline, never on the heap.
///
/// inline_function<R(Args...), Capacity> holds any callable whose size is at most Capacity
/// bytes and whose alignment is at most alignof(void*) (pointers, references, integers:
/// what a completion handler captures). Its size is Capacity + one pointer, so that a
/// registry slot (state word + callback) fits one 64-byte cache line. A larger callable is a
/// compile error (static_assert), never a silent heap allocation: that is the whole point,
/// since a std::function per operation is one of the costs the registries exist to remove.
///
/// - Move-only: callables that own resources (a unique_ptr, a buffer handle) are fine.
/// - The callable must be nothrow-move-constructible, so moving a pending operation between
///   a registry slot and the stack cannot throw halfway.
/// - Invoking an empty inline_function is undefined; operator bool tells.
/// - Not thread-safe by itself: registries hand it from thread to thread with the
///   release/acquire pairs documented at the point of hand-off.
#pragma once

#include <opreg/config.hpp>

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace opreg {

template <class Signature, std::size_t Capacity>
class inline_function;

/// A move-only callable stored inline in `Capacity` bytes: a larger capture is a compile error,
/// never a heap allocation.
template <class R, class... Args, std::size_t Capacity>
class inline_function<R(Args...), Capacity> {
    static_assert(Capacity % alignof(void*) == 0,
                  "Capacity must be a multiple of the pointer size");

public:
    /// Bytes of captures held inline.
    static constexpr std::size_t capacity = Capacity;

    /// An empty function.
    inline_function() noexcept = default;
    /// An empty function.
    inline_function(std::nullptr_t) noexcept {}

    /// Stores `f` inline; a null function pointer makes an empty function.
    template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, inline_function> &&
             std::is_invocable_r_v<R, std::decay_t<F>&, Args...>) inline_function(F&& f)
    noexcept(std::is_nothrow_constructible_v<std::decay_t<F>, F&&>) {
        using Fn = std::decay_t<F>;
        static_assert(sizeof(Fn) <= Capacity,
                      "callable too large for inline storage: capture less (a pointer to "
                      "your state, which outlives the operation), or build opreg with a "
                      "larger OPREG_CALLBACK_CAPACITY / OPREG_TASK_CAPACITY / "
                      "OPREG_ACCEPTOR_FN_CAPACITY (CMake options, docs/install.md)");
        static_assert(alignof(Fn) <= alignof(void*), "callable over-aligned for inline storage");
        static_assert(std::is_nothrow_move_constructible_v<Fn>,
                      "callable must be nothrow-move-constructible");
        if constexpr (std::is_pointer_v<Fn> || std::is_member_pointer_v<Fn>) {
            if (f == nullptr) return;  // a null function pointer makes an empty function
        }
        ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(f));
        ops_ = &ops_for<Fn>;
    }

    /// Takes `other`'s callable, leaving it empty.
    inline_function(inline_function&& other) noexcept { take(other); }

    /// Destroys this callable and takes `other`'s, leaving it empty.
    inline_function& operator=(inline_function&& other) noexcept {
        if (this != &other) {
            reset();
            take(other);
        }
        return *this;
    }

    inline_function(const inline_function&) = delete;
    inline_function& operator=(const inline_function&) = delete;

    /// Destroys the callable.
    ~inline_function() { reset(); }

    /// Destroys the callable: the function is empty after.
    void reset() noexcept {
        if (ops_ != nullptr) {
            ops_->destroy(storage_);
            ops_ = nullptr;
        }
    }

    /// Whether a callable is held.
    explicit operator bool() const noexcept { return ops_ != nullptr; }

    /// Calls the callable; it must not be empty.
    R operator()(Args... args) { return ops_->invoke(storage_, std::forward<Args>(args)...); }

private:
    struct ops {
        R (*invoke)(void*, Args&&...);
        void (*move_destroy)(void* from, void* to) noexcept;  // move into `to`, destroy `from`
        void (*destroy)(void*) noexcept;
    };

    template <class Fn>
    static constexpr ops ops_for{
        [](void* p, Args&&... a) -> R {
            if constexpr (std::is_void_v<R>) {  // a callable's own result is discarded
                (*std::launder(static_cast<Fn*>(p)))(std::forward<Args>(a)...);
            } else {
                return (*std::launder(static_cast<Fn*>(p)))(std::forward<Args>(a)...);
            }
        },
        [](void* from, void* to) noexcept {
            Fn* src = std::launder(static_cast<Fn*>(from));
            ::new (to) Fn(std::move(*src));
            src->~Fn();
        },
        [](void* p) noexcept { std::launder(static_cast<Fn*>(p))->~Fn(); },
    };

    void take(inline_function& other) noexcept {
        if (other.ops_ != nullptr) {
            other.ops_->move_destroy(other.storage_, storage_);
            ops_ = std::exchange(other.ops_, nullptr);
        }
    }

    alignas(void*) unsigned char storage_[Capacity];
    const ops* ops_ = nullptr;
};

}  // namespace opreg
