// SPDX-License-Identifier: Apache-2.0
// (d) object_pool churn and (e) intrusive_mpsc_queue with many producers: the primitives
// the mpsc_queue strategy is built from, stressed on their own.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <opreg/intrusive_mpsc_queue.hpp>
#include <opreg/object_pool.hpp>

#include "oracle.hpp"
#include "scenarios.hpp"

namespace opreg_stress {

// Threads create and destroy pool objects as fast as they can, holding a few each. A flag
// per slot, flipped with exchange, catches a slot handed out while still live.
inline tally pool_churn(const options& o) {
    struct item {
        std::uint64_t owner;
        std::uint64_t serial;
    };
    // Small, so a freed slot is soon handed out again: a slot handed out while live shows.
    constexpr std::size_t capacity = 64;
    // Per thread. The pool runs dry (refused=) only when the threads can hold more than
    // `capacity` together: --threads 8 or more (the threads are --threads + 1).
    constexpr std::size_t max_held = 8;
    constexpr int churn_per_check = 256;  // creates and destroys between two clock reads
    opreg::object_pool<item> pool(capacity);
    auto in_use = std::make_unique<std::atomic<bool>[]>(capacity);
    std::atomic<std::uint64_t> created{0}, destroyed{0}, exhausted{0}, double_handout{0},
        corrupted{0};
    const auto deadline = deadline_after(o.seconds);

    std::vector<std::thread> threads;
    for (int t = 0; t < o.threads + 1; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937_64 rng(thread_seed(o, seed_stream::pool_churn, t));
            std::vector<item*> held;
            std::uint64_t serial = 0, made = 0, freed = 0, empty = 0;
            while (clock_type::now() < deadline) {
                for (int i = 0; i < churn_per_check; ++i) {
                    if (held.size() < max_held && rng() % 2) {
                        item* p = pool.try_create(item{std::uint64_t(t), ++serial});
                        if (p == nullptr) {
                            ++empty;
                            continue;
                        }
                        if (in_use[pool.index_of(p)].exchange(true, std::memory_order_acq_rel))
                            double_handout.fetch_add(1);
                        ++made;
                        held.push_back(p);
                    } else if (!held.empty()) {
                        const std::size_t k = rng() % held.size();
                        item* p = held[k];
                        if (p->owner != std::uint64_t(t)) corrupted.fetch_add(1);
                        held[k] = held.back();
                        held.pop_back();
                        in_use[pool.index_of(p)].store(false, std::memory_order_release);
                        pool.destroy(p);
                        ++freed;
                    }
                }
            }
            for (item* p : held) {
                in_use[pool.index_of(p)].store(false, std::memory_order_release);
                pool.destroy(p);
                ++freed;
            }
            created.fetch_add(made);
            destroyed.fetch_add(freed);
            exhausted.fetch_add(empty);
        });
    }
    for (auto& th : threads) th.join();

    tally out{"object_pool", "pool_churn"};
    out.stats.armed = created.load();
    out.stats.completed = destroyed.load();
    out.accepted = created.load();
    out.duplicated = double_handout.load();
    out.lost = created.load() - destroyed.load();
    if (out.duplicated != 0) out.fail("pool handed out a live slot " + std::to_string(out.duplicated) + " times");
    if (corrupted.load() != 0) out.fail("an object changed under its holder");
    if (pool.size_approx() != 0) out.fail("pool not empty at rest");
    // Every slot can be taken again once all were returned.
    std::vector<item*> all;
    while (item* p = pool.try_create(item{0, 0})) all.push_back(p);
    if (all.size() != capacity) out.fail("only " + std::to_string(all.size()) + " slots came back");
    for (item* p : all) pool.destroy(p);
    out.stats.failures = exhausted.load();  // reported exhaustion, not a failure of the pool
    return out;
}

// Producers push pool-allocated nodes tagged (producer, sequence); one consumer pops and
// frees them. Every node arrives exactly once and each producer's nodes in order.
inline tally mpsc_producers(const options& o) {
    struct node {
        opreg::mpsc_hook hook;
        std::uint32_t producer;
        std::uint64_t seq;
    };
    using queue_type = opreg::intrusive_mpsc_queue<node, &node::hook>;
    constexpr std::size_t pool_nodes = 4096;  // how far producers may run ahead of the consumer
    constexpr int pushes_per_check = 256;     // pushes between two clock reads
    const int producers = o.threads;
    opreg::object_pool<node> pool(pool_nodes);
    queue_type queue;
    std::atomic<int> done{0};
    std::vector<std::uint64_t> pushed(producers, 0);
    const auto deadline = deadline_after(o.seconds);

    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            std::uint64_t seq = 0;
            while (clock_type::now() < deadline) {
                for (int i = 0; i < pushes_per_check; ++i) {
                    node* n = pool.try_create();
                    if (n == nullptr) {  // consumer behind: back off, never drop
                        std::this_thread::yield();
                        continue;
                    }
                    n->producer = std::uint32_t(p);
                    n->seq = ++seq;
                    queue.push(n);
                }
            }
            pushed[p] = seq;
            done.fetch_add(1, std::memory_order_release);
        });
    }

    std::vector<std::uint64_t> last(producers, 0);
    std::uint64_t popped = 0, out_of_order = 0;
    for (;;) {
        node* n = queue.try_pop();
        if (n == nullptr) {
            if (done.load(std::memory_order_acquire) == producers && queue.empty_approx()) {
                // A producer may sit between its exchange and its link store; settle.
                if ((n = queue.try_pop()) == nullptr) break;
            } else {
                std::this_thread::yield();
                continue;
            }
        }
        if (n->seq != last[n->producer] + 1) ++out_of_order;
        last[n->producer] = n->seq;
        ++popped;
        pool.destroy(n);
    }
    for (auto& th : threads) th.join();
    while (node* n = queue.try_pop()) {  // after the joins every link is in place
        if (n->seq != last[n->producer] + 1) ++out_of_order;
        last[n->producer] = n->seq;
        ++popped;
        pool.destroy(n);
    }

    tally out{"intrusive_mpsc_queue", "mpsc_producers"};
    std::uint64_t total = 0;
    for (int p = 0; p < producers; ++p) {
        total += pushed[p];
        if (last[p] != pushed[p])
            out.fail("producer " + std::to_string(p) + ": pushed " + std::to_string(pushed[p]) +
                     ", last popped " + std::to_string(last[p]));
    }
    out.stats.armed = total;
    out.stats.completed = popped;
    out.accepted = total;
    out.lost = total > popped ? total - popped : 0;
    out.duplicated = popped > total ? popped - total : 0;
    if (out_of_order != 0) out.fail(std::to_string(out_of_order) + " nodes out of order or repeated");
    if (out.lost != 0 || out.duplicated != 0) out.fail("pushed != popped");
    if (pool.size_approx() != 0) out.fail("nodes not returned to the pool");
    return out;
}

} // namespace opreg_stress
