// SPDX-License-Identifier: Apache-2.0
// The stress oracle: one record per armed operation, filled in by its callback, checked
// after every thread has joined (the joins order the reads after all writes).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include <opreg/opreg.hpp>

namespace opreg_stress {

struct op_record {
    static constexpr std::uint8_t no_outcome = 0xff;  // not an opreg::outcome: never ended

    std::atomic<std::uint32_t> calls{0};
    std::atomic<std::uint8_t> result{no_outcome};
    bool accepted = false;  // written by the arming thread only, read after the joins

    void note(const opreg::completion& c) noexcept {
        result.store(static_cast<std::uint8_t>(c.result), std::memory_order_relaxed);
        calls.fetch_add(1, std::memory_order_release);  // release: pairs with ended()'s acquire
    }
    [[nodiscard]] bool ended() const noexcept {
        return calls.load(std::memory_order_acquire) != 0;
    }
};

// Records of one thread. A deque never moves its elements, so callbacks may keep pointers.
using record_book = std::deque<op_record>;

// The callback for a record: counts into it. Copyable, so that an arm refused with busy or
// full can be tried again with the same one.
struct note_into {
    explicit note_into(op_record* r) noexcept : rec{r} {}
    void operator()(const opreg::completion& c) const noexcept { rec->note(c); }
    op_record* rec;
};

// How many ops ended with each outcome, indexed by the outcome.
class outcome_counts {
public:
    // error is the last outcome (types.hpp).
    static constexpr std::size_t size = static_cast<std::size_t>(opreg::outcome::error) + 1;

    [[nodiscard]] static constexpr bool is_outcome(std::uint8_t raw) noexcept { return raw < size; }

    std::uint64_t& operator[](opreg::outcome o) noexcept { return n_[static_cast<std::size_t>(o)]; }
    std::uint64_t operator[](opreg::outcome o) const noexcept {
        return n_[static_cast<std::size_t>(o)];
    }

private:
    std::array<std::uint64_t, size> n_{};
};

// What one scenario run found, for one strategy.
struct tally {
    tally(std::string strategy_name, std::string scenario_name)
        : strategy{std::move(strategy_name)}, scenario{std::move(scenario_name)} {}

    std::string strategy;
    std::string scenario;
    opreg::registry_stats stats;
    std::uint64_t accepted = 0;
    std::uint64_t lost = 0;          // accepted, never ended
    std::uint64_t duplicated = 0;    // ended more than once
    std::uint64_t refused_ran = 0;   // refused by arm, callback ran anyway
    std::uint64_t misdelivered = 0;  // ready from an event of another fd lifetime, or from
                                     // a completion naming another op
    std::uint64_t stale_resolved = 0;
    outcome_counts outcomes;
    std::vector<std::string> problems;

    [[nodiscard]] bool ok() const noexcept { return problems.empty(); }
    void fail(std::string why) { problems.push_back(std::move(why)); }
};

// Checks every record against exactly-once, then the registry's stats against the records.
inline void audit(const std::vector<const record_book*>& books, tally& t) {
    for (const record_book* book : books) {
        for (const op_record& r : *book) {
            const std::uint32_t calls = r.calls.load(std::memory_order_acquire);
            if (!r.accepted) {
                t.refused_ran += calls != 0;
                continue;
            }
            ++t.accepted;
            if (calls == 0) ++t.lost;
            if (calls > 1) ++t.duplicated;
            if (calls >= 1) {
                const std::uint8_t o = r.result.load(std::memory_order_relaxed);
                if (outcome_counts::is_outcome(o)) ++t.outcomes[static_cast<opreg::outcome>(o)];
            }
        }
    }
    const opreg::registry_stats& s = t.stats;
    auto expect = [&t](const char* what, std::uint64_t got, std::uint64_t want) {
        if (got != want)
            t.fail(std::string(what) + ": " + std::to_string(got) + " != " + std::to_string(want));
    };
    expect("lost", t.lost, 0);
    expect("duplicated", t.duplicated, 0);
    expect("refused ops whose callback ran", t.refused_ran, 0);
    expect("misdelivered", t.misdelivered, 0);
    expect("stale tokens that resolved", t.stale_resolved, 0);
    expect("stats.armed vs accepted", s.armed, t.accepted);
    expect("stats.in_flight at rest", s.in_flight, 0);
    using opreg::outcome;
    expect("stats.completed vs records", s.completed, t.outcomes[outcome::ready]);
    expect("stats.cancelled vs records", s.cancelled, t.outcomes[outcome::cancelled]);
    expect("stats.closed vs records", s.closed, t.outcomes[outcome::closed]);
    expect("stats.timed_out vs records", s.timed_out, t.outcomes[outcome::timed_out]);
    expect("stats.errors vs records", s.errors, t.outcomes[outcome::error]);
}

} // namespace opreg_stress
