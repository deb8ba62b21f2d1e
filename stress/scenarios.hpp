// SPDX-License-Identifier: Apache-2.0
// The stress scenarios, each a template over the registry strategy. Every scenario runs its
// threads until a deadline, then ends whatever is still pending (close), joins, and audits
// the records (oracle.hpp). Progress goes to stderr once a second when asked.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <opreg/opreg.hpp>

#include "oracle.hpp"

namespace opreg_stress {

using clock_type = std::chrono::steady_clock;

struct options {
    int threads = 4;           // arming threads; the owner (dispatcher) is one more
    double seconds = 2.0;      // per timed scenario, per strategy
    std::uint64_t seed = 1;
    int in_flight = 1000;      // ops each arming thread keeps pending in the reactor shape
    bool progress = false;
};

// Which scenario a thread's random choices belong to: part of its seed, so these values
// are fixed (a --seed repeats a run's choices only while they stay the same).
enum class seed_stream : int { reactor = 1, close_reuse = 3, pool_churn = 4 };

// A seed per (scenario, thread): the random choices of each thread repeat for a given
// --seed; the interleaving is the scheduler's. The owner thread is thread -1. The
// multipliers (2^64 / golden ratio, then two primes) spread nearby seeds, scenarios and
// threads apart.
inline std::uint64_t thread_seed(const options& o, seed_stream scenario, int thread) {
    return o.seed * 0x9e3779b97f4a7c15ull + std::uint64_t(scenario) * 1000003u +
           std::uint64_t(thread) * 7919u;
}

class progress_meter {
public:
    progress_meter(const options& o, std::string label)
        : on_{o.progress}, label_{std::move(label)}, start_{clock_type::now()},
          next_{start_ + std::chrono::seconds(1)}, seconds_{o.seconds} {}

    template <class R>
    void tick(const R& reg) {
        if (!on_ || clock_type::now() < next_) return;
        next_ += std::chrono::seconds(1);
        const auto s = reg.stats();
        const double t = std::chrono::duration<double>(clock_type::now() - start_).count();
        std::fprintf(stderr, "  [%5.1f/%.0f s] %s armed=%llu in_flight=%llu\n", t, seconds_,
                     label_.c_str(), (unsigned long long)s.armed,
                     (unsigned long long)s.in_flight);
    }

private:
    bool on_;
    std::string label_;
    clock_type::time_point start_, next_;
    double seconds_;
};

inline clock_type::time_point deadline_after(double seconds) {
    return clock_type::now() +
           std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
}

// Operations a thread runs between two looks at when to stop (the clock; `done`, for an
// owner), so that looking stays a small part of the loop; one batch past the deadline is
// nothing.
constexpr int ops_per_check = 64;

template <class R>
void drain(R& reg) {
    while (reg.apply_handed_off() != 0) {
    }
}

// Arms until it is accepted or refused for good: busy and full are retried while the
// previous op on the slot is still ending (or a hand-off owner has not caught up), until
// `give_up`. Each try gets its own copy of `cb`: a refused arm consumes the one it got.
template <class R, class Callback>
opreg::result<opreg::op_token> arm_retrying(R& reg, int fd, opreg::direction d, const Callback& cb,
                                            clock_type::time_point give_up) {
    for (;;) {
        auto t = reg.arm(fd, d, cb);
        if (t.ok() || (t.error() != opreg::errc::busy && t.error() != opreg::errc::full) ||
            clock_type::now() > give_up)
            return t;
        std::this_thread::yield();
    }
}

// The end of every threaded scenario: joins its threads, which orders their writes to the
// records (and to `misdelivered`) before the reads here; ends whatever is still pending
// (hand-offs drained, every fd closed, the closes drained); then audits the records against
// the registry's stats.
template <class R>
tally join_and_audit(R& reg, std::vector<std::thread>& threads, int fds,
                     const std::vector<record_book>& books, const char* scenario,
                     const std::atomic<std::uint64_t>* misdelivered = nullptr) {
    for (auto& th : threads) th.join();
    drain(reg);
    for (int fd = 0; fd < fds; ++fd) (void)reg.close(fd);
    drain(reg);

    tally out{std::string(reg.name()), scenario};
    out.stats = reg.stats();
    if (misdelivered != nullptr) out.misdelivered = misdelivered->load();
    std::vector<const record_book*> all;
    for (const auto& b : books) all.push_back(&b);
    audit(all, out);
    return out;
}

// (a) The reactor shape: `threads` threads arm and cancel on their own fds, keeping up to
// `in_flight` ops pending each; one owner thread dispatches readiness for every fd.
template <class R>
tally reactor_shape(const options& o) {
    // An fd closed about once per this many arms: closes race arms and dispatches all the
    // time, yet most ops still end by dispatch or cancel.
    constexpr unsigned close_one_in = 512;
    const int per_thread = o.in_flight;
    const int fds = o.threads * per_thread;
    R reg{opreg::registry_config{.max_fds = std::uint32_t(fds), .max_pending = 0}};
    std::vector<record_book> books(o.threads);
    std::atomic<int> done{0};
    const auto deadline = deadline_after(o.seconds);

    std::vector<std::thread> armers;
    for (int t = 0; t < o.threads; ++t) {
        armers.emplace_back([&, t] {
            std::mt19937_64 rng(thread_seed(o, seed_stream::reactor, t));
            std::vector<opreg::op_token> live;
            std::size_t oldest = 0;
            record_book& book = books[t];
            while (clock_type::now() < deadline) {
                for (int burst = 0; burst < ops_per_check; ++burst) {
                    const int fd = t * per_thread + int(rng() % per_thread);
                    // One op in four waits to write, as in a server most wait to read.
                    const auto d = rng() % 4 == 0 ? opreg::direction::write : opreg::direction::read;
                    // A refused arm's record is reused: refusals can outnumber arms.
                    if (book.empty() || book.back().accepted) book.emplace_back();
                    op_record& rec = book.back();
                    auto r = reg.arm(fd, d, note_into(&rec));
                    rec.accepted = r.ok();
                    if (!r.ok()) continue;
                    if (live.size() < std::size_t(per_thread)) {
                        live.push_back(r.value());
                    } else {  // keep `in_flight` pending: cancel (or time out) the oldest
                        const auto why = rng() % 2 ? opreg::outcome::cancelled : opreg::outcome::timed_out;
                        (void)reg.cancel(live[oldest], why);
                        live[oldest] = r.value();
                        oldest = (oldest + 1) % live.size();
                    }
                    if (rng() % close_one_in == 0) (void)reg.close(fd);
                }
            }
            done.fetch_add(1, std::memory_order_release);
        });
    }

    // Events the owner dispatches between two looks at `done` and the meter.
    constexpr int events_per_check = 256;
    std::mt19937_64 rng(thread_seed(o, seed_stream::reactor, -1));
    progress_meter meter(o, std::string(reg.name()) + " reactor");
    while (done.load(std::memory_order_acquire) < o.threads) {
        for (int i = 0; i < events_per_check; ++i) {
            const int fd = int(rng() % fds);
            // Out of 32 events: 1 error (it ends both directions), 19 readable, 8 writable,
            // 4 both; mostly readable, as a server's events are.
            const unsigned pick = unsigned(rng() % 32);
            const auto ev = pick == 0 ? opreg::readiness::error
                            : pick < 20 ? opreg::readiness::readable
                            : pick < 28 ? opreg::readiness::writable
                                        : opreg::readiness::readable | opreg::readiness::writable;
            reg.dispatch(reg.token_of(fd).value(), ev);
        }
        meter.tick(reg);
    }
    return join_and_audit(reg, armers, fds, books, "reactor");
}

// (b) A cancel racing the owner's dispatch of the same op, over and over, on one fd per
// thread. Exactly one of them wins each time.
template <class R>
tally cancel_race(const options& o) {
    // An op still pending this long after the deadline is stuck: the racer stops waiting
    // for it, and it shows as lost rather than hanging the run.
    constexpr auto stuck_after = std::chrono::seconds(5);
    const int n = o.threads;
    R reg{opreg::registry_config{.max_fds = std::uint32_t(n), .max_pending = 0}};
    std::vector<record_book> books(n);
    auto published = std::make_unique<std::atomic<bool>[]>(n);
    std::atomic<int> done{0};
    const auto deadline = deadline_after(o.seconds);

    std::vector<std::thread> racers;
    for (int t = 0; t < n; ++t) {
        racers.emplace_back([&, t] {
            record_book& book = books[t];
            while (clock_type::now() < deadline) {
                op_record& rec = book.emplace_back();
                auto r = arm_retrying(reg, t, opreg::direction::read, note_into(&rec), deadline);
                rec.accepted = r.ok();
                if (!r.ok()) break;
                // release: pairs with the owner's acquire exchange, so it dispatches an armed op.
                published[t].store(true, std::memory_order_release);  // owner: dispatch now
                (void)reg.cancel(r.value());                            // ... while we cancel
                const auto give_up = deadline + stuck_after;
                while (!rec.ended() && clock_type::now() < give_up) std::this_thread::yield();
            }
            done.fetch_add(1, std::memory_order_release);
        });
    }

    progress_meter meter(o, std::string(reg.name()) + " cancel_race");
    while (done.load(std::memory_order_acquire) < n) {
        for (int t = 0; t < n; ++t)
            if (published[t].exchange(false, std::memory_order_acquire))
                reg.dispatch(reg.token_of(t).value(), opreg::readiness::readable);
        reg.apply_handed_off();
        meter.tick(reg);
    }
    tally out = join_and_audit(reg, racers, n, books, "cancel_race");
    for (const auto lost_race :
         {opreg::outcome::closed, opreg::outcome::timed_out, opreg::outcome::error})
        if (out.outcomes[lost_race] != 0)
            out.fail("cancel_race: " + std::to_string(out.outcomes[lost_race]) + " ops ended " +
                     std::string(opreg::to_string(lost_race)) +
                     "; only ready or cancelled may win");
    return out;
}

// completion_race's callback: notes how its op ended, and counts a ready that the owner's
// completion of this very op did not cause: the completion being made (*completing, read on
// the owner, which alone writes it and alone runs ready callbacks, the ready-cancels being
// its own) must name the op's own token (*own, written by the arming thread before it
// publishes the token, so before any completion names it).
struct completion_checked_note {
    op_record* rec;
    const std::uint64_t* own;
    const std::uint64_t* completing;
    std::atomic<std::uint64_t>* misdelivered;

    void operator()(const opreg::completion& c) const noexcept {
        if (c.result == opreg::outcome::ready && (*completing != *own || c.token.to_u64() != *own))
            misdelivered->fetch_add(1, std::memory_order_relaxed);
        rec->note(c);
    }
};

// (b') cancel_race as a completion-mode backend has it: the owner ends each op by its own
// token, as a kernel completion carrying it would (cancel(t, ready)), racing the arming
// thread's cancel; and before that it sends the slot's previous op a late completion, which
// must end nothing (its op has ended: the token is stale), never the op pending now.
template <class R>
tally completion_race(const options& o) {
    constexpr auto stuck_after = std::chrono::seconds(5);
    constexpr std::uint64_t none = opreg::op_token::invalid().to_u64();
    const int n = o.threads;
    R reg{opreg::registry_config{.max_fds = std::uint32_t(n), .max_pending = 0}};
    std::vector<record_book> books(n);
    std::vector<std::deque<std::uint64_t>> tokens(n);  // each record's op token, in step
    auto published = std::make_unique<std::atomic<std::uint64_t>[]>(n);
    for (int t = 0; t < n; ++t) published[t].store(none, std::memory_order_relaxed);
    std::vector<std::uint64_t> completing(n, none);  // the owner's
    std::vector<std::uint64_t> previous(n, none);    // the owner's
    std::atomic<std::uint64_t> misdelivered{0};
    std::atomic<int> done{0};
    const auto deadline = deadline_after(o.seconds);

    std::vector<std::thread> racers;
    for (int t = 0; t < n; ++t) {
        racers.emplace_back([&, t] {
            record_book& book = books[t];
            while (clock_type::now() < deadline) {
                op_record& rec = book.emplace_back();
                std::uint64_t& own = tokens[t].emplace_back(none);
                const completion_checked_note cb{&rec, &own, &completing[t], &misdelivered};
                auto r = arm_retrying(reg, t, opreg::direction::read, cb, deadline);
                rec.accepted = r.ok();
                if (!r.ok()) break;
                own = r.value().to_u64();
                // release: pairs with the owner's acquire exchange, so it completes an armed op.
                published[t].store(r.value().to_u64(), std::memory_order_release);
                const auto give_up = deadline + stuck_after;
                // Every other round the owner takes the token first, so that the completion
                // wins about as often as the cancel does (a cancel at once mostly wins).
                if (book.size() % 2 == 0)
                    while (published[t].load(std::memory_order_acquire) != none &&
                           clock_type::now() < give_up)
                        std::this_thread::yield();
                // ... while the owner completes it. A hand-off with no room says full: the
                // owner applies it, and the cancel is tried again.
                while (reg.cancel(r.value()) == opreg::cancel_status::full &&
                       clock_type::now() < give_up)
                    std::this_thread::yield();
                while (!rec.ended() && clock_type::now() < give_up) std::this_thread::yield();
            }
            done.fetch_add(1, std::memory_order_release);
        });
    }
    // The owner's completion of op `token`: a hand-off with no room is applied and the
    // completion tried again, as the reactor does (a kernel completion is never dropped).
    auto complete = [&reg](std::uint64_t token) {
        while (reg.cancel(opreg::op_token::from_u64(token), opreg::outcome::ready) ==
               opreg::cancel_status::full)
            reg.apply_handed_off();
    };

    progress_meter meter(o, std::string(reg.name()) + " completion_race");
    while (done.load(std::memory_order_acquire) < n) {
        for (int t = 0; t < n; ++t) {
            const std::uint64_t token = published[t].exchange(none, std::memory_order_acquire);
            if (token == none) continue;
            if (previous[t] != none) {  // a late completion of the op before
                completing[t] = previous[t];
                complete(previous[t]);
                reg.apply_handed_off();  // a hand-off applies it now, while it is the one named
            }
            completing[t] = token;
            complete(token);
            previous[t] = token;
        }
        reg.apply_handed_off();
        meter.tick(reg);
    }
    tally out = join_and_audit(reg, racers, n, books, "completion_race", &misdelivered);
    for (const auto lost_race :
         {opreg::outcome::closed, opreg::outcome::timed_out, opreg::outcome::error})
        if (out.outcomes[lost_race] != 0)
            out.fail("completion_race: " + std::to_string(out.outcomes[lost_race]) + " ops ended " +
                     std::string(opreg::to_string(lost_race)) +
                     "; only ready or cancelled may win");
    return out;
}

// close_reuse's callback: notes how its op ended, and counts a ready that no event of the
// op's own fd lifetime caused. A ready that was not latched at arm runs inside the owner's
// dispatch, where *dispatching_gen is the generation of the event being dispatched (read
// only on the owner, which alone writes it); a latched one was latched by an event of the
// op's lifetime, since close() clears the latch.
struct lifetime_checked_note {
    op_record* rec;
    const std::uint64_t* dispatching_gen;
    std::atomic<std::uint64_t>* misdelivered;
    std::uint64_t armed_gen;
    std::thread::id owner;

    void operator()(const opreg::completion& c) const noexcept {
        if (c.result == opreg::outcome::ready && !c.latched &&
            (std::this_thread::get_id() != owner || *dispatching_gen != armed_gen))
            misdelivered->fetch_add(1, std::memory_order_relaxed);
        rec->note(c);
    }
};

// close_reuse's tokens, per fd: the current lifetime's, and the last `history` closed ones
// (0 until that many lifetimes have closed). The fd's reuser stores them, with release:
// each pairs with the owner's acquire load, so a dispatch of a closed lifetime's token
// happens after that close() returned, and must be dropped as stale.
class lifetime_tokens {
public:
    static constexpr int history = 4;

    template <class R>
    lifetime_tokens(R& reg, int fds)
        : current_{std::make_unique<std::atomic<std::uint64_t>[]>(fds)},
          closed_{std::make_unique<std::atomic<std::uint64_t>[]>(std::size_t(fds) * history)} {
        for (int i = 0; i < fds * history; ++i) closed_[i].store(0);
        for (int fd = 0; fd < fds; ++fd) current_[fd].store(reg.token_of(fd).value().to_u64());
    }

    // The reuser of `fd`, once close() returned: `lifetime` (its count) is over; `next` is
    // the fd's token now.
    void publish_close(int fd, int lifetime, opreg::fd_token ended, opreg::fd_token next) {
        closed_[fd * history + lifetime % history].store(ended.to_u64(), std::memory_order_release);
        current_[fd].store(next.to_u64(), std::memory_order_release);
    }

    // The owner: the token of the fd's current lifetime, and of its k-th kept closed one.
    [[nodiscard]] std::uint64_t current(int fd) const {
        return current_[fd].load(std::memory_order_acquire);
    }
    [[nodiscard]] std::uint64_t closed_token(int fd, int k) const {
        return closed_[fd * history + k].load(std::memory_order_acquire);
    }

private:
    std::unique_ptr<std::atomic<std::uint64_t>[]> current_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> closed_;
};

// (c) fd close and reuse while the owner keeps delivering events, some of them for
// lifetimes already closed. A ready outcome must come from an event of the op's own
// lifetime; events of closed lifetimes are dropped and counted.
template <class R>
tally close_reuse(const options& o) {
    const int n = o.threads;
    R reg{opreg::registry_config{.max_fds = std::uint32_t(n), .max_pending = 0}};
    std::vector<record_book> books(n);
    lifetime_tokens tokens(reg, n);
    std::atomic<int> done{0};
    std::uint64_t dispatching_gen = 0;  // owner-only: generation of the event being dispatched
    std::atomic<std::uint64_t> misdelivered{0}, closes_refused{0};
    const std::thread::id owner = std::this_thread::get_id();
    const auto deadline = deadline_after(o.seconds);

    std::vector<std::thread> reusers;
    for (int t = 0; t < n; ++t) {
        reusers.emplace_back([&, t] {
            std::mt19937_64 rng(thread_seed(o, seed_stream::close_reuse, t));
            record_book& book = books[t];
            for (int lifetime = 0; clock_type::now() < deadline; ++lifetime) {
                const opreg::fd_token ft = reg.token_of(t).value();
                for (const auto d : {opreg::direction::read, opreg::direction::write}) {
                    // The write direction is armed in half the lifetimes.
                    if (d == opreg::direction::write && rng() % 2) continue;
                    op_record& rec = book.emplace_back();
                    const lifetime_checked_note cb{&rec, &dispatching_gen, &misdelivered,
                                                   ft.generation(), owner};
                    rec.accepted = arm_retrying(reg, t, d, cb, deadline).ok();
                }
                // Now and then the owner gets to dispatch this lifetime's events first.
                if (rng() % 4 == 0) std::this_thread::yield();
                if (reg.close(t) != opreg::errc::ok)
                    closes_refused.fetch_add(1, std::memory_order_relaxed);
                // The next lifetime's token goes out at once, before anything is armed in it,
                // so the owner also dispatches new-lifetime events while old ops may still be
                // ending.
                tokens.publish_close(t, lifetime, ft, reg.token_of(t).value());
            }
            done.fetch_add(1, std::memory_order_release);
        });
    }

    std::mt19937_64 rng(thread_seed(o, seed_stream::close_reuse, -1));
    std::uint64_t known_stale = 0;
    progress_meter meter(o, std::string(reg.name()) + " close_reuse");
    while (done.load(std::memory_order_acquire) < n) {
        for (int i = 0; i < ops_per_check; ++i) {
            const int fd = int(rng() % n);
            // One event in four is for a closed lifetime, when the fd has had one.
            const bool pick_old = rng() % 4 == 0;
            std::uint64_t bits =
                pick_old ? tokens.closed_token(fd, int(rng() % lifetime_tokens::history)) : 0;
            // A kept closed token was stored after its close() returned: stale for good. (A
            // current token may go stale during the dispatch, or not: it is not counted.)
            known_stale += bits != 0;
            if (bits == 0) bits = tokens.current(fd);
            const opreg::fd_token ft = opreg::fd_token::from_u64(bits);
            dispatching_gen = ft.generation();
            (void)reg.dispatch(ft, opreg::readiness::readable | opreg::readiness::writable);
        }
        meter.tick(reg);
    }
    tally out = join_and_audit(reg, reusers, n, books, "close_reuse", &misdelivered);
    if (closes_refused.load() != 0)
        out.fail("close_reuse: close() of a valid fd refused " +
                 std::to_string(closes_refused.load()) + " times");
    if (out.stats.stale_dropped < known_stale)
        out.fail("close_reuse: stale_dropped " + std::to_string(out.stats.stale_dropped) +
                 " < events of closed lifetimes delivered " + std::to_string(known_stale));
    return out;
}

// (f) Generation wrap at full width: every generation starts `below_top` under the top of
// its field (38 bits for op generations, 38 or 23 for fd generations), then one slot is
// armed and ended, and one fd closed, `reuses` times, across the wrap; tokens kept from
// both sides of it must never resolve.
template <class R>
tally generation_wrap(const options&) {
    constexpr int below_top = 2048;
    constexpr int reuses = 4 * below_top;  // crosses the top, then runs well past it
    constexpr int keep_every = 64;         // tokens kept: reuses / keep_every on each side
    constexpr int op_fd = 0;               // the slot armed and ended over and over
    constexpr int closed_fd = 1;           // the fd closed over and over
    // Two fds are used; four size mpsc_queue's command pools (2 x max_fds) for the stale
    // cancels queued at once below, so fewer of them meet `full`.
    constexpr int fds = 4;
    R reg{opreg::registry_config{
        .max_fds = fds, .max_pending = 0, .first_generation = ~std::uint64_t{0} - (below_top - 1)}};
    record_book book;
    std::vector<opreg::op_token> old_ops;
    std::vector<opreg::fd_token> old_fds;
    tally out{std::string(reg.name()), "generation_wrap"};

    // One (fd, direction) slot, armed and ended over and over.
    const opreg::fd_token ft = reg.token_of(op_fd).value();
    for (int i = 0; i < reuses; ++i) {
        op_record& rec = book.emplace_back();
        auto t = reg.arm(op_fd, opreg::direction::read, note_into(&rec));
        rec.accepted = t.ok();
        if (!t.ok()) {
            out.fail("generation_wrap: arm refused: " + std::string(opreg::to_string(t.error())));
            break;
        }
        reg.apply_handed_off();
        if (i % keep_every == 0) {
            // Every token kept so far is stale now: cancelling it must not touch this op.
            for (const opreg::op_token old : old_ops)
                while (reg.cancel(old) == opreg::cancel_status::full) reg.apply_handed_off();
            reg.apply_handed_off();
            if (rec.ended()) ++out.stale_resolved;
            old_ops.push_back(t.value());
        }
        if (rec.ended()) break;
        reg.dispatch(ft, opreg::readiness::readable);
    }

    // The kept tokens span the wrap: generations fall back to small values on the way.
    if (old_ops.size() < 2 || !(old_ops.front().generation() > old_ops.back().generation()))
        out.fail("generation_wrap: the op generations did not cross the top of their width");

    // One fd, closed over and over: events of every earlier lifetime stay stale.
    for (int i = 0; i < reuses; ++i) {
        if (i % keep_every == 0) old_fds.push_back(reg.token_of(closed_fd).value());
        if (const opreg::errc e = reg.close(closed_fd); e != opreg::errc::ok) {
            out.fail("generation_wrap: close refused: " + std::string(opreg::to_string(e)));
            break;
        }
    }
    if (old_fds.size() < 2 || !(old_fds.front().generation() > old_fds.back().generation()))
        out.fail("generation_wrap: the fd generations did not cross the top of their width");
    reg.apply_handed_off();
    op_record& last = book.emplace_back();
    last.accepted = reg.arm(closed_fd, opreg::direction::read, note_into(&last)).ok();
    reg.apply_handed_off();
    for (const opreg::fd_token old : old_fds) {
        reg.dispatch(old, opreg::readiness::readable);
        if (last.ended()) {
            ++out.stale_resolved;
            break;
        }
    }
    for (int fd = 0; fd < fds; ++fd) (void)reg.close(fd);
    drain(reg);

    out.stats = reg.stats();
    audit({&book}, out);
    return out;
}

} // namespace opreg_stress
