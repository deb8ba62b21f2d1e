// SPDX-License-Identifier: Apache-2.0
// stress/relacy/close_model.cpp — Relacy model of mpsc_queue's fd-lifetime protocol: close()
// from any thread against the owner applying queued arms and closes, run on the shipped
// header.
//
// MODELS include/opreg/mpsc_queue.hpp itself: basic_mpsc_queue<model::rl_sync<>> (see
// rl_sync.hpp) is the shipped code on Relacy's atomics, down to the object_pools its
// commands come from and the intrusive_mpsc_queue that carries them: close() (a release
// fetch_add of the fd's generation, then an acq_rel exchange of close_queued that pushes
// the fd's one close command only when it was not queued), arm() (a relaxed ticket, an
// acquire load of the generation, carried in the command's fd_gen cell, a pool slot and a
// push), and the owner's apply_handed_off() and apply() of both (close: an acq_rel exchange clearing
// close_queued, an acquire load of the generation, then ending the ops of older lifetimes;
// arm: closed if armed under a generation that is no longer current; else an older
// lifetime's op still pending ends as closed; busy if an op of its own lifetime is pending,
// pending otherwise). The command's fd_gen is an rl::var (its Sync cell), so Relacy reports
// an owner read that the queue does not order after the producer's write. The model watches
// the loads of the fd's generation (detail::mpsc_queue_test_access) to learn the lifetime an
// arm read; each op's callback reports how it ended.
//
// Script: an op armed in lifetime 0 is pending on the owner. Thread 1 closes the fd. Thread
// 2 arms in whatever lifetime it sees, then closes. The owner applies the hand-off a few times meanwhile,
// and once more after every thread has returned.
//
// PROVES, over every interleaving and every value a load may return that the searches
// reach: no op outlives a close of its lifetime (after the last apply_handed_off() nothing is pending,
// since every arm here precedes a close); every op ends exactly once; an arm is refused as
// busy only while an op of the same lifetime is pending; the command's fd generation reaches
// the owner (no data race); the close flag is clear once the queue is drained.
// DOES NOT PROVE: more threads, fds or closes; readiness latches, cancels and dispatch
// (the owner's table is single-threaded: tests/ cover it); the queue and pool themselves
// beyond this script (mpsc_model.cpp and pool_model.cpp check them); Relacy puts a
// location's stores in modification order in the order they run.
//
// --weakened runs the header with the owner clearing close_queued by a release store
// instead of the exchange (detail::sync_site::close_flag_stored): a close that finds the
// flag still set does not queue its command, the owner's later load may miss that close's
// bump, and an op of a closed lifetime stays pending. (The exchange, a read-modify-write,
// reads every close that found the command queued, and so acquires its bump.) It passes
// only if Relacy reports that assertion.
#include <opreg/mpsc_queue.hpp>  // first: rl_sync.hpp brings in Relacy's macros

#include <cstdint>
#include <memory>

#include "rl_sync.hpp"
#include "model_driver.hpp"

namespace opreg::detail {

template <class Sync>
struct mpsc_queue_test_access<basic_mpsc_queue<Sync>> {
    static auto& generation(basic_mpsc_queue<Sync>& r, int fd) { return r.fd_gen_[fd]; }
    static auto& close_queued(basic_mpsc_queue<Sync>& r, int fd) {
        return r.close_queued_[fd];
    }
};

} // namespace opreg::detail

namespace {

using opreg::detail::sync_site;

constexpr int fd = 0;

template <class Sync>
struct close_model : rl::test_suite<close_model<Sync>, 3> {
    using registry = opreg::basic_mpsc_queue<Sync>;
    using white_box = opreg::detail::mpsc_queue_test_access<registry>;

    static constexpr unsigned owner = 0, arming_thread = 2;
    static constexpr int owner_applies = 3;
    static constexpr int first_op = 0, armed_op = 1;  // op ids

    // The callback of op `id`: reports how it ended.
    struct op_callback {
        close_model* m;
        int id;
        void operator()(const opreg::completion& c) const { m->ended(id, c); }
    };

    // Two arm commands at most (the first op and thread 2's), none of them a cancel.
    // On the heap: the registry is over-aligned, and Relacy allocates the test with malloc.
    std::unique_ptr<registry> reg_ =
        std::make_unique<registry>(opreg::registry_config{.max_fds = 1, .max_pending = 2});
    model::watching<std::uint64_t> watch_{&close_model::on_u64, this};  // after reg_

    // Bookkeeping (fibers: no races of their own; after() runs once every thread returned).
    bool arming_ = false;             // thread 2 is inside arm()
    std::uint64_t armed_in_ = ~0ull;  // the fd generation thread 2's arm read
    int ended_[2] = {};
    opreg::completion how_[2] = {};

    void before() {
        // Armed in lifetime 0 and applied: pending on the owner before the threads start.
        RL_ASSERT(reg_->arm(fd, opreg::direction::read, op_callback{this, first_op}));
        RL_ASSERT(reg_->apply_handed_off() == 1);
    }

    static void on_u64(void* self, const model::rl_atomic<std::uint64_t>& a, model::access kind,
                       std::uint64_t before, std::uint64_t) {
        auto& m = *static_cast<close_model*>(self);
        if (&a == &white_box::generation(*m.reg_, fd) && kind == model::access::load &&
            m.arming_ && rl::thread_index() == arming_thread)
            m.armed_in_ = before;
    }

    void ended(int id, const opreg::completion& c) {
        RL_ASSERT(++ended_[id] == 1);
        how_[id] = c;
        if (c.result == opreg::outcome::error) {
            // Busy only against an op of the same lifetime: the first op, still pending,
            // and thread 2 armed in its lifetime, 0. An arm in a lifetime that has just
            // begun is never busy: the owner ends the older lifetime's op as closed first.
            RL_ASSERT(id == armed_op && c.error == opreg::errc::busy);
            RL_ASSERT(armed_in_ == 0 && ended_[first_op] == 0);
        } else {
            RL_ASSERT(c.result == opreg::outcome::closed);
        }
    }

    // ---- the script ---------------------------------------------------------------------

    void thread(unsigned index) {
        if (index == owner) {
            for (int i = 0; i != owner_applies; ++i) reg_->apply_handed_off();
        } else if (index == 1) {
            reg_->close(fd);
        } else {
            arming_ = true;
            const auto r = reg_->arm(fd, opreg::direction::read, op_callback{this, armed_op});
            arming_ = false;
            RL_ASSERT(r);
            reg_->close(fd);
        }
    }

    void after() {
        reg_->apply_handed_off();  // the owner, once every close() has returned
        // Both lifetimes an op was armed in are closed: nothing is pending.
        RL_ASSERT(ended_[first_op] == 1 && ended_[armed_op] == 1);
        RL_ASSERT(how_[first_op].result == opreg::outcome::closed);
        const opreg::registry_stats s = reg_->stats();
        RL_ASSERT(s.armed == 2 && s.in_flight == 0);
        RL_ASSERT(!white_box::close_queued(*reg_, fd).load(std::memory_order::relaxed));
        RL_ASSERT(reg_->token_of(fd).value().generation() == 2);
    }
};

using shipped = model::rl_sync<>;
using flag_stored = model::rl_sync<sync_site::close_flag_stored>;

} // namespace

int main(int argc, char** argv) {
    model::options opt;
    if (!model::parse(argc, argv, opt)) return 2;
    const bool verbose = opt.verbose;

    if (!opt.weakened) {
        // The script runs the real queue and pools, so its searches are long: bound 2 is
        // what fits every CI run (~700,000 iterations, ~4 s), and the random search runs
        // longer to reach deeper interleavings. --deep: context bound 3, about a minute.
        bool ok = model::expect_holds<close_model<shipped>>(
            "close", {"random", rl::sched_random, 5 * model::random_schedules, 0}, verbose);
        const model::search bounded =
            opt.deep ? model::search{"context bound 3", rl::sched_bound, 0, 3}
                     : model::search{"context bound 2", rl::sched_bound, 0, 2};
        ok = model::expect_holds<close_model<shipped>>("close", bounded, verbose) && ok;
        return ok ? 0 : 1;
    }

    // Caught by the random search within a few dozen iterations, and within bound 1.
    const model::search searches[] = {model::random_search,
                                      {"context bound 2", rl::sched_bound, 0, 2}};
    return model::expect_caught<close_model<flag_stored>>("close", "flag cleared by a store",
                                                          searches, verbose,
                                                          rl::test_result_user_assert_failed)
               ? 0
               : 1;
}
