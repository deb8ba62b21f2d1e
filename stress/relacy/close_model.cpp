// stress/relacy/close_model.cpp — Relacy model of mpsc_queue's fd-lifetime protocol: close()
// from any thread against the owner applying queued arms and closes.
//
// MODELS include/opreg/mpsc_queue.hpp with the same memory orders: close() (a release
// fetch_add of the fd's generation, then an acq_rel exchange of close_queued_ that pushes
// the fd's one close command only when it was not queued), arm() (an acquire load of the
// generation, carried in the command), and the owner's apply() of both (close: an acq_rel
// exchange clearing close_queued_, an acquire load of the generation, then ending the op
// of an older lifetime; arm: closed if armed under a generation that is no longer current;
// else an older lifetime's op still pending ends as closed; busy if an op of its own
// lifetime is pending, pending otherwise). The queue is a slot array: a push
// reserves a slot and publishes the command with a release store, the owner pops slots in
// order with acquire loads, so a command behind a push still in flight is withheld, as the
// intrusive queue withholds it (its own model is mpsc_model.cpp).
//
// Script: an op armed in lifetime 0 is pending on the owner. Thread 1 closes the fd. Thread
// 2 arms in whatever lifetime it sees, then closes. The owner polls a few times meanwhile,
// and once more after every thread has returned.
//
// PROVES, over every interleaving and every value a load may return that the searches
// reach: no op outlives a close of its lifetime (after the last poll nothing is pending,
// since every arm here precedes a close); every op ends exactly once; an arm is refused as
// busy only while an op of the same lifetime is pending; the command's fields reach the
// owner (no data race); the close flag is clear once the queue is drained.
// DOES NOT PROVE: more threads, fds or closes; readiness latches, cancels and dispatch
// (the owner's table is single-threaded: tests/ cover it); Relacy puts a location's stores
// in modification order in the order they run.
//
// --weakened clears close_queued_ with a release store instead of the exchange (the bug
// fixed in "mpsc_queue: the owner clears close_queued_ with an exchange"): a close that
// finds the flag still set does not queue its command, the owner's later load may miss
// that close's bump, and an op of a closed lifetime stays pending. It passes only if
// Relacy reports that assertion.

#include "model_driver.hpp"  // last: brings in <relacy/relacy.hpp>

namespace {

bool weak_clear = false;  // set in main before any search, read-only after

struct close_model : rl::test_suite<close_model, 3> {
    static constexpr unsigned owner = 0;
    static constexpr int owner_polls = 3;
    static constexpr int close_command = 0, arm_command = 1;  // command ids
    static constexpr int capacity = 3;                        // pushes at most: 2 closes, 1 arm
    static constexpr int no_op = -1;
    static constexpr int first_op = 0, armed_op = 1;          // op ids

    // Shared, as in mpsc_queue.
    rl::atomic<unsigned> fd_gen_;
    rl::atomic<bool> close_queued_;
    rl::atomic<int> tail_;              // next queue slot to reserve
    rl::atomic<int> slot_[capacity];    // command id + 1 once published; 0 before
    rl::var<unsigned> arm_fd_gen_;      // the arm command's field, written before its push

    // The owner's (fibers: no races of their own; after() runs once every thread returned).
    int head_ = 0;
    int pending_ = no_op;
    unsigned pending_gen_ = 0;
    int ended_[2] = {};

    void before() {
        fd_gen_($).store(0, rl::mo_relaxed);
        close_queued_($).store(false, rl::mo_relaxed);
        tail_($).store(0, rl::mo_relaxed);
        for (auto& s : slot_) s($).store(0, rl::mo_relaxed);
        pending_ = first_op;  // armed in lifetime 0 before the threads start
        pending_gen_ = 0;
    }

    // ---- the queue ----------------------------------------------------------------------

    void push(int command) {
        const int i = tail_($).fetch_add(1, rl::mo_relaxed);
        RL_ASSERT(i < capacity);
        slot_[i]($).store(command + 1, rl::mo_release);  // pairs with try_pop's acquire
    }

    int try_pop() {
        if (head_ == capacity) return -1;
        const int v = slot_[head_]($).load(rl::mo_acquire);
        if (v == 0) return -1;
        ++head_;
        return v - 1;
    }

    // ---- the algorithm: mirrors mpsc_queue -----------------------------------------------

    void close() {
        fd_gen_($).fetch_add(1, rl::mo_release);
        if (!close_queued_($).exchange(true, rl::mo_acq_rel)) push(close_command);
    }

    void arm() {
        arm_fd_gen_($) = fd_gen_($).load(rl::mo_acquire);
        push(arm_command);
    }

    void end(int op) { RL_ASSERT(++ended_[op] == 1); }

    void apply(int command) {
        if (command == arm_command) {
            const unsigned armed_in = arm_fd_gen_($);
            if (armed_in != fd_gen_($).load(rl::mo_acquire)) {
                end(armed_op);  // closed before the owner saw it
                return;
            }
            if (pending_ != no_op && pending_gen_ != armed_in) {
                end(pending_);  // an older lifetime's op: its close is queued behind
                pending_ = no_op;
            }
            if (pending_ != no_op) {
                // Busy only against an op of the same lifetime. (Checked first, as the code
                // once did, busy also refused an arm whose lifetime had just begun.)
                RL_ASSERT(pending_gen_ == armed_in);
                end(armed_op);
            } else {
                pending_ = armed_op;
                pending_gen_ = armed_in;
            }
            return;
        }
        if (weak_clear) {
            close_queued_($).store(false, rl::mo_release);
        } else {
            close_queued_($).exchange(false, rl::mo_acq_rel);
        }
        const unsigned now = fd_gen_($).load(rl::mo_acquire);
        if (pending_ != no_op && pending_gen_ != now) {
            end(pending_);
            pending_ = no_op;
        }
    }

    void poll() {
        for (int c = try_pop(); c != -1; c = try_pop()) apply(c);
    }

    // ---- the script ---------------------------------------------------------------------

    void thread(unsigned index) {
        if (index == owner) {
            for (int i = 0; i != owner_polls; ++i) poll();
        } else if (index == 1) {
            close();
        } else {
            arm();
            close();
        }
    }

    void after() {
        poll();  // the owner's next poll, once every close() has returned
        RL_ASSERT(pending_ == no_op);  // both lifetimes an op was armed in are closed
        RL_ASSERT(ended_[first_op] == 1 && ended_[armed_op] == 1);
        RL_ASSERT(!close_queued_($).load(rl::mo_relaxed));
        RL_ASSERT(fd_gen_($).load(rl::mo_relaxed) == 2);
    }
};

} // namespace

int main(int argc, char** argv) {
    model::options opt;
    if (!model::parse(argc, argv, opt)) return 2;
    const bool verbose = opt.verbose;

    if (!opt.weakened) {
        bool ok = model::expect_holds<close_model>(
            "close", {"random", rl::sched_random, 200000, 0}, verbose);
        ok = model::expect_holds<close_model>("close", {"context bound 6", rl::sched_bound, 0, 6},
                                              verbose) &&
             ok;
        return ok ? 0 : 1;
    }

    weak_clear = true;
    const model::search searches[] = {{"random", rl::sched_random, 200000, 0},
                                      {"context bound 4", rl::sched_bound, 0, 4}};
    return model::expect_caught<close_model>("close", "flag cleared by a store", searches,
                                             verbose, rl::test_result_user_assert_failed)
               ? 0
               : 1;
}
