// SPDX-License-Identifier: Apache-2.0
// stress/relacy/pool_model.cpp — Relacy model of opreg::object_pool's tagged free list, run
// on the shipped header.
//
// MODELS include/opreg/object_pool.hpp itself: object_pool<int, model::rl_sync<>> (see
// rl_sync.hpp) is the shipped code on Relacy's atomics: pop_free() (an acquire load of head_,
// a relaxed load of the top slot's `next`, a CAS to [next_tag | next] that acquires on
// success and on failure) and push_free() (a relaxed load of head_, a relaxed store of the
// slot's `next`, a push_order (release) CAS to [next_tag | index]), with the header's own
// head word: for three slots, [tag: 62 bits | index: 2 bits]. A payload rl::var<int> per
// slot stands for the object, written after try_create and read before destroy, so that two
// owners of one slot, or an owner that does not see the previous owner's writes, are
// reported. At the end the model walks the free list (detail::pool_test_access).
//
// Script: three slots, three threads. Thread 0 creates two objects and destroys the first,
// then the second (pop, pop, push, push: the sequence that puts a popped slot back on top
// under another thread's feet); threads 1 and 2 each create one object, use it and destroy
// it, twice. Pools run dry here (three slots, up to four wanted at once): a thread that
// gets nullptr moves on, as a caller handles exhaustion.
//
// PROVES, over every interleaving and every value a load may return that the searches
// reach: a slot is never handed to two owners at once; an owner sees every write the
// previous owner made before destroy (no data race on the payload); no slot is lost or
// duplicated (after the threads end, the free list holds each slot exactly once).
// DOES NOT PROVE: more threads or slots; tag wrap-around (2^62 CASes here while one thread
// waits; see the header for the widths a pool gets); Relacy puts a location's stores in
// modification order in the order they run.
//
// --weakened runs the header twice, each variant of which must be caught:
//   no tag   next_tag keeps the tag as it is (detail::sync_site::pool_tag_kept; an
//            index-only free list): the ABA the tag is for, a popper whose `next` went stale
//            installs a live slot as the top;
//   push relaxed  push_order relaxed (detail::sync_site::pool_push): the next owner's view
//            of the payload is not ordered after the previous owner's writes.
#include <opreg/object_pool.hpp>  // first: rl_sync.hpp brings in Relacy's macros

#include <cstdint>
#include <memory>

#include "rl_sync.hpp"
#include "model_driver.hpp"

namespace opreg::detail {

// The free list as the header keeps it.
template <class T, sync_site... Weakened>
struct pool_test_access<object_pool<T, model::rl_sync<Weakened...>>> {
    using pool = object_pool<T, model::rl_sync<Weakened...>>;
    // The top slot, or pool_end when the list is empty.
    static std::uint32_t top(pool& p) {
        const std::uint32_t i = p.index_in(p.head_.load(std::memory_order::relaxed));
        return i == p.end_index() ? pool_end : i;
    }
    // The slot after i, or pool_end.
    static std::uint32_t next(pool& p, std::uint32_t i) {
        return p.slots_[i].next.load(std::memory_order::relaxed);
    }
};

} // namespace opreg::detail

namespace {

using opreg::detail::sync_site;

template <class Sync>
struct pool_model : rl::test_suite<pool_model<Sync>, 3> {
    static constexpr std::uint32_t capacity = 3;
    using pool = opreg::object_pool<int, Sync>;  // the object: its owner's mark
    using white_box = opreg::detail::pool_test_access<pool>;

    // On the heap: the pool is over-aligned, and Relacy allocates the test with malloc.
    std::unique_ptr<pool> pool_ = std::make_unique<pool>(capacity);
    rl::var<int> payload_[capacity];  // the object's data: its owner's mark, written after create

    // Bookkeeping for the checks (fibers: no races of their own).
    int owner_[capacity] = {-1, -1, -1};

    void before() {
        for (auto& p : payload_) p($) = -1;
    }

    // ---- the script ---------------------------------------------------------------------

    int create(int me) {
        int* p = pool_->try_create(me);
        if (p == nullptr) return -1;
        const std::uint32_t i = pool_->index_of(p);
        RL_ASSERT(owner_[i] == -1);  // never handed to two owners at once
        owner_[i] = me;
        payload_[i]($) = me;
        return static_cast<int>(i);
    }

    void destroy(int me, int i) {
        RL_ASSERT(payload_[i]($) == me);
        RL_ASSERT(owner_[i] == me && *pool_->at(static_cast<std::uint32_t>(i)) == me);
        owner_[i] = -1;
        pool_->destroy(pool_->at(static_cast<std::uint32_t>(i)));
    }

    void thread(unsigned index) {
        const int me = static_cast<int>(index);
        if (index == 0) {
            const int a = create(me);
            const int b = create(me);
            if (a != -1) destroy(me, a);
            if (b != -1) destroy(me, b);
            return;
        }
        for (int round = 0; round != 2; ++round) {
            const int a = create(me);
            if (a != -1) destroy(me, a);
        }
    }

    void after() {
        // Every object was destroyed: the free list holds each slot exactly once (what
        // size_approx() == 0 says, checked slot by slot).
        int seen[capacity] = {};
        std::uint32_t i = white_box::top(*pool_);
        for (std::uint32_t steps = 0; i != opreg::detail::pool_end; ++steps) {
            RL_ASSERT(steps < capacity && i < capacity);
            RL_ASSERT(++seen[i] == 1);
            i = white_box::next(*pool_, i);
        }
        for (std::uint32_t s = 0; s < capacity; ++s) RL_ASSERT(seen[s] == 1 && owner_[s] == -1);
    }
};

using shipped = model::rl_sync<>;
using no_tag = model::rl_sync<sync_site::pool_tag_kept>;
using push_relaxed = model::rl_sync<sync_site::pool_push>;

} // namespace

int main(int argc, char** argv) {
    model::options opt;
    if (!model::parse(argc, argv, opt)) return 2;
    const bool verbose = opt.verbose;

    if (!opt.weakened) {
        bool ok = model::expect_holds<pool_model<shipped>>("pool", model::random_search, verbose);
        // --deep: context bound 3, ~16M iterations, about a minute.
        const model::search bounded =
            opt.deep ? model::search{"context bound 3", rl::sched_bound, 0, 3}
                     : model::search{"context bound 2", rl::sched_bound, 0, 2};
        ok = model::expect_holds<pool_model<shipped>>("pool", bounded, verbose) && ok;
        return ok ? 0 : 1;
    }

    const model::search searches[] = {model::random_search,
                                      {"context bound 2", rl::sched_bound, 0, 2}};
    bool all_caught = model::expect_caught<pool_model<no_tag>>(
        "pool", "no tag", searches, verbose, rl::test_result_user_assert_failed);
    all_caught = model::expect_caught<pool_model<push_relaxed>>("pool", "push relaxed", searches,
                                                                verbose) &&
                 all_caught;
    return all_caught ? 0 : 1;
}
