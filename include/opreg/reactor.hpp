// opreg/reactor.hpp — a thin event loop that any opreg registry plugs into.
//
// WHAT: the kernel tells which fds are ready (epoll, io_uring or kqueue, behind the hooks
// in detail/poller.hpp); the registry (template parameter R, or any_registry) holds what
// waits for them. The reactor adds what a loop needs around that and nothing more:
// - watch(fd) once per fd lifetime: the fd's token goes to the kernel once, edge-triggered,
//   never re-registered per operation;
// - arm/cancel (the registry's, from any thread); close(fd), which ends the fd's pending
//   ops as closed, skips its events still in the current batch (their generation is
//   stale) and closes the fd;
// - post(task) from any thread: an intrusive MPSC queue of pooled nodes plus an eventfd,
//   with wake-ups coalesced (one eventfd write per wake-up, not per post) and never lost;
// - timers on the reactor thread (after / cancel_timer), and expire_after(op, d), which
//   ends an op as timed_out when its deadline passes first;
// - run() / run_once() on the reactor thread, stop() from any thread.
//
// THREADS: one reactor is driven by one thread. Several reactors, each on its thread, may
// share one registry whose dispatch is thread-safe (hands_off() false: slot_array and the
// map strategies), each watching its own fds; a hands_off() registry (mpsc_queue) has one
// owner, so give each reactor its own. watch/close/after/cancel_timer/run belong to the
// reactor thread; arm, cancel, post and stop may be called from any thread.
//
// ALLOCATION: none per operation or per post once warm (post nodes come from a fixed pool:
// post() reports false when it is full). Timers live in a vector-backed indexed heap that
// grows with the number of timers pending at once.
//
// WAKE-UP ORDERING: post() pushes, then exchanges wake_pending_ to true (acq_rel) and
// writes the eventfd only if it was false. The loop, woken, exchanges it back to false
// (acq_rel) before it drains: if a post's exchange came first, the loop's RMW reads it
// and synchronizes with it, so the drain sees that node (or the push still in flight
// withholding it, whose own exchange will then find false and write again); if it came
// after, the post sees false and writes. Either way no post is left without a wake-up.
#pragma once

#include <atomic>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <opreg/detail/poller.hpp>
#include <opreg/inline_function.hpp>
#include <opreg/intrusive_mpsc_queue.hpp>
#include <opreg/object_pool.hpp>
#include <opreg/registry.hpp>
#include <opreg/token.hpp>
#include <opreg/types.hpp>

namespace opreg {

[[nodiscard]] std::string_view to_string(backend b) noexcept;
// "epoll", "io_uring", "kqueue" -> the backend; false for anything else.
[[nodiscard]] bool parse_backend(std::string_view name, backend& out) noexcept;

struct reactor_options {
    backend which = backend::epoll;
    // When `which` is unavailable here (io_uring refused by the kernel, kqueue off BSD),
    // fall back to epoll and say so in note(); false: the constructor throws instead.
    bool fall_back = true;
    std::size_t max_events = 256;  // kernel events taken per wait
    std::size_t max_posts = 4096;  // posts queued at once; post() returns false beyond
    // For measurement only: re-register the fd with the kernel on every arm (epoll: DEL then
    // ADD, two system calls per operation; io_uring: a poll update, one), as a design that
    // registers per operation does, instead of once per fd lifetime. Reactor-thread arms
    // only.
    bool rearm_per_op = false;
};

struct reactor_stats {
    std::uint64_t waits = 0;         // kernel waits
    std::uint64_t events = 0;        // kernel events dispatched to the registry
    std::uint64_t posts = 0;         // tasks run from post()
    std::uint64_t wakeups = 0;       // eventfd writes (coalesced: <= posts + stops)
    std::uint64_t timers_fired = 0;
};

namespace detail {

// The eventfd and the syscalls around it live in src/reactor_support.cpp.
int make_wake_fd() noexcept;                 // -1 and errno on failure
void signal_wake_fd(int fd) noexcept;        // eventfd += 1
void drain_wake_fd(int fd) noexcept;         // eventfd = 0
void close_fd(int fd) noexcept;

// The wake-up eventfd's token: slot 0xffffffff is never an fd a registry accepts.
inline constexpr std::uint64_t wake_token = 0xffffffffull;

// Timers of one reactor thread: an indexed binary min-heap over pooled entries, so that
// cancel is O(log n) and a timer id stays valid (index + generation) only while pending.
template <class Task>
class timer_heap {
public:
    using clock = std::chrono::steady_clock;
    struct id {
        std::uint32_t index = 0xffffffff;
        std::uint32_t generation = 0;
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
        std::uint32_t generation = 0;
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

// Opens the backend asked for, falling back to epoll when allowed.
std::unique_ptr<poller> open_poller(backend which, bool fall_back, std::string& note);

} // namespace detail

template <registry R>
class reactor {
public:
    using task = inline_function<void(), 48>;
    using timer_id = typename detail::timer_heap<task>::id;
    using clock = std::chrono::steady_clock;

    // Throws std::system_error when no backend can be opened or the eventfd fails.
    explicit reactor(R& reg, reactor_options opt = {})
        : reg_{reg},
          opt_{opt},
          poller_{detail::open_poller(opt.which, opt.fall_back, note_)},
          events_(opt.max_events),
          posts_{opt.max_posts} {
        wake_fd_ = detail::make_wake_fd();
        if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "opreg: eventfd");
        if (const int e = poller_->watch(wake_fd_, detail::wake_token); e != 0) {
            detail::close_fd(wake_fd_);
            throw std::system_error(e, std::generic_category(), "opreg: watching the eventfd");
        }
    }

    reactor(const reactor&) = delete;
    reactor& operator=(const reactor&) = delete;

    // Posted tasks not yet run are destroyed without running.
    ~reactor() {
        (void)poller_->unwatch(wake_fd_, detail::wake_token);
        poller_.reset();
        detail::close_fd(wake_fd_);
        while (post_node* n = queue_.try_pop()) posts_.destroy(n);
    }

    [[nodiscard]] backend active_backend() const noexcept { return poller_->kind(); }
    // Why the backend asked for is not the one in use; empty when it is.
    [[nodiscard]] const std::string& note() const noexcept { return note_; }
    [[nodiscard]] R& registry() noexcept { return reg_; }

    // Reactor thread. Registers fd with the kernel for its lifetime; returns its token.
    [[nodiscard]] result<fd_token> watch(int fd) {
        result<fd_token> t = reg_.token_of(fd);
        if (!t) return t;
        if (const int e = poller_->watch(fd, t.value().to_u64()); e != 0) {
            errno = e;
            return errc::os_error;
        }
        return t;
    }

    // Reactor thread. Ends fd's pending ops as closed, stops its events (those already in
    // this batch are stale now) and closes the fd.
    errc close(int fd) {
        result<fd_token> t = reg_.token_of(fd);
        if (!t) return t.error();
        const errc e = reg_.close(fd);
        (void)poller_->unwatch(fd, t.value().to_u64());
        detail::close_fd(fd);
        return e;
    }

    [[nodiscard]] result<op_token> arm(int fd, direction d, callback cb) {
        if (opt_.rearm_per_op) {
            if (const result<fd_token> t = reg_.token_of(fd))
                (void)poller_->rewatch(fd, t.value().to_u64());
        }
        return reg_.arm(fd, d, std::move(cb));
    }
    cancel_status cancel(op_token t, outcome why = outcome::cancelled) {
        return reg_.cancel(t, why);
    }

    // Reactor thread. Runs fn on the reactor thread after `delay`.
    timer_id after(clock::duration delay, task fn) {
        return timers_.add(clock::now() + delay, std::move(fn));
    }
    // Reactor thread. true if the timer was pending and will not run.
    bool cancel_timer(timer_id t) { return timers_.cancel(t); }

    // Reactor thread. Ends op `t` as timed_out if it is still pending after `delay`. If the
    // op ends first the timer finds it stale and does nothing; cancel_timer saves the wait.
    timer_id expire_after(op_token t, clock::duration delay) {
        R* reg = &reg_;
        return after(delay, [reg, t] { (void)reg->cancel(t, outcome::timed_out); });
    }

    // Any thread. Runs fn on the reactor thread; false when max_posts are already queued.
    [[nodiscard]] bool post(task fn) {
        post_node* n = posts_.try_create(std::move(fn));
        if (n == nullptr) return false;
        queue_.push(n);
        wake();
        return true;
    }

    // Any thread. run() returns after the loop iteration in progress.
    void stop() noexcept {
        stopping_.store(true, std::memory_order_release);  // pairs with run()'s acquire load
        wake();
    }

    // Reactor thread. Loops until stop(); a stop() before run() makes it return at once.
    void run() {
        while (!stopping_.load(std::memory_order_acquire)) run_once(-1);
        stopping_.store(false, std::memory_order_relaxed);  // only this thread reads it next
    }

    // Reactor thread. Waits up to timeout_ms (-1: until something happens) and handles
    // what came: kernel events, due timers, posted tasks. Returns how many it handled.
    std::size_t run_once(int timeout_ms) {
        int wait_ms = timeout_ms;
        if (!timers_.empty()) {
            const auto until = timers_.next_due() - clock::now();
            const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until).count();
            const int due_ms = ms < 0 ? 0 : ms > 1000000 ? 1000000 : static_cast<int>(ms);
            if (wait_ms < 0 || due_ms < wait_ms) wait_ms = due_ms;
        }
        if (!queue_.empty_approx()) wait_ms = 0;

        const int n = poller_->wait(events_, wait_ms);
        ++stats_.waits;
        std::size_t handled = 0;
        for (int i = 0; i < n; ++i) {
            const detail::poll_event& ev = events_[static_cast<std::size_t>(i)];
            if (ev.token == detail::wake_token) {
                detail::drain_wake_fd(wake_fd_);
                // acq_rel: see WAKE-UP ORDERING in the header comment.
                wake_pending_.exchange(false, std::memory_order_acq_rel);
                continue;
            }
            reg_.dispatch(fd_token::from_u64(ev.token), ev.ev);
            ++stats_.events;
            ++handled;
        }
        reg_.poll();
        handled += run_due_timers();
        handled += run_posts();
        return handled;
    }

    [[nodiscard]] reactor_stats stats() const noexcept {
        reactor_stats s = stats_;
        s.wakeups = wakeups_.load(std::memory_order_relaxed);  // a statistic
        return s;
    }

private:
    struct post_node {
        explicit post_node(task&& f) noexcept : fn{std::move(f)} {}
        mpsc_hook hook;
        task fn;
    };

    void wake() noexcept {
        // acq_rel: see WAKE-UP ORDERING in the header comment.
        if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
            wakeups_.fetch_add(1, std::memory_order_relaxed);  // a statistic
            detail::signal_wake_fd(wake_fd_);
        }
    }

    std::size_t run_due_timers() {
        if (timers_.empty()) return 0;
        std::size_t n = 0;
        const auto now = clock::now();
        task fn;
        while (timers_.pop_due(now, fn)) {
            fn();
            fn.reset();
            ++n;
        }
        stats_.timers_fired += n;
        return n;
    }

    // At most max_posts per iteration, so that tasks which post tasks cannot starve the
    // kernel events; the rest run next iteration (which then does not block).
    std::size_t run_posts() {
        std::size_t n = 0;
        while (n < opt_.max_posts) {
            post_node* node = queue_.try_pop();
            if (node == nullptr) break;
            task fn = std::move(node->fn);
            posts_.destroy(node);
            fn();
            ++n;
        }
        stats_.posts += n;
        return n;
    }

    R& reg_;
    reactor_options opt_;
    std::string note_;
    std::unique_ptr<detail::poller> poller_;
    std::vector<detail::poll_event> events_;
    object_pool<post_node> posts_;
    intrusive_mpsc_queue<post_node, &post_node::hook> queue_;
    detail::timer_heap<task> timers_;
    int wake_fd_ = -1;
    alignas(64) std::atomic<bool> wake_pending_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> wakeups_{0};
    reactor_stats stats_;  // reactor thread only
};

} // namespace opreg
