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

// A seed per (scenario, thread): the random choices of each thread repeat for a given
// --seed; the interleaving is the scheduler's.
inline std::uint64_t thread_seed(const options& o, int scenario, int thread) {
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

template <class R>
void drain(R& reg) {
    while (reg.poll() != 0) {
    }
}

// Arms until it is accepted or refused for good: busy and full are retried while the
// previous op on the slot is still ending (or a hand-off owner has not caught up).
template <class R>
opreg::result<opreg::op_token> arm_retrying(R& reg, int fd, opreg::direction d, op_record* rec,
                                            clock_type::time_point give_up) {
    for (;;) {
        auto t = reg.arm(fd, d, note_into(rec));
        if (t.ok() || (t.error() != opreg::errc::busy && t.error() != opreg::errc::full) ||
            clock_type::now() > give_up)
            return t;
        std::this_thread::yield();
    }
}

// (a) The reactor shape: `threads` threads arm and cancel on their own fds, keeping up to
// `in_flight` ops pending each; one owner thread dispatches readiness for every fd.
template <class R>
tally reactor_shape(const options& o) {
    const int per_thread = o.in_flight;
    const int fds = o.threads * per_thread;
    R reg{opreg::registry_config{.max_fds = std::uint32_t(fds), .max_pending = 0}};
    std::vector<record_book> books(o.threads);
    std::atomic<int> done{0};
    const auto deadline = deadline_after(o.seconds);

    std::vector<std::thread> armers;
    for (int t = 0; t < o.threads; ++t) {
        armers.emplace_back([&, t] {
            std::mt19937_64 rng(thread_seed(o, 1, t));
            std::vector<opreg::op_token> live;
            std::size_t oldest = 0;
            record_book& book = books[t];
            while (clock_type::now() < deadline) {
                for (int burst = 0; burst < 64; ++burst) {
                    const int fd = t * per_thread + int(rng() % per_thread);
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
                    if (rng() % 512 == 0) (void)reg.close(fd);
                }
            }
            done.fetch_add(1, std::memory_order_release);
        });
    }

    std::mt19937_64 rng(thread_seed(o, 1, -1));
    progress_meter meter(o, std::string(reg.name()) + " reactor");
    while (done.load(std::memory_order_acquire) < o.threads) {
        for (int i = 0; i < 256; ++i) {
            const int fd = int(rng() % fds);
            const unsigned pick = unsigned(rng() % 32);
            const auto ev = pick == 0 ? opreg::readiness::error
                            : pick < 20 ? opreg::readiness::readable
                            : pick < 28 ? opreg::readiness::writable
                                        : opreg::readiness::readable | opreg::readiness::writable;
            reg.dispatch(reg.token_of(fd).value(), ev);
        }
        meter.tick(reg);
    }
    for (auto& th : armers) th.join();
    drain(reg);
    for (int fd = 0; fd < fds; ++fd) (void)reg.close(fd);
    drain(reg);

    tally out{std::string(reg.name()), "reactor"};
    out.stats = reg.stats();
    std::vector<const record_book*> all;
    for (auto& b : books) all.push_back(&b);
    audit(all, out);
    return out;
}

// (b) A cancel racing the owner's dispatch of the same op, over and over, on one fd per
// thread. Exactly one of them wins each time.
template <class R>
tally cancel_race(const options& o) {
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
                auto r = arm_retrying(reg, t, opreg::direction::read, &rec, deadline);
                rec.accepted = r.ok();
                if (!r.ok()) break;
                published[t].store(true, std::memory_order_release);  // owner: dispatch now
                (void)reg.cancel(r.value());                            // ... while we cancel
                // The op ends on one side or the other; a stuck op shows as lost.
                const auto give_up = deadline + std::chrono::seconds(5);
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
        reg.poll();
        meter.tick(reg);
    }
    for (auto& th : racers) th.join();
    drain(reg);
    for (int fd = 0; fd < n; ++fd) (void)reg.close(fd);
    drain(reg);

    tally out{std::string(reg.name()), "cancel_race"};
    out.stats = reg.stats();
    std::vector<const record_book*> all;
    for (auto& b : books) all.push_back(&b);
    audit(all, out);
    if (out.outcomes[2] + out.outcomes[3] + out.outcomes[4] != 0)
        out.fail("cancel_race: an outcome other than ready or cancelled");
    return out;
}

// (c) fd close and reuse while the owner keeps delivering events, some of them for
// lifetimes already closed. A ready outcome must come from an event of the op's own
// lifetime; events of closed lifetimes are dropped and counted.
template <class R>
tally close_reuse(const options& o) {
    const int n = o.threads;
    constexpr int history = 4;
    R reg{opreg::registry_config{.max_fds = std::uint32_t(n), .max_pending = 0}};
    std::vector<record_book> books(n);
    // Per fd: the current token, and tokens of lifetimes already closed.
    auto current = std::make_unique<std::atomic<std::uint64_t>[]>(n);
    auto old = std::make_unique<std::atomic<std::uint64_t>[]>(std::size_t(n) * history);
    for (int i = 0; i < n * history; ++i) old[i].store(0);
    for (int t = 0; t < n; ++t) current[t].store(reg.token_of(t).value().to_u64());
    std::atomic<int> done{0};
    std::uint32_t dispatching_gen = 0;  // owner-only: generation of the event being dispatched
    std::atomic<std::uint64_t> misdelivered{0};
    const std::thread::id owner = std::this_thread::get_id();
    const auto deadline = deadline_after(o.seconds);

    std::vector<std::thread> reusers;
    for (int t = 0; t < n; ++t) {
        reusers.emplace_back([&, t] {
            std::mt19937_64 rng(thread_seed(o, 3, t));
            record_book& book = books[t];
            int lifetime = 0;
            while (clock_type::now() < deadline) {
                const opreg::fd_token ft = reg.token_of(t).value();
                const std::uint32_t mine = ft.generation();
                for (const auto d : {opreg::direction::read, opreg::direction::write}) {
                    if (d == opreg::direction::write && rng() % 2) continue;
                    op_record& rec = book.emplace_back();
                    std::uint32_t* owner_gen = &dispatching_gen;
                    auto* bad = &misdelivered;
                    op_record* r = &rec;
                    auto arm = [&] {
                        return reg.arm(t, d, [r, owner_gen, bad, mine, owner](const opreg::completion& c) {
                            // A ready that was not latched at arm runs inside the owner's
                            // dispatch, where owner_gen is the generation being dispatched.
                            // (A latched one was latched by an event of this lifetime.)
                            if (c.result == opreg::outcome::ready && !c.latched &&
                                (std::this_thread::get_id() != owner || *owner_gen != mine))
                                bad->fetch_add(1, std::memory_order_relaxed);
                            r->note(c);
                        });
                    };
                    auto a = arm();
                    while (!a.ok() && (a.error() == opreg::errc::busy || a.error() == opreg::errc::full) &&
                           clock_type::now() < deadline) {
                        std::this_thread::yield();
                        a = arm();
                    }
                    rec.accepted = a.ok();
                }
                current[t].store(ft.to_u64(), std::memory_order_release);
                if (rng() % 4 == 0) std::this_thread::yield();
                while (reg.close(t) == opreg::errc::full) std::this_thread::yield();
                // That lifetime is over: its token is now known stale. The next lifetime's
                // token goes out at once, before anything is armed in it, so the owner also
                // dispatches new-lifetime events while old ops may still be ending.
                old[t * history + lifetime++ % history].store(ft.to_u64(), std::memory_order_release);
                current[t].store(reg.token_of(t).value().to_u64(), std::memory_order_release);
            }
            done.fetch_add(1, std::memory_order_release);
        });
    }

    std::mt19937_64 rng(thread_seed(o, 3, -1));
    std::uint64_t known_stale = 0;
    progress_meter meter(o, std::string(reg.name()) + " close_reuse");
    while (done.load(std::memory_order_acquire) < n) {
        for (int i = 0; i < 64; ++i) {
            const int fd = int(rng() % n);
            std::uint64_t bits = 0;
            const bool pick_old = rng() % 4 == 0;
            if (pick_old) bits = old[fd * history + rng() % history].load(std::memory_order_acquire);
            if (bits == 0) bits = current[fd].load(std::memory_order_acquire);
            const opreg::fd_token ft = opreg::fd_token::from_u64(bits);
            dispatching_gen = ft.generation();
            const std::size_t ended = reg.dispatch(ft, opreg::readiness::readable | opreg::readiness::writable);
            // A token from `old` was stored after its close() returned: stale for good.
            if (pick_old && bits != current[fd].load(std::memory_order_acquire)) ++known_stale;
            (void)ended;
        }
        meter.tick(reg);
    }
    for (auto& th : reusers) th.join();
    drain(reg);
    for (int fd = 0; fd < n; ++fd) (void)reg.close(fd);
    drain(reg);

    tally out{std::string(reg.name()), "close_reuse"};
    out.stats = reg.stats();
    out.misdelivered = misdelivered.load();
    std::vector<const record_book*> all;
    for (auto& b : books) all.push_back(&b);
    audit(all, out);
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
    constexpr int reuses = 4 * below_top;
    constexpr int keep_every = 64;
    R reg{opreg::registry_config{.max_fds = 4, .max_pending = 0,
                                 .first_generation = ~std::uint64_t{0} - (below_top - 1)}};
    record_book book;
    std::vector<opreg::op_token> old_ops;
    std::vector<opreg::fd_token> old_fds;
    tally out{std::string(reg.name()), "generation_wrap"};

    // One (fd, direction) slot, armed and ended over and over.
    const opreg::fd_token ft = reg.token_of(0).value();
    for (int i = 0; i < reuses; ++i) {
        op_record& rec = book.emplace_back();
        auto t = reg.arm(0, opreg::direction::read, note_into(&rec));
        rec.accepted = t.ok();
        if (!t.ok()) {
            out.fail("generation_wrap: arm refused: " + std::string(opreg::to_string(t.error())));
            break;
        }
        reg.poll();
        if (i % keep_every == 0) {
            // Every token kept so far is stale now: cancelling it must not touch this op.
            for (const opreg::op_token old : old_ops)
                while (reg.cancel(old) == opreg::cancel_status::full) reg.poll();
            reg.poll();
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
        if (i % keep_every == 0) old_fds.push_back(reg.token_of(1).value());
        while (reg.close(1) == opreg::errc::full) reg.poll();
    }
    if (old_fds.size() < 2 || !(old_fds.front().generation() > old_fds.back().generation()))
        out.fail("generation_wrap: the fd generations did not cross the top of their width");
    reg.poll();
    op_record& last = book.emplace_back();
    last.accepted = reg.arm(1, opreg::direction::read, note_into(&last)).ok();
    reg.poll();
    for (const opreg::fd_token old : old_fds) {
        reg.dispatch(old, opreg::readiness::readable);
        if (last.ended()) {
            ++out.stale_resolved;
            break;
        }
    }
    for (int fd = 0; fd < 4; ++fd) (void)reg.close(fd);
    drain(reg);

    out.stats = reg.stats();
    audit({&book}, out);
    return out;
}

} // namespace opreg_stress
