// SPDX-License-Identifier: Apache-2.0
// stress/relacy/slot_model.cpp — Relacy model of one slot of opreg::slot_array, run on the
// shipped header.
//
// MODELS include/opreg/slot_array.hpp itself: basic_slot_array<model::rl_sync<>> (see
// rl_sync.hpp) is the shipped code with Relacy's atomics for the state words and an rl::var
// behind the callback storage (its Sync cell), so Relacy reports any access to a callback
// that the state word does not order. The registry has one fd: its read slot, which the
// scripts below arm, and its write slot, which close() bumps and dispatch() reads. Every
// transition of the header runs as shipped: token_of, arm (the latched end at idle, the
// acquire CAS D, the callback write, the release publish CAS A, the stale abort, the latched
// end while arming with its release C), cancel (acquire CAS B), dispatch (fd generation
// check, acquire CAS B, relaxed latch CAS), close (acq_rel CAS that bumps the fd generation,
// clears the latch and takes a pending op) and finish (callback move-out, release CAS C to
// idle with op_gen + 1). The model watches the read slot's word (through
// detail::slot_array_test_access): every change of it, in modification order, with the
// thread and the call that made it, is checked against the state machine in the header's
// comment. Each arm passes a callback that reports how, and by whom, its op ended.
//
// PROVES, for the three scripted threads below, over every interleaving and every value a
// relaxed load may return that the searches reach:
//  - no data race on the callback storage: arm's write is visible to the winner (A pairs
//    with B) and the winner's move-out is done before the next arm writes (C pairs with D),
//    also when a relaxed latch CAS sits between C and D;
//  - every op that arm reports armed ends exactly once (by a winner or at once on the
//    latch), and its callback runs with the token arm returned: a winner finds the callback
//    armed for the generation in its token; a refused arm's callback never runs, and no
//    callback is left in the registry at the end;
//  - a token whose op has ended is stale: it ends nothing, even while a newer op is pending;
//  - an op is published, and ended by dispatch, only under the fd generation it was armed
//    under: an event for a closed fd never reaches the op that reuses the fd number;
//  - readiness is never lost: a latch is set only by an event of the slot's current
//    lifetime while no op is pending, and leaves the word only through close or an arm that
//    ends its op at once (an arm consumes it only in the fd lifetime that set it);
//  - the owner of `arming` or `completing` sees the word change only in its fd generation
//    and latch, and only close moves the fd generation;
//  - at the end both slots are idle, their fd generation counts the closes, the read slot's
//    op generation counts the ops that ended, and the registry's stats agree (every arm
//    accepted ended, nothing in flight).
// DOES NOT PROVE: anything for more threads or longer scripts; ops in the write direction
// (close and dispatch handle it in the same loop as the read one); generation wrap-around;
// the stat counters' own concurrency (rl_sync.hpp: Relacy does not see them). Relacy's
// memory model is C++11's as Relacy implements it (a release sequence also continues
// through same-thread stores; a location's modification order is the order its stores run
// in); every change of the state word is a read-modify-write, so neither matters here. Two
// orders the header names are not needed by anything modelled: close's CAS passes as
// acquire only, and token_of's load as relaxed (no data is published with a generation).
//
// --weakened[=publish|finish] runs the header with publish_order (A) or finish_order (C)
// relaxed (detail::sync_site::slot_publish, slot_finish) and passes only if Relacy reports
// the data race it causes; without a value both variants must be caught.
#include <opreg/slot_array.hpp>  // first: rl_sync.hpp brings in Relacy's macros

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#include "rl_sync.hpp"
#include "model_driver.hpp"

namespace opreg::detail {

template <class Sync>
struct slot_array_test_access<basic_slot_array<Sync>> {
    static auto& word(basic_slot_array<Sync>& r, std::uint32_t slot) {
        return r.slots_[slot].word;
    }
};

} // namespace opreg::detail

namespace {

using opreg::detail::sync_site;
using word = opreg::detail::slot_word;
using state = word::state;

constexpr int fd = 0;
constexpr std::uint32_t read_slot = 0, write_slot = 1;  // op_slot(fd, read / write)
constexpr int max_arms = 3;           // arm calls in the script
constexpr std::uint64_t max_ops = 8;  // op generations: more than the script can reach
constexpr unsigned no_thread = ~0u;
constexpr unsigned threads = 3;  // the application, the reactor, the closer (the scripts)

// What each model thread is inside of, so that the watcher knows who changed the word.
enum class call : std::uint8_t { none, arm, cancel, dispatch, close };

template <class Sync>
struct slot_model : rl::test_suite<slot_model<Sync>, threads> {
    using registry = opreg::basic_slot_array<Sync>;
    using white_box = opreg::detail::slot_array_test_access<registry>;

    // The callback of arm call `id`: reports how its op ended. Counts the live ones, so that
    // the end can tell that none is left in the registry.
    struct op_callback {
        slot_model* m;
        int id;
        op_callback(slot_model* model, int arm_id) noexcept : m{model}, id{arm_id} { ++m->live_; }
        op_callback(op_callback&& o) noexcept : m{std::exchange(o.m, nullptr)}, id{o.id} {}
        ~op_callback() {
            if (m != nullptr) --m->live_;
        }
        void operator()(const opreg::completion& c) const { m->ended(id, c); }
    };

    // On the heap: the registry is over-aligned, and Relacy allocates the test with malloc.
    std::unique_ptr<registry> reg_ =
        std::make_unique<registry>(opreg::registry_config{.max_fds = 1});
    model::watching<std::uint64_t> watch_{&slot_model::on_word, this};  // after reg_

    // Bookkeeping for the checks, not part of the algorithm. Relacy runs the threads as
    // fibers of one OS thread, so these plain members cannot race.
    call doing_[threads] = {};
    std::uint64_t dispatch_gen_ = 0;         // fd generation of the reactor's current event
    int live_ = 0;                           // op_callbacks alive
    // Per arm call.
    bool called_[max_arms] = {};
    bool accepted_[max_arms] = {};
    opreg::op_token token_[max_arms] = {};
    int ran_[max_arms] = {};
    opreg::completion how_[max_arms] = {};
    // From the watched word.
    unsigned owner_ = no_thread;             // the thread that owns `arming` or `completing`
    word armed_at_[threads] = {};            // per thread: its arm's word in `arming`
    bool saw_latch_[threads] = {};           // per thread: its arm saw its lifetime's latch
    bool published_[max_ops] = {};           // per op generation
    std::uint64_t published_fd_gen_[max_ops] = {};
    std::uint64_t ops_ended_ = 0;            // op generation bumps
    int closes_ = 0;
    int fd_bumps_ = 0;
    bool latched_ = false;                   // readiness kept for the next arm ...
    std::uint64_t latch_fd_gen_ = 0;         // ... by an event of this fd lifetime

    // ---- the calls: the registry's, with who is doing what --------------------------------

    opreg::result<opreg::op_token> arm(int id) {
        const unsigned me = rl::thread_index();
        doing_[me] = call::arm;
        saw_latch_[me] = false;
        called_[id] = true;
        auto r = reg_->arm(fd, opreg::direction::read, op_callback{this, id});
        doing_[me] = call::none;
        if (r) {
            accepted_[id] = true;
            token_[id] = r.value();
        }
        return r;
    }

    opreg::cancel_status cancel(opreg::op_token t) {
        const unsigned me = rl::thread_index();
        doing_[me] = call::cancel;
        const opreg::cancel_status s = reg_->cancel(t);
        doing_[me] = call::none;
        return s;
    }

    void dispatch(opreg::fd_token t) {
        const unsigned me = rl::thread_index();
        doing_[me] = call::dispatch;
        dispatch_gen_ = t.generation();
        reg_->dispatch(t, opreg::readiness::readable);
        doing_[me] = call::none;
    }

    void close() {
        const unsigned me = rl::thread_index();
        ++closes_;
        doing_[me] = call::close;
        reg_->close(fd);
        doing_[me] = call::none;
    }

    opreg::fd_token token_of() { return reg_->token_of(fd).value(); }

    // ---- the checks ---------------------------------------------------------------------

    // An op's callback ran: once, on the thread whose call ended it, with that call's outcome.
    void ended(int id, const opreg::completion& c) {
        RL_ASSERT(++ran_[id] == 1);
        how_[id] = c;
        switch (doing_[rl::thread_index()]) {
            case call::arm:  // readiness came first: ended at once
                RL_ASSERT(c.result == opreg::outcome::ready && c.latched);
                break;
            case call::dispatch:
                RL_ASSERT(c.result == opreg::outcome::ready && !c.latched);
                break;
            case call::cancel:
                RL_ASSERT(c.result == opreg::outcome::cancelled);
                break;
            case call::close:
                RL_ASSERT(c.result == opreg::outcome::closed);
                break;
            case call::none:
                RL_ASSERT(!"a callback ran outside every registry call");
        }
    }

    static void on_word(void* self, const model::rl_atomic<std::uint64_t>& a,
                        model::access kind, std::uint64_t before, std::uint64_t after) {
        auto& m = *static_cast<slot_model*>(self);
        if (&a != &white_box::word(*m.reg_, read_slot)) return;
        if (kind == model::access::rmw) {
            m.changed(word{before}, word{after});
        } else if (kind == model::access::load) {
            m.looked(word{before});
        }
    }

    // A load of the word (or a failed CAS): an arming thread that sees readiness latched in
    // its own lifetime takes it (the header's latched branch while arming).
    void looked(word w) {
        const unsigned t = rl::thread_index();
        if (doing_[t] == call::arm && owner_ == t && w.latched() &&
            w.fd_gen() == armed_at_[t].fd_gen())
            saw_latch_[t] = true;
    }

    // One change of the word, by the current thread: checked against the state machine.
    void changed(word b, word a) {
        const unsigned t = rl::thread_index();
        const call c = doing_[t];
        if (a.fd_gen() != b.fd_gen()) {
            // Only close() moves the fd generation: by one, clearing the latch, taking a
            // pending op, leaving a transient state and its op generation to their owner.
            RL_ASSERT(c == call::close);
            const word bumped = b.next_fd();
            RL_ASSERT(a.bits == (b.st() == state::pending ? bumped.with(state::completing)
                                                          : bumped).bits);
            ++fd_bumps_;
            latched_ = false;  // the latch belongs to the fd lifetime that set it
            if (b.st() == state::pending) take(b, t);
            return;
        }
        if (a.latched() && !b.latched()) {
            // dispatch() keeps readiness for the next arm: only with no op pending, only for
            // the event's own lifetime, and nothing else in the word changes.
            RL_ASSERT(c == call::dispatch);
            RL_ASSERT(a.bits == b.with_latch(true).bits);
            RL_ASSERT(b.st() != state::pending);
            RL_ASSERT(b.fd_gen() == dispatch_gen_);
            RL_ASSERT(!latched_);
            latched_ = true;
            latch_fd_gen_ = b.fd_gen();
            return;
        }
        // Every other change is a move of the state machine, by the one thread that may.
        RL_ASSERT(b.op_gen() < max_ops);
        switch (b.st()) {
            case state::idle:
                RL_ASSERT(c == call::arm && owner_ == no_thread);
                if (b.latched()) {  // readiness came first: the op ends at once
                    RL_ASSERT(a.bits == b.next_op().with_latch(false).bits);
                    consume_latch(b);
                    ++ops_ended_;
                } else {  // (D)
                    RL_ASSERT(a.bits == b.with(state::arming).bits);
                    owner_ = t;
                    armed_at_[t] = a;
                }
                return;
            case state::arming: {
                RL_ASSERT(c == call::arm && owner_ == t);
                owner_ = no_thread;
                const word at = armed_at_[t];
                RL_ASSERT(b.op_gen() == at.op_gen());
                if (a.st() == state::pending) {
                    // (A): published under the lifetime it was armed in, with no latch.
                    RL_ASSERT(a.bits == b.with(state::pending).bits);
                    RL_ASSERT(b.fd_gen() == at.fd_gen() && !b.latched());
                    published_[b.op_gen()] = true;
                    published_fd_gen_[b.op_gen()] = b.fd_gen();
                } else if (a.op_gen() == b.op_gen()) {
                    // The stale abort: close() got in while arming.
                    RL_ASSERT(a.bits == b.with(state::idle).bits);
                    RL_ASSERT(b.fd_gen() != at.fd_gen());
                } else {
                    // Readiness arrived while arming: the op ends at once, on the latch of
                    // its own lifetime. If close() (and maybe an event of the next lifetime)
                    // got in meanwhile, close cleared that latch, and the next one stays.
                    RL_ASSERT(saw_latch_[t]);
                    if (b.fd_gen() == at.fd_gen()) {
                        RL_ASSERT(a.bits == b.next_op().with_latch(false).bits);
                        consume_latch(b);
                    } else {
                        RL_ASSERT(a.bits == b.next_op().bits);
                    }
                    ++ops_ended_;
                }
                return;
            }
            case state::pending:  // (B), by cancel or dispatch (close is above)
                RL_ASSERT(a.bits == b.with(state::completing).bits);
                RL_ASSERT(c == call::cancel || c == call::dispatch);
                if (c == call::dispatch) RL_ASSERT(b.fd_gen() == dispatch_gen_);
                take(b, t);
                return;
            case state::completing:  // (C), finish()
                RL_ASSERT(owner_ == t);
                RL_ASSERT(a.bits == b.next_op().bits);
                owner_ = no_thread;
                ++ops_ended_;
                return;
        }
    }

    // Thread t took the pending word b: its op was published under the fd generation it
    // still has.
    void take(word b, unsigned t) {
        RL_ASSERT(owner_ == no_thread);
        RL_ASSERT(published_[b.op_gen()]);
        RL_ASSERT(b.fd_gen() == published_fd_gen_[b.op_gen()]);
        owner_ = t;
    }

    // An arm ends its op on the latch in `before`: set in this fd lifetime, and cleared now.
    void consume_latch(word before) {
        RL_ASSERT(latched_ && before.latched());
        RL_ASSERT(before.fd_gen() == latch_fd_gen_);
        latched_ = false;
    }

    // ---- the scripts ---------------------------------------------------------------------

    void thread(unsigned index) {
        if (index == 0) {
            // An application thread: arms, cancels, re-arms, and tries its first token again
            // while a newer op may be pending.
            const auto first = arm(0);
            if (first) cancel(first.value());
            const auto second = arm(1);
            if (first) RL_ASSERT(cancel(first.value()) == opreg::cancel_status::stale);
            if (second) cancel(second.value());
        } else if (index == 1) {
            // The reactor: an event for the token it holds (it may arrive after close), then
            // one for the fd's lifetime as it is now.
            const opreg::fd_token t = token_of();
            dispatch(t);
            dispatch(token_of());
        } else {
            // Closes the fd, then arms on the reused fd number (the fd lifetime after close).
            close();
            const auto op = arm(2);
            if (op) cancel(op.value());
        }
    }

    void after() {
        int accepted = 0, ran = 0;
        for (int id = 0; id != max_arms; ++id) {
            if (!called_[id]) continue;
            if (accepted_[id]) {
                ++accepted;
                RL_ASSERT(ran_[id] == 1 && how_[id].token == token_[id]);
            } else {
                RL_ASSERT(ran_[id] == 0);
            }
            ran += ran_[id];
        }
        RL_ASSERT(live_ == 0);  // no callback left in the registry
        RL_ASSERT(owner_ == no_thread);
        const word w{white_box::word(*reg_, read_slot).load(std::memory_order::relaxed)};
        RL_ASSERT(w.st() == state::idle);
        RL_ASSERT(w.fd_gen() == static_cast<std::uint64_t>(closes_) && fd_bumps_ == closes_);
        RL_ASSERT(w.latched() == latched_);  // readiness latched and not consumed is kept
        RL_ASSERT(w.op_gen() == ops_ended_ && ops_ended_ == static_cast<std::uint64_t>(ran));
        const word other{white_box::word(*reg_, write_slot).load(std::memory_order::relaxed)};
        RL_ASSERT(other.st() == state::idle && !other.latched() && other.op_gen() == 0);
        RL_ASSERT(other.fd_gen() == static_cast<std::uint64_t>(closes_));
        const opreg::registry_stats s = reg_->stats();
        RL_ASSERT(s.armed == static_cast<std::uint64_t>(accepted));
        RL_ASSERT(s.ended() == s.armed && s.in_flight == 0);
    }
};

using shipped = model::rl_sync<>;
using publish_relaxed = model::rl_sync<sync_site::slot_publish>;
using finish_relaxed = model::rl_sync<sync_site::slot_finish>;

} // namespace

int main(int argc, char** argv) {
    bool weakened = false;
    bool verbose = false;
    const char* only = nullptr;  // one weakened variant, or both
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--weakened") == 0) {
            weakened = true;
        } else if (constexpr std::string_view prefix = "--weakened=";
                   std::string_view(argv[i]).starts_with(prefix)) {
            weakened = true;
            only = argv[i] + prefix.size();
            if (std::strcmp(only, "publish") != 0 && std::strcmp(only, "finish") != 0) {
                std::fprintf(stderr, "unknown variant '%s' (publish or finish)\n", only);
                return 2;
            }
        } else if (std::strcmp(argv[i], "--verbose") == 0) {
            verbose = true;
        } else {
            std::fprintf(stderr, "usage: %s [--weakened[=publish|finish]] [--verbose]\n",
                         argv[0]);
            return 2;
        }
    }

    if (!weakened) {
        bool ok = model::expect_holds<slot_model<shipped>>("slot", model::random_search, verbose);
        ok = model::expect_holds<slot_model<shipped>>(
                 "slot", {"context bound 2", rl::sched_bound, 0, 2}, verbose) && ok;
        return ok ? 0 : 1;
    }

    const model::search searches[] = {model::random_search,
                                      {"context bound 1", rl::sched_bound, 0, 1}};
    bool all_caught = true;
    if (only == nullptr || std::strcmp(only, "publish") == 0) {
        all_caught = model::expect_caught<slot_model<publish_relaxed>>(
                         "slot", "A publish relaxed", searches, verbose) && all_caught;
    }
    if (only == nullptr || std::strcmp(only, "finish") == 0) {
        all_caught = model::expect_caught<slot_model<finish_relaxed>>(
                         "slot", "C finish relaxed", searches, verbose) && all_caught;
    }
    return all_caught ? 0 : 1;
}
