// SPDX-License-Identifier: Apache-2.0
// opreg/detail/timer_heap.hpp — the reactor's timers: an indexed binary min-heap.
//
// One reactor thread's timers, over pooled entries, so that add and cancel are O(log n) and
// a timer id stays valid (entry index + the entry's generation) only while its timer is
// pending: an id kept after its timer fired or was cancelled never names a later timer in
// the same entry. Not thread-safe. Grows with the number of timers pending at once; entries
// are reused, so a steady number of timers allocates nothing once warm.
#pragma once

#include <opreg/config.hpp>

#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

namespace opreg::detail {

template <class Task>
class timer_heap {
public:
    using clock = std::chrono::steady_clock;
    // A timer: its entry and the entry's generation (64 bits: an id kept after its timer
    // fired never cancels a later timer in the same entry).
    struct id {
        std::uint32_t index = 0xffffffff;
        std::uint64_t generation = 0;
        friend bool operator==(const id&, const id&) = default;
    };

    id add(clock::time_point due, Task fn) {
        std::uint32_t i;
        if (!free_.empty()) {
            i = free_.back();
            free_.pop_back();
        } else {
            i = static_cast<std::uint32_t>(entries_.size());
            entries_.emplace_back();
        }
        entry& e = entries_[i];
        e.due = due;
        e.fn = std::move(fn);
        e.pos = static_cast<std::uint32_t>(heap_.size());
        heap_.push_back(i);
        sift_up(e.pos);
        return {i, e.generation};
    }

    bool cancel(id t) {
        if (t.index >= entries_.size()) return false;
        entry& e = entries_[t.index];
        if (e.generation != t.generation || e.pos == npos) return false;
        remove_at(e.pos);
        release(t.index);
        return true;
    }

    [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }
    [[nodiscard]] clock::time_point next_due() const noexcept { return entries_[heap_[0]].due; }

    // Removes the earliest timer if it is due at `now`; its task goes to `out`.
    bool pop_due(clock::time_point now, Task& out) {
        if (heap_.empty() || entries_[heap_[0]].due > now) return false;
        const std::uint32_t i = heap_[0];
        remove_at(0);
        out = std::move(entries_[i].fn);
        release(i);
        return true;
    }

private:
    static constexpr std::uint32_t npos = 0xffffffff;
    struct entry {
        clock::time_point due{};
        std::uint64_t generation = 0;
        std::uint32_t pos = npos;  // place in heap_, npos when not pending
        Task fn;
    };

    void release(std::uint32_t i) {
        entry& e = entries_[i];
        e.fn.reset();
        e.pos = npos;
        ++e.generation;  // a stale id no longer cancels the next timer in this entry
        free_.push_back(i);
    }

    void remove_at(std::uint32_t pos) {
        const std::uint32_t last = static_cast<std::uint32_t>(heap_.size() - 1);
        entries_[heap_[pos]].pos = npos;
        if (pos != last) {
            heap_[pos] = heap_[last];
            entries_[heap_[pos]].pos = pos;
        }
        heap_.pop_back();
        if (pos < heap_.size()) {
            sift_up(pos);
            sift_down(entries_[heap_[pos]].pos);
        }
    }

    bool less(std::uint32_t a, std::uint32_t b) const noexcept {
        return entries_[heap_[a]].due < entries_[heap_[b]].due;
    }
    void swap_at(std::uint32_t a, std::uint32_t b) noexcept {
        std::swap(heap_[a], heap_[b]);
        entries_[heap_[a]].pos = a;
        entries_[heap_[b]].pos = b;
    }
    void sift_up(std::uint32_t pos) noexcept {
        while (pos > 0) {
            const std::uint32_t parent = (pos - 1) / 2;
            if (!less(pos, parent)) break;
            swap_at(pos, parent);
            pos = parent;
        }
    }
    void sift_down(std::uint32_t pos) noexcept {
        const std::uint32_t n = static_cast<std::uint32_t>(heap_.size());
        for (;;) {
            const std::uint32_t l = 2 * pos + 1, r = l + 1;
            std::uint32_t m = pos;
            if (l < n && less(l, m)) m = l;
            if (r < n && less(r, m)) m = r;
            if (m == pos) return;
            swap_at(pos, m);
            pos = m;
        }
    }

    std::vector<entry> entries_;
    std::vector<std::uint32_t> heap_;
    std::vector<std::uint32_t> free_;
};

}  // namespace opreg::detail
