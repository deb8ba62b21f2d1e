// stress/relacy/pool_model.cpp — Relacy model of opreg::object_pool's tagged free list.
//
// MODELS include/opreg/object_pool.hpp, step for step and with the same memory orders:
// pop_free() (an acquire load of head_, a relaxed load of the top slot's `next`, a CAS to
// [tag + 1 | next] that acquires on success and on failure) and push_free() (a relaxed
// load of head_, a relaxed store of the slot's `next`, a release CAS to [tag + 1 | index]).
// head_ packs [tag:32 | index:32] as the header does; a payload rl::var<int> per slot
// stands for the object, written after try_create and read before destroy, so that two
// owners of one slot, or an owner that does not see the previous owner's writes, are
// reported.
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
// DOES NOT PROVE: more threads or slots; tag wrap-around (2^32 CASes while one thread
// waits, see the header); Relacy puts a location's stores in modification order in the
// order they run.
//
// --weakened runs two variants, each of which must be caught:
//   no tag   the CAS keeps the tag as it is (an index-only free list): the ABA the tag is
//            for, a popper whose `next` went stale installs a live slot as the top;
//   push relaxed  push_free's CAS releases nothing: the next owner's view of the payload
//            is not ordered after the previous owner's writes.
#include <cstdint>

#include "model_driver.hpp"  // last: brings in <relacy/relacy.hpp>

namespace {

enum class weakening { none, no_tag, push_relaxed };
weakening weak = weakening::none;  // set in main before any search, read-only after

constexpr std::uint32_t end_index = 0xFFFFFFFFu;

constexpr std::uint64_t pack(std::uint32_t tag, std::uint32_t index) {
    return (std::uint64_t{tag} << 32) | index;
}
constexpr std::uint32_t tag_of(std::uint64_t head) { return static_cast<std::uint32_t>(head >> 32); }
constexpr std::uint32_t index_of(std::uint64_t head) { return static_cast<std::uint32_t>(head); }

struct pool_model : rl::test_suite<pool_model, 3> {
    static constexpr std::uint32_t capacity = 3;

    rl::atomic<std::uint64_t> head_;
    rl::atomic<std::uint32_t> next_[capacity];
    rl::var<int> payload_[capacity];  // the object: its owner's mark, written after create

    // Bookkeeping for the checks (fibers: no races of their own).
    int owner_[capacity] = {-1, -1, -1};

    void before() {
        for (std::uint32_t i = 0; i < capacity; ++i)
            next_[i]($).store(i + 1 < capacity ? i + 1 : end_index, rl::mo_relaxed);
        head_($).store(pack(0, 0), rl::mo_relaxed);
        for (auto& p : payload_) p($) = -1;
    }

    std::uint32_t next_tag(std::uint64_t head) const {
        return weak == weakening::no_tag ? tag_of(head) : tag_of(head) + 1;
    }

    // ---- the algorithm: mirrors object_pool ---------------------------------------------

    std::uint32_t pop_free() {
        std::uint64_t head = head_($).load(rl::mo_acquire);
        for (;;) {
            const std::uint32_t index = index_of(head);
            if (index == end_index) return end_index;
            const std::uint32_t next = next_[index]($).load(rl::mo_relaxed);
            if (head_($).compare_exchange_weak(head, pack(next_tag(head), next),
                                               rl::mo_acquire, rl::mo_acquire))
                return index;
        }
    }

    void push_free(std::uint32_t index) {
        const rl::memory_order order =
            weak == weakening::push_relaxed ? rl::mo_relaxed : rl::mo_release;
        std::uint64_t head = head_($).load(rl::mo_relaxed);
        for (;;) {
            next_[index]($).store(index_of(head), rl::mo_relaxed);
            if (head_($).compare_exchange_weak(head, pack(next_tag(head), index), order,
                                               rl::mo_relaxed))
                return;
        }
    }

    // ---- the script ---------------------------------------------------------------------

    int create(int me) {
        const std::uint32_t i = pop_free();
        if (i == end_index) return -1;
        RL_ASSERT(owner_[i] == -1);  // never handed to two owners at once
        owner_[i] = me;
        payload_[i]($) = me;
        return static_cast<int>(i);
    }

    void destroy(int me, int i) {
        RL_ASSERT(payload_[i]($) == me);
        RL_ASSERT(owner_[i] == me);
        owner_[i] = -1;
        push_free(static_cast<std::uint32_t>(i));
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
        // Every object was destroyed: the free list holds each slot exactly once.
        int seen[capacity] = {};
        std::uint32_t i = index_of(head_($).load(rl::mo_relaxed));
        for (std::uint32_t steps = 0; i != end_index; ++steps) {
            RL_ASSERT(steps < capacity && i < capacity);
            RL_ASSERT(++seen[i] == 1);
            i = next_[i]($).load(rl::mo_relaxed);
        }
        for (std::uint32_t s = 0; s < capacity; ++s) RL_ASSERT(seen[s] == 1 && owner_[s] == -1);
    }
};

} // namespace

int main(int argc, char** argv) {
    model::options opt;
    if (!model::parse(argc, argv, opt)) return 2;
    const bool verbose = opt.verbose;

    if (!opt.weakened) {
        bool ok = model::expect_holds<pool_model>(
            "pool", {"random", rl::sched_random, 200000, 0}, verbose);
        // --deep: context bound 3, ~16M iterations, about a minute.
        const model::search bounded =
            opt.deep ? model::search{"context bound 3", rl::sched_bound, 0, 3}
                     : model::search{"context bound 2", rl::sched_bound, 0, 2};
        ok = model::expect_holds<pool_model>("pool", bounded, verbose) && ok;
        return ok ? 0 : 1;
    }

    const model::search searches[] = {{"random", rl::sched_random, 200000, 0},
                                      {"context bound 2", rl::sched_bound, 0, 2}};
    weak = weakening::no_tag;
    bool all_caught = model::expect_caught<pool_model>("pool", "no tag", searches, verbose,
                                                       rl::test_result_user_assert_failed);
    weak = weakening::push_relaxed;
    all_caught = model::expect_caught<pool_model>("pool", "push relaxed", searches, verbose) &&
                 all_caught;
    return all_caught ? 0 : 1;
}
