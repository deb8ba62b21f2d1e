// SPDX-License-Identifier: Apache-2.0
// Registry benchmarks: registry/<strategy>/<scenario>, every strategy in the same process.
//
//   arm_fire      one thread arms a read and dispatches its readiness, over and over
//   arm_cancel    each thread arms and cancels on its own fds (thread 0 also applies the hand-off, so a
//                 hand-off strategy's owner work is inside the timed region)
//   mixed         thread 0 dispatches and applies the hand-off; the others arm, cancel and close
//   cross_thread  threads 1..n-1 arm, keeping up to 1000 ops in flight each (an fd is
//                 armed again only once its op has ended); thread 0 dispatches readiness
//                 round-robin over their fds (alone, it does both); items are ops ended
//                 ready
//   memory        heap bytes per pending op with every (fd, direction) pending
//
// Throughput is items_per_second in real time (operations ended for cross_thread,
// operations armed elsewhere). Registries are built before the timed loop by thread 0;
// Google Benchmark's start barrier orders that before the other threads touch them.
#include <malloc.h>

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <benchmark/benchmark.h>

#include <opreg/detail/cache_line.hpp>
#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

namespace {

using namespace opreg;

// Thread counts of the contended scenarios run 1, 2, 4, 8: up to past this machine's 2
// cores, where a thread can be descheduled while it holds a lock.
constexpr int max_threads = 8;

template <class R>
struct shared_registry {
    static inline std::unique_ptr<R> reg;
    static inline std::vector<fd_token> tokens;
    static void make(std::uint32_t max_fds) {
        reg = std::make_unique<R>(registry_config{.max_fds = max_fds, .max_pending = 0});
        tokens.clear();
        for (std::uint32_t fd = 0; fd < max_fds; ++fd)
            tokens.push_back(reg->token_of(static_cast<int>(fd)).value());
    }
    // Thread 0, after the run: lets a hand-off registry apply what is still queued, then
    // frees it.
    static void release() {
        while (reg->apply_handed_off() != 0) {
        }
        reg.reset();
    }
};

struct alignas(detail::cache_line) counter {
    std::atomic<std::uint64_t> n{0};
};

template <class R>
void arm_fire(benchmark::State& state) {
    // The fds armed in turn; the index is masked, so a power of 2.
    constexpr std::uint32_t fds = 1024;
    static_assert(std::has_single_bit(fds));
    R reg{registry_config{.max_fds = fds}};
    std::vector<fd_token> tokens;
    for (std::uint32_t fd = 0; fd < fds; ++fd) tokens.push_back(reg.token_of(int(fd)).value());
    std::uint64_t ended = 0;
    std::uint32_t i = 0;
    for (auto _ : state) {
        const std::uint32_t fd = i++ & (fds - 1);
        auto t = reg.arm(int(fd), direction::read, [&ended](const completion&) { ++ended; });
        benchmark::DoNotOptimize(t);
        reg.dispatch(tokens[fd], readiness::readable);
    }
    if (ended != std::uint64_t(state.iterations())) state.SkipWithError("an op did not end");
    state.SetItemsProcessed(state.iterations());
}

template <class R>
void arm_cancel(benchmark::State& state) {
    // Each thread's own fds, apart from the others'; masked, so a power of 2.
    constexpr std::uint32_t per_thread = 256;
    static_assert(std::has_single_bit(per_thread));
    using shared = shared_registry<R>;
    if (state.thread_index() == 0) shared::make(per_thread * std::uint32_t(state.threads()));
    const int base = state.thread_index() * int(per_thread);
    std::uint32_t i = 0;
    for (auto _ : state) {
        R& reg = *shared::reg;
        const int fd = base + int(i++ & (per_thread - 1));
        auto t = reg.arm(fd, direction::read, [](const completion&) {});
        if (t) reg.cancel(t.value());
        if (state.thread_index() == 0) reg.apply_handed_off();
    }
    state.SetItemsProcessed(state.iterations());
    if (state.thread_index() == 0) shared::release();
}

template <class R>
void mixed(benchmark::State& state) {
    // Each thread's own fds to arm, cancel and close; thread 0 dispatches over all of them.
    constexpr std::uint32_t per_thread = 256;
    // The mix, against a pick uniform in [0, 100): thread 0 dispatches below dispatch_below
    // (other threads arm there instead); then arm below arm_below, cancel the thread's last
    // op below cancel_below, close the fd above it.
    constexpr unsigned dispatch_below = 40, arm_below = 75, cancel_below = 95;
    using shared = shared_registry<R>;
    const std::uint32_t fds = per_thread * std::uint32_t(state.threads());
    if (state.thread_index() == 0) shared::make(fds);
    std::minstd_rand rng(1 + state.thread_index());
    const int base = state.thread_index() * int(per_thread);
    op_token last{};
    for (auto _ : state) {
        R& reg = *shared::reg;
        const unsigned pick = rng() % 100;  // a percentage
        const int fd = base + int(rng() % per_thread);
        if (state.thread_index() == 0 && pick < dispatch_below) {
            const int any = int(rng() % fds);
            reg.dispatch(reg.token_of(any).value(), readiness::readable);
        } else if (pick < arm_below) {
            auto t = reg.arm(fd, rng() % 2 ? direction::read : direction::write,
                             [](const completion&) {});
            if (t) last = t.value();
        } else if (pick < cancel_below) {
            reg.cancel(last);
        } else {
            reg.close(fd);
        }
        if (state.thread_index() == 0) reg.apply_handed_off();
    }
    state.SetItemsProcessed(state.iterations());
    if (state.thread_index() == 0) shared::release();
}

template <class R>
void cross_thread(benchmark::State& state) {
    // Ops each armer keeps pending, as a server keeps one per idle connection.
    constexpr std::uint32_t in_flight = 1000;
    using shared = shared_registry<R>;
    const int armers = state.threads() > 1 ? state.threads() - 1 : 1;
    const std::uint32_t fds = in_flight * std::uint32_t(armers);
    // Per fd: an op of ours is pending (set by its armer, cleared by the callback), so that
    // an armer, like a real client, arms an fd only once its last op has ended.
    static std::unique_ptr<std::atomic<bool>[]> pending;
    static std::unique_ptr<counter[]> ready;
    if (state.thread_index() == 0) {
        shared::make(fds);
        pending = std::make_unique<std::atomic<bool>[]>(fds);
        ready = std::make_unique<counter[]>(std::size_t(armers));
    }
    const bool alone = state.threads() == 1;
    const bool dispatcher = state.thread_index() == 0;
    const int armer = alone ? 0 : state.thread_index() - 1;
    std::uint32_t next_arm = 0, next_dispatch = 0;
    for (auto _ : state) {
        R& reg = *shared::reg;
        if (!dispatcher || alone) {
            const std::uint32_t fd = std::uint32_t(armer) * in_flight + next_arm++ % in_flight;
            // acquire: pairs with the callback's release; its op has ended.
            if (!pending[fd].load(std::memory_order_acquire)) {
                pending[fd].store(true, std::memory_order_relaxed);  // only we set it
                std::atomic<bool>* flag = &pending[fd];
                std::atomic<std::uint64_t>* mine = &ready[armer].n;
                auto t = reg.arm(int(fd), direction::read, [flag, mine](const completion& c) {
                    if (c.result == outcome::ready) mine->fetch_add(1, std::memory_order_relaxed);
                    flag->store(false, std::memory_order_release);
                });
                if (!t) pending[fd].store(false, std::memory_order_relaxed);  // refused
            }
        }
        if (dispatcher) {
            const std::uint32_t fd = next_dispatch++ % fds;
            reg.dispatch(shared::tokens[fd], readiness::readable);
        }
    }
    if (!dispatcher || alone)
        state.SetItemsProcessed(std::int64_t(ready[armer].n.load(std::memory_order_relaxed)));
    if (dispatcher) {
        while (shared::reg->apply_handed_off() != 0) {
        }
    }
    // The registry stays until the next run makes a new one.
}

template <class R>
void memory(benchmark::State& state) {
    // Enough pending ops that a registry's fixed cost (its object, a hash table's first
    // buckets) is a small share of the per-op figure.
    constexpr std::uint32_t fds = 16384;
    const std::size_t ops = std::size_t{2} * fds;
    double per_op = 0;
    for (auto _ : state) {
        // In use: small chunks plus mmap'ed ones (a slot array is one large block).
        auto in_use = [] {
            const struct mallinfo2 mi = mallinfo2();
            return mi.uordblks + mi.hblkhd;
        };
        const std::size_t before = in_use();
        {
            R reg{registry_config{.max_fds = fds}};
            for (std::uint32_t fd = 0; fd < fds; ++fd)
                for (const direction d : {direction::read, direction::write})
                    (void)reg.arm(int(fd), d, [](const completion&) {});
            reg.apply_handed_off();
            const std::size_t after = in_use();
            per_op = double(after - before) / double(ops);
            for (std::uint32_t fd = 0; fd < fds; ++fd) reg.close(int(fd));
            reg.apply_handed_off();
        }
    }
    state.counters["bytes_per_pending_op"] = per_op;
}

template <class R>
void register_strategy() {
    const std::string n = std::string("registry/") + std::string(R::name()) + "/";
    benchmark::RegisterBenchmark((n + "arm_fire").c_str(), arm_fire<R>);
    benchmark::RegisterBenchmark((n + "arm_cancel").c_str(), arm_cancel<R>)
        ->ThreadRange(1, max_threads)->UseRealTime();
    benchmark::RegisterBenchmark((n + "mixed").c_str(), mixed<R>)
        ->ThreadRange(1, max_threads)->UseRealTime();
    benchmark::RegisterBenchmark((n + "cross_thread").c_str(), cross_thread<R>)
        ->ThreadRange(1, max_threads)->UseRealTime();
    benchmark::RegisterBenchmark((n + "memory").c_str(), memory<R>)->Iterations(1);
}

} // namespace

void register_registry_benchmarks() {
    for_each_strategy([]<class R>(std::type_identity<R>) { register_strategy<R>(); });
}
