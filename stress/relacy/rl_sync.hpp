// SPDX-License-Identifier: Apache-2.0
// stress/relacy/rl_sync.hpp — the synchronisation policy that runs opreg's lock-free
// headers under Relacy, so that the models check the shipped code.
//
// model::rl_sync<Weakened...> is a policy for basic_slot_array, object_pool,
// basic_mpsc_hook (and so intrusive_mpsc_queue) and basic_mpsc_queue (see
// include/opreg/detail/sync.hpp for what a policy provides):
// - atomic<T> is rl_atomic<T>: an rl::atomic<T> behind the std::atomic member functions the
//   headers call, with std::memory_order mapped to Relacy's. Each call records its call site
//   in the header (function, file, line) where a hand-written model would write `$`.
// - cell<T> is rl_cell<T>: the value, plus an rl::var that every get() stores to, so that
//   Relacy reports a data race between two accesses that the atomics do not order. Every
//   access counts as a write, the stricter check: the headers move into and out of their
//   cells, or read a value that one thread wrote before handing the memory over.
// - order(site, as_written) is relaxed at each site in Weakened and as written elsewhere;
//   broken(site) is true for each site in Weakened. rl_sync<> is the shipped code.
//
// What Relacy does not see: detail::stat_counters keeps its counters in std::atomic, each
// thread adding to a shard picked by a thread_local seed. Relacy runs the model's threads as
// fibers of one OS thread, so they share one seed and one shard, and they add with a relaxed
// load and store; that is exact here, because Relacy switches fibers only at its own
// operations, never between that load and store. The counters order nothing (relaxed), so
// leaving them out of the model hides no ordering. The models read stats() once the threads
// have ended.
//
// Include order: every opreg header first, then this file. It brings in
// <relacy/relacy.hpp>, whose macros rename memory_order_relaxed and friends, new, delete and
// assert in any code that follows (so this file names orders std::memory_order::relaxed,
// and deletes nothing).
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>
#include <utility>

#include <opreg/detail/cache_line.hpp>
#include <opreg/detail/sync.hpp>

#include <relacy/relacy.hpp>

namespace model {

// A function's name without its namespace, return type, parameters and template arguments
// ("basic_slot_array<Sync>::arm"), kept for the life of the program: Relacy prints it in
// every step of a failing history.
inline const char* short_name(const char* pretty) {
    // A fixed table, not a map: Relacy counts heap blocks per iteration. More entries than
    // the headers have functions that touch an atomic; past them, the full name is printed.
    constexpr int max_names = 64;
    struct entry {
        const char* pretty;
        char name[80];  // longer names are cut; the header's line number still places them
    };
    static entry names[max_names];
    static int used = 0;
    for (int i = 0; i != used; ++i)
        if (names[i].pretty == pretty) return names[i].name;
    if (used == max_names) return pretty;
    const char* end = std::strchr(pretty, '(');
    if (end == nullptr) return pretty;
    const char* begin = end;
    for (int depth = 0; begin != pretty && (begin[-1] != ' ' || depth != 0); --begin) {
        if (begin[-1] == '>') ++depth;
        if (begin[-1] == '<') --depth;
    }
    if (std::strncmp(begin, "opreg::", 7) == 0) begin += 7;
    entry& e = names[used++];
    e.pretty = pretty;
    const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(end - begin),
                                                sizeof e.name - 1);
    std::memcpy(e.name, begin, n);
    e.name[n] = '\0';
    return e.name;
}

// A file from its include/ (or stress/) directory on.
inline const char* short_file(const char* path) {
    for (const char* dir : {"/include/", "/stress/"})
        if (const char* at = std::strstr(path, dir)) return at + 1;
    return path;
}

// The call site in the header, as Relacy's `$` would give it.
inline rl::debug_info site_of(const std::source_location& at) {
    return rl::debug_info(short_name(at.function_name()), short_file(at.file_name()),
                          at.line());
}

inline rl::memory_order rl_order(std::memory_order mo) {
    switch (mo) {
        case std::memory_order::relaxed: return rl::mo_relaxed;
        case std::memory_order::consume: return rl::mo_consume;
        case std::memory_order::acquire: return rl::mo_acquire;
        case std::memory_order::release: return rl::mo_release;
        case std::memory_order::acq_rel: return rl::mo_acq_rel;
        case std::memory_order::seq_cst: return rl::mo_seq_cst;
    }
    return rl::mo_seq_cst;
}

// The failure order of a compare_exchange given one order, as std::atomic derives it.
constexpr std::memory_order failure_order_of(std::memory_order mo) {
    if (mo == std::memory_order::acq_rel) return std::memory_order::acquire;
    if (mo == std::memory_order::release) return std::memory_order::relaxed;
    return mo;
}

// What a watcher is told about one access to an atomic (see rl_atomic::watch).
enum class access : std::uint8_t {
    load,   // a load, or a compare_exchange that failed: before == after == the value read
    store,  // before == after == the value stored
    rmw,    // exchange, fetch_add/sub, a compare_exchange that succeeded: the change made
};

// Cache-line aligned, for the search's sake: an array the headers allocate that holds an
// rl_atomic (a registry's slots, a pool's) is then over-aligned, and comes from the aligned
// operator new, which Relacy does not replace. Relacy makes every free of its own heap a
// branch of the search (it varies address reuse), and these arrays are freed after every
// check, at the end of each iteration: each would double a bounded search for nothing.
// (Any alignment above the default new's would do; the headers' padding constant is one.)
template <class T>
class alignas(opreg::detail::cache_line) rl_atomic {
public:
    using location = std::source_location;

    // Construction initialises the atomic without a scheduling point: no other thread can
    // see an object under construction, as in std::atomic, where it is no atomic operation.
    rl_atomic() : rl_atomic(T{}) {}
    rl_atomic(T value, location at = location::current()) {
        rl::preemption_disabler quiet(rl::ctx());
        a_.store(value, rl::mo_relaxed, site_of(at));
    }
    // Not copyable, as rl::atomic is not. (No `= delete` here: Relacy's macros rename it.)

    T load(std::memory_order mo = std::memory_order::seq_cst,
           location at = location::current()) const {
        const T v = a_.load(rl_order(mo), site_of(at));
        seen(access::load, v, v);
        return v;
    }

    void store(T v, std::memory_order mo = std::memory_order::seq_cst,
               location at = location::current()) {
        a_.store(v, rl_order(mo), site_of(at));
        seen(access::store, v, v);
    }

    T exchange(T v, std::memory_order mo = std::memory_order::seq_cst,
               location at = location::current()) {
        const T before = a_.exchange(v, rl_order(mo), site_of(at));
        seen(access::rmw, before, v);
        return before;
    }

    T fetch_add(T d, std::memory_order mo = std::memory_order::seq_cst,
                location at = location::current())
        requires std::integral<T>
    {
        const T before = a_.fetch_add(d, rl_order(mo), site_of(at));
        seen(access::rmw, before, static_cast<T>(before + d));
        return before;
    }

    T fetch_sub(T d, std::memory_order mo = std::memory_order::seq_cst,
                location at = location::current())
        requires std::integral<T>
    {
        const T before = a_.fetch_sub(d, rl_order(mo), site_of(at));
        seen(access::rmw, before, static_cast<T>(before - d));
        return before;
    }

    bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                               std::memory_order failure, location at = location::current()) {
        return compare_exchange<true>(expected, desired, success, failure, at);
    }
    bool compare_exchange_weak(T& expected, T desired,
                               std::memory_order mo = std::memory_order::seq_cst,
                               location at = location::current()) {
        return compare_exchange<true>(expected, desired, mo, failure_order_of(mo), at);
    }
    bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                                 std::memory_order failure, location at = location::current()) {
        return compare_exchange<false>(expected, desired, success, failure, at);
    }
    bool compare_exchange_strong(T& expected, T desired,
                                 std::memory_order mo = std::memory_order::seq_cst,
                                 location at = location::current()) {
        return compare_exchange<false>(expected, desired, mo, failure_order_of(mo), at);
    }

    // Watching, for a model's bookkeeping (not part of the policy): while a watcher is set,
    // every access to every rl_atomic<T> calls fn(model, atomic, kind, before, after) right
    // after it, in the same step of the simulation (Relacy switches threads only at its own
    // operations), so a watcher sees each atomic's accesses in the order they ran, and for a
    // location that is its modification order. One watcher per T; a model sets it in its
    // constructor (watching<T>, below) and picks out the atomics it cares about by address.
    using watcher = void (*)(void* model, const rl_atomic& atomic, access kind, T before,
                             T after);
    static void watch(watcher fn, void* model) noexcept {
        watcher_ = fn;
        watched_by_ = model;
    }

private:
    template <bool Weak>
    bool compare_exchange(T& expected, T desired, std::memory_order success,
                          std::memory_order failure, const location& at) {
        const bool swapped = Weak ? a_.compare_exchange_weak(expected, desired, rl_order(success),
                                                             site_of(at), rl_order(failure),
                                                             site_of(at))
                                  : a_.compare_exchange_strong(expected, desired,
                                                               rl_order(success), site_of(at),
                                                               rl_order(failure), site_of(at));
        if (swapped) {
            seen(access::rmw, expected, desired);
        } else {
            seen(access::load, expected, expected);
        }
        return swapped;
    }

    void seen(access kind, T before, T after) const {
        if (watcher_ != nullptr) watcher_(watched_by_, *this, kind, before, after);
    }

    rl::atomic<T> a_;
    static inline watcher watcher_ = nullptr;
    static inline void* watched_by_ = nullptr;
};

static_assert(alignof(rl_atomic<int>) > __STDCPP_DEFAULT_NEW_ALIGNMENT__,
              "rl_atomic must be over-aligned, so that Relacy's heap does not serve it");

// Sets the watcher of every rl_atomic<T> for as long as it lives: a member of a model,
// constructed with it at the start of each iteration.
template <class T>
class watching {
public:
    watching(typename rl_atomic<T>::watcher fn, void* model) noexcept {
        rl_atomic<T>::watch(fn, model);
    }
    ~watching() { rl_atomic<T>::watch(nullptr, nullptr); }
};

template <class T>
class rl_cell {
public:
    using location = std::source_location;

    rl_cell() : rl_cell(T{}) {}
    explicit rl_cell(T value) : value_{std::move(value)}, accessed_{0} {}

    // One access: recorded as a store, then the value itself.
    [[nodiscard]] T& get(location at = location::current()) {
        accessed_(site_of(at)) = 0;
        return value_;
    }

private:
    T value_;
    rl::var<int> accessed_;
};

template <opreg::detail::sync_site... Weakened>
struct rl_sync {
    template <class T>
    using atomic = rl_atomic<T>;
    template <class T>
    using cell = rl_cell<T>;

    static constexpr bool broken(opreg::detail::sync_site s) noexcept {
        return ((s == Weakened) || ...);
    }
    static constexpr std::memory_order order(opreg::detail::sync_site s,
                                             std::memory_order as_written) noexcept {
        return broken(s) ? std::memory_order::relaxed : as_written;
    }
};

} // namespace model
