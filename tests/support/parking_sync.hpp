// SPDX-License-Identifier: Apache-2.0
// A synchronisation policy (opreg/detail/sync.hpp) that can stop one thread in the middle of
// an operation, for the progress tests: the thread that arms it parks right after its next
// successful compare-exchange, or its next exchange of a pointer (an intrusive_mpsc_queue
// push between its exchange and its link store), with that step's effect visible to every
// other thread. The tests then check that every other call still returns.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

#include <gtest/gtest.h>

#include <opreg/detail/sync.hpp>

namespace opreg_test {

// Where the armed thread stops.
enum class park_at { cas, pointer_exchange };

struct parking_point {
    park_at where = park_at::cas;
    std::mutex m;
    std::condition_variable cv;
    bool parked = false;
    bool released = false;
    bool finished = false;  // the thread's function returned (without parking, if !parked)

    void park() {
        std::unique_lock lock{m};
        parked = true;
        cv.notify_all();
        cv.wait(lock, [this] { return released; });
    }
};
inline thread_local parking_point* park_point = nullptr;

// Parks the calling thread if it armed a parking point for this kind of step.
inline void maybe_park(park_at step) {
    if (park_point != nullptr && park_point->where == step) {
        std::exchange(park_point, nullptr)->park();
    }
}

template <class T>
struct parking_atomic : std::atomic<T> {
    using std::atomic<T>::atomic;
    bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                               std::memory_order failure) noexcept {
        const bool ok = std::atomic<T>::compare_exchange_weak(expected, desired, success, failure);
        if (ok) maybe_park(park_at::cas);
        return ok;
    }
    bool compare_exchange_weak(T& expected, T desired, std::memory_order order) noexcept {
        return compare_exchange_weak(expected, desired, order, failure_order(order));
    }
    bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                                 std::memory_order failure) noexcept {
        const bool ok = std::atomic<T>::compare_exchange_strong(expected, desired, success, failure);
        if (ok) maybe_park(park_at::cas);
        return ok;
    }
    bool compare_exchange_strong(T& expected, T desired,
                                 std::memory_order order = std::memory_order_seq_cst) noexcept {
        return compare_exchange_strong(expected, desired, order, failure_order(order));
    }
    T exchange(T desired, std::memory_order order = std::memory_order_seq_cst) noexcept {
        const T old = std::atomic<T>::exchange(desired, order);
        if constexpr (std::is_pointer_v<T>) maybe_park(park_at::pointer_exchange);
        return old;
    }

private:
    static constexpr std::memory_order failure_order(std::memory_order o) noexcept {
        if (o == std::memory_order_acq_rel) return std::memory_order_acquire;
        if (o == std::memory_order_release) return std::memory_order_relaxed;
        return o;
    }
};

struct parking_sync : opreg::detail::std_sync {
    template <class T>
    using atomic = parking_atomic<T>;
};

// Runs `fn` on a thread of its own that parks at its first step of kind `where`; returns once
// it is parked (a failure of the test if it finishes, or has not parked after 10 s, without).
// release() lets it finish and joins it.
struct parked_thread {
    parking_point point;
    std::thread t;

    template <class Fn>
    parked_thread(park_at where, Fn fn) {
        point.where = where;
        t = std::thread{[this, fn = std::move(fn)]() mutable {
            park_point = &point;
            fn();
            park_point = nullptr;
            std::lock_guard lock{point.m};
            point.finished = true;
            point.cv.notify_all();
        }};
        std::unique_lock lock{point.m};
        if (!point.cv.wait_for(lock, std::chrono::seconds(10),
                               [this] { return point.parked || point.finished; }) ||
            !point.parked)
            ADD_FAILURE() << "the thread never stopped at its step: the test stops nothing";
    }
    void unpark() {
        {
            std::lock_guard lock{point.m};
            point.released = true;
        }
        point.cv.notify_all();
    }
    void release() {
        unpark();
        if (t.joinable()) t.join();
    }
    ~parked_thread() { release(); }
};

// `fn` must return within 5 s while `stopped` is parked (a call that waits for that thread
// never returns; a sanitizer on a busy machine is slow, not that slow): else the code under
// test made it wait. On a failure the parked thread is let go, so that the test ends.
template <class Fn>
::testing::AssertionResult returns_promptly(parked_thread& stopped, Fn fn) {
    auto done = std::async(std::launch::async, std::move(fn));
    if (done.wait_for(std::chrono::seconds(5)) == std::future_status::ready)
        return ::testing::AssertionSuccess();
    stopped.unpark();  // the future's destructor waits for fn, which can finish now
    return ::testing::AssertionFailure() << "did not return while another thread was stopped";
}

}  // namespace opreg_test
