// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/reactor.hpp — a thin event loop that any opreg registry plugs into.
///
/// WHAT: the kernel tells which fds are ready (epoll, io_uring or kqueue, behind the hooks
/// in detail/poller.hpp); the registry (template parameter R, or any_registry) holds what
/// waits for them. The reactor adds what a loop needs around that and nothing more:
/// - watch(fd) once per fd lifetime: the fd's token goes to the kernel once, edge-triggered,
///   never re-registered per operation;
/// - arm/cancel (the registry's, from any thread); close(fd), which ends the fd's pending
///   ops as closed, skips its events still in the current batch (their generation is
///   stale) and closes the fd;
/// - post(task) from any thread: an intrusive MPSC queue of pooled nodes plus the backend's
///   wake-up (poller::wake: an eventfd on Linux, EVFILT_USER on kqueue), with wake-ups
///   coalesced (one per wake-up, not per post) and never lost;
/// - timers on the reactor thread (after / cancel_timer), and expire_after(op, d), which
///   ends an op as timed_out when its deadline passes first;
/// - run() / run_once() on the reactor thread, stop() from any thread.
/// - on io_uring, COMPLETION MODE: recv/send ops whose kernel completion ends them through
///   the registry (see recv() below).
///
/// THREADS: one reactor is driven by one thread, the reactor thread: the one that last
/// entered run() or run_once() (before that, the one that constructed it). Several reactors,
/// each on its thread, may share one registry whose dispatch is thread-safe (hands_off()
/// false: slot_array and the map strategies), each watching its own fds; a hands_off()
/// registry (mpsc_queue) has one owner, so give each reactor its own. watch/close/after/
/// cancel_timer/expire_after/run belong to the reactor thread; arm, cancel, post and stop may
/// be called from any thread.
///
/// EVERY CALLBACK RUNS ON THE REACTOR THREAD, whatever the strategy (as libuv and Asio
/// promise), for ops armed and cancelled through the reactor, on fds it watches:
/// - arm() from another thread: a hands_off() registry runs callbacks on its owner anyway,
///   and the reactor wakes so that the owner applies the arm now. For the others the callback
///   rides in a pooled carrier (max_foreign_ops at once; errc::full beyond): wherever the op
///   ends (at once, on a latch, inside arm), the carrier hands the completion to the reactor
///   thread, which runs the callback in its next loop turn.
/// - cancel() from another thread: handed to the reactor thread (a posted task, or the
///   hands_off() registry's own queue) and applied there; it returns cancel_status::requested
///   (or full when there is no room to hand it over), as mpsc_queue's cancel does.
/// - registry calls made directly, not through the reactor, keep the bare registry's promise
///   (registry.hpp): callbacks run on the thread that ended the op.
/// A reactor must be destroyed only once the ops armed through it from other threads have
/// ended (close their fds first): their callbacks wait in its carrier pool. The same holds for
/// completion-mode ops: close their fds and run the loop until their callbacks have run (a
/// closed send's waits for the kernel), or they are destroyed without running.
///
/// HAND-OFF REGISTRIES: work handed to a hands_off() registry is applied in the same loop turn
/// it was made in, never left for an unrelated kernel event: each turn applies the registry's
/// hand-off before it waits and again after its timers and posts (so a timeout's cancel, or a
/// callback's re-arm that finds readiness latched, ends its op in that turn), and does not sleep
/// while the last apply_handed_off() applied anything. Other threads' arms and cancels through the
/// reactor wake it.
///
/// DEADLINES: expire_after(op, d) keeps at most one deadline timer per (fd, direction): a
/// deadline for a newer op on the same (fd, direction) replaces the older op's timer (that op
/// has ended), close(fd) drops both of the fd's, and a timeout that finds the hand-off full
/// (cancel_status::full) applies the hand-off to make room and tries again, next turn at the
/// latest, so a real timeout is never lost and timers of ended ops do not pile up.
///
/// CALLBACKS, TASKS AND TIMERS MUST NOT THROW: an exception that leaves one ends the program
/// (std::terminate), as for the registries' callbacks.
///
/// ALLOCATION: none per operation or per post once warm (post nodes and carriers come from
/// fixed pools: post() reports false, a foreign arm errc::full, when one is full). Timers live
/// in a vector-backed indexed heap that grows with the number of timers pending at once; the
/// per-(fd, direction) deadline table grows with the highest fd given a deadline.
///
/// WAKE-UP ORDERING: post() pushes, then exchanges wake_pending_ to true (acq_rel) and
/// wakes the backend only if it was false. The loop, woken, exchanges it back to false
/// (acq_rel) before it drains: if a post's exchange came first, the loop's RMW reads it
/// and synchronizes with it, so the drain sees that node (or the push still in flight
/// withholding it, whose own exchange will then find false and write again); if it came
/// after, the post sees false and writes. Either way no post is left without a wake-up.
/// Foreign arms and cancels on a hands_off() registry, and carriers handing a completion
/// over, push their node and wake the same way.
#pragma once

#include <opreg/config.hpp>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cerrno>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <opreg/detail/cache_line.hpp>
#include <opreg/detail/common.hpp>
#include <opreg/detail/poller.hpp>
#include <opreg/detail/timer_heap.hpp>
#include <opreg/inline_function.hpp>
#include <opreg/intrusive_mpsc_queue.hpp>
#include <opreg/object_pool.hpp>
#include <opreg/registry.hpp>
#include <opreg/token.hpp>
#include <opreg/types.hpp>

namespace opreg {

/// The backend's name: "epoll", "io_uring" or "kqueue".
[[nodiscard]] OPREG_API std::string_view to_string(backend b) noexcept;
/// "epoll", "io_uring", "kqueue" -> the backend; false for anything else.
[[nodiscard]] OPREG_API bool parse_backend(std::string_view name, backend& out) noexcept;

/// How a reactor is opened and sized.
struct reactor_options {
    backend which = native_backend();  ///< the kernel interface to use
    /// When `which` is unavailable here (io_uring refused by the kernel, a backend this build
    /// does not have), fall back to native_backend() and say so in note(); false: the
    /// constructor throws instead.
    bool fall_back = true;
    std::size_t max_events = 256;  ///< kernel events taken per wait
    std::size_t max_posts = 4096;  ///< posts queued at once; post() returns false beyond
    /// Ops armed from other threads (on a registry that does not hand off) pending at once:
    /// each holds a carrier that brings its callback to the reactor thread. arm() from
    /// another thread reports errc::full beyond.
    std::size_t max_foreign_ops = 4096;
    /// io_uring: completion ring entries (a power of 2, at least 2); see detail::poller_config.
    unsigned io_uring_cq_entries = detail::poller_config{}.io_uring_cq_entries;
    /// io_uring, completion mode (recv/send): the provided buffers multishot recvs fill, and
    /// SINGLE_ISSUER/DEFER_TASKRUN (detail::poller_config says what each asks of the caller).
    unsigned io_uring_buffers = detail::poller_config{}.io_uring_buffers;
    /// io_uring, completion mode: the size of each provided buffer (one recv brings at most one).
    unsigned io_uring_buffer_bytes = detail::poller_config{}.io_uring_buffer_bytes;
    /// Single issuer is also the ring to embed in another loop (native_handle()): the
    /// ordinary ring runs completions as task work, which cuts the host's waits short (EINTR).
    bool io_uring_single_issuer = false;
    /// Completion mode: bytes an fd's recv may bring while no recv op is pending on it (copied
    /// out of the provided buffers, which go back at once). Past it the fd's recv is cancelled
    /// until the next recv op: the rest waits in the kernel's socket buffer, and TCP's window
    /// stops the peer. The kernel may have filled provided buffers for that fd before the
    /// cancel reaches it, and those bytes are kept too: an fd holds at most recv_hold_limit +
    /// (io_uring_buffers + 1) * io_uring_buffer_bytes (the whole ring only when one fd's peer
    /// filled it between two loop turns). A tight per-fd bound takes a smaller ring.
    std::size_t recv_hold_limit = 64 * 1024;
};

/// What the callback of a completion-mode op (reactor::recv, reactor::send) receives.
struct io_completion {
    /// The registry's record: the op's token, fd and direction (read: recv, write: send), and
    /// how it ended.
    completion op;
    /// op.result == ready: a recv's byte count (data.size()), 0 at end of stream, or -errno; a
    /// send's bytes taken (all of them unless the socket filled up) or -errno. Otherwise
    /// (cancelled, timed_out, closed, error): 0, or what the kernel had done when a send's
    /// cancellation reached it (bytes sent, or -ECANCELED).
    std::int32_t res = 0;
    /// A recv's bytes, valid until the callback returns.
    std::string_view data;
};

/// Inline storage of a completion-mode callback: the same as an op's (types.hpp).
using io_callback = inline_function<void(const io_completion&), callback_capacity>;

/// What a reactor has done since it was built.
struct reactor_stats {
    std::uint64_t waits = 0;    ///< kernel waits
    std::uint64_t events = 0;   ///< kernel events dispatched to the registry
    std::uint64_t posts = 0;    ///< tasks run from post()
    std::uint64_t wakeups = 0;  ///< backend wake-ups (coalesced)
    std::uint64_t timers_fired = 0;  ///< timers and deadlines that ran
    std::uint64_t timers_pending = 0;  ///< timers in the heap now (deadlines included)
    std::uint64_t handed_over = 0;     ///< completions a carrier brought from another thread
};

namespace detail {

OPREG_API void close_fd(int fd) noexcept;  // src/reactor_support.cpp

static_assert(fd_token::from_u64(wake_token).slot() >= token_reserved_slot);

// Opens the backend asked for, falling back to native_backend() when allowed; `note` says why the one
// asked for is not the one returned (or, on an error, why none could be opened).
OPREG_API result<std::unique_ptr<poller>> open_poller(backend which, bool fall_back,
                                                      const poller_config& cfg, std::string& note);
// The same for a constructor: throws std::system_error, with the OS error, instead.
OPREG_API std::unique_ptr<poller> open_poller_or_throw(backend which, bool fall_back,
                                                       const poller_config& cfg,
                                                       std::string& note);

}  // namespace detail

/// Inline storage of a posted task or timer: by default 48 bytes of captures, so that a post
/// node (hook and task) is one 64-byte line, as an op slot is (callback_capacity in
/// types.hpp). OPREG_TASK_CAPACITY (config.hpp) changes it.
inline constexpr std::size_t task_capacity = OPREG_TASK_CAPACITY;

/// An event loop over one backend (epoll, io_uring, kqueue) that ends the ops of a registry R;
/// every callback runs on its thread.
template <registry R>
class reactor {
public:
    /// A posted task or a timer's work.
    using task = inline_function<void(), task_capacity>;
    /// Names a timer, to cancel it.
    using timer_id = typename detail::timer_heap<task>::id;
    /// The clock of timers and deadlines.
    using clock = std::chrono::steady_clock;

    /// Opens the backend opt.which names. Throws std::system_error, carrying the OS error,
    /// when no backend can be opened (ERRORS in registry.hpp).
    explicit reactor(R& reg, reactor_options opt = {}) : reactor(reg, open(opt), opt) {}

    /// Runs on a poller the caller opened (detail::open_poller), or one that wraps it to
    /// observe or change what reaches the kernel (opt.which and fall_back are not used).
    reactor(R& reg, std::unique_ptr<detail::poller> poller, reactor_options opt = {})
        : reactor(reg, opened{std::move(poller), {}}, opt) {}

    reactor(const reactor&) = delete;
    reactor& operator=(const reactor&) = delete;

    // Posted tasks not yet run, and completions carried over but not yet run, are destroyed
    // without running. (Ops armed from other threads must have ended: see THREADS.)
    // Completion-mode ops still pending end in the registry (cancelled) with their callbacks
    // destroyed without running, and the kernel gives their requests up (a send's bytes are
    // the caller's again) before the destructor returns: the registry outlives the reactor
    // with none of them pending. To end them, a hand-off registry's queue is applied here:
    // callbacks of readiness ops queued in it (a cancel from another thread, a latched arm)
    // may run from the destructor, so destroy the reactor before what they touch.
    ~reactor() {
        abandon_io();
        poller_.reset();
        while (post_node* n = queue_.try_pop()) posts_.destroy(n);
        while (carrier_node* n = handed_.try_pop()) carriers_.destroy(n);
        assert(carriers_.size_approx() == 0 &&
               "reactor destroyed with ops armed from other "
               "threads still pending");
    }

    /// The backend in use (see note() when it is not the one asked for).
    [[nodiscard]] backend active_backend() const noexcept { return poller_->kind(); }
    /// Why the backend asked for is not the one in use; empty when it is.
    [[nodiscard]] const std::string& note() const noexcept { return note_; }
    /// Whether every event that finds the peer's FIN says so (completion::hangup): only then
    /// may a reader stop at a short read instead of reading on to EAGAIN (detail/poller.hpp).
    [[nodiscard]] bool hangup_reported() const noexcept { return poller_->reports_hangup(); }
    /// The registry this reactor ends ops of.
    [[nodiscard]] R& registry() noexcept { return reg_; }

    /// EMBEDDING, as libuv's uv_backend_fd / uv_backend_timeout allow: another event loop (Asio,
    /// libuv, a GUI toolkit's) drives the reactor by waiting until native_handle() is readable
    /// or next_timeout_ms() has passed, then calling run_once(0) on its own thread, which is
    /// then the reactor thread. Wake-ups from post(), stop() and foreign arms make the handle
    /// readable too.
    ///
    ///   for (;;) {
    ///       poll({loop.native_handle(), POLLIN}, loop.next_timeout_ms());
    ///       loop.run_once(0);
    ///   }
    ///
    /// The handle is an epoll-like fd: readable while something is pending, but a loop that
    /// waits for an edge on it (Asio's stream_descriptor::async_wait, libuv's uv_poll) sees only
    /// changes; call run_once(0) until next_timeout_ms() is not 0 before each such wait.
    ///
    /// The backend's fd (epoll, kqueue, the io_uring ring; a single-issuer ring's: an eventfd
    /// the ring signals, since its own fd stays quiet while deferred work waits); -1 when it
    /// has none (kqueue through libkqueue on Linux: its fd never polls readable), where only
    /// the deadlines can drive it. io_uring completes ops as task work of the reactor thread,
    /// which cuts the host's own waits short now and then (EINTR: take it as a spurious
    /// wake-up, up to one per echo measured here); a single-issuer ring does not (its work
    /// runs only when the reactor asks): embed that one (tests/reactor_embed_test.cpp prints
    /// wake-ups and EINTR per echo for both).
    /// Its first call belongs to the reactor thread (it may make the handle: a single-issuer
    /// ring's eventfd); the value does not change after.
    [[nodiscard]] int native_handle() const noexcept { return poller_->native_handle(); }
    /// Reactor thread. How long the caller may wait before the next run_once(0): 0 when work
    /// is waiting already, the time to the next timer, or -1 when nothing is scheduled (wait
    /// for the handle). Hands what watch/unwatch queued to the kernel first (io_uring), so
    /// that the wait sees its events.
    [[nodiscard]] int next_timeout_ms() {
        poller_->submit();
        return work_waiting() ? 0 : until_next_timer_ms();
    }

    /// Whether the calling thread is the reactor thread (see THREADS).
    [[nodiscard]] bool on_reactor_thread() const noexcept {
        // relaxed: only ever true for the thread that stored it, which reads its own store.
        return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
    }

    /// Reactor thread. Registers fd with the kernel for its lifetime; returns its token, or
    /// the registry's error, or os_error with the kernel's reason.
    [[nodiscard]] result<fd_token> watch(int fd) {
        if (dying(fd)) return errc::stale;
        result<fd_token> t = reg_.token_of(fd);
        if (!t) return t;
        if (const result<void> w = poller_->watch(fd, t.value().to_u64()); !w) return w.why();
        return t;
    }

    /// Reactor thread. Ends fd's pending ops as closed, drops their deadlines, stops its
    /// events (those already in this batch are stale now) and closes the fd. A callback that
    /// gets outcome::closed must not close the fd again, nor give it work: it is closed (or,
    /// where the ops end inside close(), being closed), and by the time a hand-off registry
    /// runs the callback its number may be a new file's. Where the reactor can tell, it
    /// refuses them as errc::stale, a no-op: close, arm, watch, recv and send of an fd while
    /// its close is in progress (the callbacks that run inside it), and from the callback of a
    /// recv or send that ended closed, whenever that runs.
    errc close(int fd) {
        if (dying(fd)) return errc::stale;
        dying_.push_back(fd);
        struct undying {
            std::vector<int>& v;
            ~undying() { v.pop_back(); }
        } guard{dying_};
        const errc e = reg_.close(fd);
        if (e != errc::ok) return e;
        for (const direction d : {direction::read, direction::write}) drop_deadline(op_slot(fd, d));
        (void)poller_->unwatch(fd);
        close_io(fd);
        detail::close_fd(fd);
        return errc::ok;
    }

    /// Any thread. The registry's arm; the callback runs on the reactor thread (see THREADS).
    [[nodiscard]] result<op_token> arm(int fd, direction d, callback cb) {
        if (on_reactor_thread()) {
            if (dying(fd)) return errc::stale;
            return reg_.arm(fd, d, std::move(cb));
        }
        if (reg_.hands_off()) {
            result<op_token> r = reg_.arm(fd, d, std::move(cb));
            if (r) wake();  // the owner applies it now, not at the next kernel event
            return r;
        }
        if (!cb) return reg_.arm(fd, d, std::move(cb));  // refused as the registry refuses it
        carrier_node* n = carriers_.try_create(std::move(cb));
        if (n == nullptr) return errc::full;
        return reg_.arm(fd, d, carrier{this, n});  // refused: ~carrier frees n
    }

    /// Reactor thread. arm(), then expire_after(op, timeout): the op ends as timed_out if it is
    /// still pending then. An op that ends inside arm (readiness latched) keeps no timer that
    /// matters: its timer finds it gone, and a newer op on its (fd, direction) replaces it.
    /// The completion tells a timeout apart by outcome::timed_out; no sequence numbers needed.
    [[nodiscard]] result<op_token> arm_with_deadline(int fd, direction d, callback cb,
                                                     clock::duration timeout) {
        assert(on_reactor_thread() && "arm_with_deadline belongs to the reactor thread");
        if (dying(fd)) return errc::stale;
        result<op_token> r = reg_.arm(fd, d, std::move(cb));
        if (r) (void)expire_after(r.value(), timeout);
        return r;
    }

    /// COMPLETION MODE (supports_io(): the io_uring backend). The kernel does the I/O and the
    /// op ends with its result: a recv or a send is an op of the registry (read and write
    /// direction of its fd), armed, cancelled, timed out (expire_after) and closed as any op,
    /// ending exactly once; the registry's token is what the op's kernel completion names.
    /// - recv(fd, cb): the next bytes that arrive on fd. The fd's first recv starts a
    ///   multishot recv into the provided buffer ring, which goes on across ops: bytes that
    ///   come while no recv op is pending are kept for the next (up to recv_hold_limit; past
    ///   it the kernel's recv is cancelled until the next recv op, and TCP holds the peer).
    ///   Ends ready with the bytes (io_completion::data), or with res 0 at end of stream, or
    ///   -errno; bytes already kept end it inside recv() (as a latched op ends inside arm).
    ///   A recv the kernel could not be asked for (no SQE, no memory) ends ready with that
    ///   -errno once; the next recv() asks again. No allocation per recv once warm: bytes go
    ///   to a waiting op straight from the provided buffer, and kept bytes live in reused
    ///   buffers (up to 64 of twice io_uring_buffer_bytes kept spare per reactor).
    /// - send(fd, bytes, cb): one send; it ends with what the kernel took (all of it while the
    ///   socket has room, some once it is full: send the rest with another send, as after a
    ///   short write). One send hands the kernel at most max_send_bytes (about 2 GiB, what
    ///   Linux moves in one call); a longer one ends with what it took, as a short write. The bytes
    /// are the caller's until the callback runs, whatever the outcome: a send that is cancelled,
    /// timed out or closed is
    ///   cancelled in the kernel too, and its callback waits for the kernel to give it up.
    /// - close(fd) cancels the fd's requests in the kernel before it closes the fd.
    /// An fd is used either way: watched (readiness: arm) or given recv/send ops, not both.
    /// Reactor thread only (recv, send); cancel() from any thread as for any op. Refused:
    /// errc::os_error with ENOTSUP where the backend has no completion mode (epoll, kqueue),
    /// and the registry's refusals (busy: a recv or send is already pending on fd).
    [[nodiscard]] bool supports_io() const noexcept { return poller_->supports_io(); }
    /// Whether the io_uring ring runs with SINGLE_ISSUER/DEFER_TASKRUN (reactor_options asked,
    /// the kernel agreed).
    [[nodiscard]] bool single_issuer() const noexcept { return poller_->single_issuer(); }

    /// Reactor thread, completion mode: the next bytes of fd, from the kernel's provided buffers,
    /// to `cb` (COMPLETION MODE above).
    [[nodiscard]] result<op_token> recv(int fd, io_callback cb) {
        assert(on_reactor_thread() && "recv belongs to the reactor thread");
        if (!poller_->supports_io()) return os_failure(ENOTSUP);
        if (!cb) return errc::no_callback;
        if (dying(fd)) return errc::stale;
        const result<std::uint32_t> id = stream_of(fd);
        if (!id) return id.why();
        const std::uint32_t sid = id.value();
        io_stream& s = streams_[sid];  // a deque: stays put while callbacks add streams
        if (s.op.valid()) return errc::busy;  // its callback is in s.cb: leave it there
        ++s.busy;
        s.cb = std::move(cb);
        const std::uint64_t ends = s.ends;
        reactor* self = this;
        result<op_token> t = reg_.arm(fd, direction::read,
                                      [self, sid](const completion& c) { self->recv_ended(sid, c); });
        if (!t) {
            s.cb.reset();
        } else if (s.ends == ends) {  // pending (else it ended inside arm, on a latch)
            s.op = t.value();
            const bool started = s.in_kernel || s.end != stream_open || start_recv(sid);
            if (!s.held.empty() || s.end != stream_open)
                end_recv(sid);
            else if (!started)
                end_recv_later(sid);  // not inside recv(): a callback that recvs again would recurse
        }
        --s.busy;
        free_stream_if_done(sid);
        return t;
    }

    /// The most one send() hands the kernel: Linux's limit for one read or write (INT_MAX
    /// rounded down to a page), which an io_completion's 32-bit res can report.
    static constexpr std::size_t max_send_bytes = 0x7FFF'F000;

    /// Reactor thread, completion mode: sends `bytes` (kept alive by the caller until `cb` runs)
    /// and reports what the kernel took (COMPLETION MODE above).
    [[nodiscard]] result<op_token> send(int fd, std::string_view bytes, io_callback cb) {
        assert(on_reactor_thread() && "send belongs to the reactor thread");
        if (!poller_->supports_io()) return os_failure(ENOTSUP);
        if (!cb) return errc::no_callback;
        if (!detail::fd_in_range(fd, reg_.config())) return errc::fd_out_of_range;
        if (dying(fd)) return errc::stale;
        // One send per fd at a time, refused here for every strategy (a hand-off registry
        // would refuse it only on its owner, after the bytes went to the kernel).
        if (io_fd_of(fd).send != 0) return errc::busy;
        const std::uint32_t id = new_send();
        io_send& x = sends_[id];
        x.cb = std::move(cb);
        x.fd = fd;
        reactor* self = this;
        result<op_token> t = reg_.arm(fd, direction::write,
                                      [self, id](const completion& c) { self->send_ended(id, c); });
        if (!t) {
            free_send(id);
            return t;
        }
        if (x.ended) {  // ended inside arm (a latch the fd should not have): nothing was sent
            deliver_send(id);
            return t;
        }
        x.op = t.value();
        io_fds_[static_cast<std::size_t>(fd)].send = id + 1;
        const std::size_t len = std::min(bytes.size(), max_send_bytes);
        if (const result<void> r = poller_->send(fd, bytes.data(), len, id); !r) {
            x.res = -r.os_error();
            end_ready(x.op);  // ends with the error
            return t;
        }
        x.in_kernel = true;
        ++io_fds_[static_cast<std::size_t>(fd)].sends;
        return t;
    }

    /// Any thread. On the reactor thread, the registry's cancel. From another thread, handed
    /// to the reactor thread: requested, or full when there is no room to hand it over.
    cancel_status cancel(op_token t, outcome why = outcome::cancelled) {
        if (on_reactor_thread()) return reg_.cancel(t, why);
        if (reg_.hands_off()) {
            const cancel_status s = reg_.cancel(t, why);
            if (s == cancel_status::requested) wake();
            return s;
        }
        R* reg = &reg_;
        return post([reg, t, why] { (void)reg->cancel(t, why); }) ? cancel_status::requested
                                                                  : cancel_status::full;
    }

    /// Reactor thread. Runs fn on the reactor thread after `delay`.
    timer_id after(clock::duration delay, task fn) {
        return timers_.add(clock::now() + delay, std::move(fn));
    }
    /// Reactor thread. true if the timer was pending and will not run.
    bool cancel_timer(timer_id t) { return timers_.cancel(t); }

    /// Reactor thread. Ends op `t` as timed_out if it is still pending after `delay`, and
    /// returns the timer (cancel_timer saves the wait once the op has ended). The op's
    /// (fd, direction) keeps one deadline: this one replaces the deadline of an older op there
    /// (which has ended) or of `t` itself. For an op older than the one whose deadline is
    /// kept (it has ended: a newer op is on its (fd, direction)), nothing is scheduled and an
    /// id that names no timer is returned.
    timer_id expire_after(op_token t, clock::duration delay) {
        const std::uint32_t slot = t.slot();
        if (!t.valid()) return timer_id{};
        if (slot >= deadlines_.size())
            deadlines_.resize(std::max<std::size_t>(slot + 1, deadlines_.size() * 2));
        deadline& dl = deadlines_[slot];
        if (dl.live) {
            if (dl.op != t && !newer(t, dl.op)) return timer_id{};
            timers_.cancel(dl.timer);
        }
        reactor* self = this;
        dl.timer = after(delay, [self, t] { self->expire(t); });
        dl.op = t;
        dl.live = true;
        return dl.timer;
    }

    /// Any thread. Runs fn on the reactor thread; false when max_posts are already queued.
    [[nodiscard]] bool post(task fn) {
        post_node* n = posts_.try_create(std::move(fn));
        if (n == nullptr) return false;
        queue_.push(n);
        wake();
        return true;
    }

    /// Any thread. run() returns after the loop iteration in progress.
    void stop() noexcept {
        stopping_.store(true, std::memory_order_release);  // pairs with run()'s acquire load
        wake();
    }

    /// Loops until stop(); a stop() before run() makes it return at once. The calling thread
    /// becomes the reactor thread.
    void run() {
        while (!stopping_.load(std::memory_order_acquire)) run_once(-1);
        stopping_.store(false, std::memory_order_relaxed);  // only this thread reads it next
    }

    /// Waits up to timeout_ms (-1: until something happens) and handles what came: kernel
    /// events, the registry's handed-over work, due timers, posted tasks, completions carried
    /// over from other threads. Returns how many it handled. The calling thread becomes the
    /// reactor thread.
    std::size_t run_once(int timeout_ms) {
        // relaxed: see on_reactor_thread(); another thread that reads an older value only
        // takes the foreign path, which is correct on every thread.
        owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
        // Work handed to the registry since the last turn (an arm made on this thread outside
        // run_once, which may end at once on a latch) is applied before any wait.
        std::size_t handled = reg_.apply_handed_off();
        int wait_ms = timeout_ms;
        const int due_ms = until_next_timer_ms();
        if (due_ms >= 0 && (wait_ms < 0 || due_ms < wait_ms)) wait_ms = due_ms;
        if (handled != 0 || work_waiting()) wait_ms = 0;

        // A failed wait (the kernel refused it: EBADF, ENOMEM) reports nothing this turn; the
        // timers, posts and hand-offs below still run, and the next turn waits again.
        const std::size_t n = poller_->wait(events_, wait_ms).value_or(0);
        ++stats_.waits;
        for (std::size_t i = 0; i < n; ++i) {
            const detail::poll_event& ev = events_[i];
            if (ev.io != detail::io_kind::none) {  // a completion-mode request's completion
                on_io_event(ev);
                ++stats_.events;
                ++handled;
                continue;
            }
            if (ev.token == detail::wake_token) {  // the backend consumed the wake-up
                // acq_rel: see WAKE-UP ORDERING in the header comment.
                wake_pending_.exchange(false, std::memory_order_acq_rel);
                continue;
            }
            reg_.dispatch(fd_token::from_u64(ev.token), ev.ev);
            ++stats_.events;
            ++handled;
        }
        // A hand-off registry ends what the kernel events asked of it (completion mode's
        // ready ends) before the timers run, as a direct strategy ended them above: a timer
        // that closes an fd meets the same state whatever the strategy.
        if (n != 0) handled += reg_.apply_handed_off();
        handled += run_due_timers();
        handled += run_posts();
        handled += run_handed_over();
        // What other threads, the timers, tasks and callbacks above handed to the registry
        // (an arm or cancel, a timeout's cancel, a re-arm on a latched fd) ends its ops in
        // this turn, not after the next wait; if that applied anything, more may be queued
        // behind it: no sleeping yet.
        const std::size_t late = reg_.apply_handed_off();
        registry_busy_ = late != 0;
        return handled + late;
    }

    /// The counts so far.
    [[nodiscard]] reactor_stats stats() const noexcept {
        reactor_stats s = stats_;
        s.wakeups = wakeups_.load(std::memory_order_relaxed);  // a statistic
        s.timers_pending = timers_.size();
        return s;
    }

private:
    // The longest single wait for a timer: far-off timers (days) fit an int of milliseconds.
    static constexpr int max_wait_ms = 1'000'000;

    // Milliseconds until the next timer is due (0 if it is, at most max_wait_ms); -1: none.
    [[nodiscard]] int until_next_timer_ms() const {
        if (timers_.empty()) return -1;
        const auto ms =
            std::chrono::ceil<std::chrono::milliseconds>(timers_.next_due() - clock::now()).count();
        return ms < 0 ? 0 : ms > max_wait_ms ? max_wait_ms : static_cast<int>(ms);
    }
    // Work a turn would do without waiting: the registry's last apply_handed_off() applied
    // something, or posts or carried completions are queued.
    [[nodiscard]] bool work_waiting() const noexcept {
        return registry_busy_ || !queue_.empty_approx() || !handed_.empty_approx();
    }
    // Whether fd may be given no work and no second close (reactor thread): its close is in
    // progress, a callback of a recv or send that ended closed is running for it, or the
    // reactor is being destroyed. A few entries at most (closes nested in callbacks).
    [[nodiscard]] bool dying(int fd) const noexcept {
        if (abandoning_) return true;
        for (const int d : dying_)
            if (d == fd) return true;
        return false;
    }
    // Runs a completion-mode callback; while one that ended closed runs, its fd is dying.
    template <class Callback>
    void run_io_callback(Callback& cb, const io_completion& x, int fd) {
        if (x.op.result != outcome::closed) {
            cb(x);
            return;
        }
        dying_.push_back(fd);
        cb(x);
        dying_.pop_back();  // callbacks must not throw (see CALLBACKS)
    }

    // The destructor's: a hand-off registry applies what is queued (the cancels of the
    // completion-mode ops among it); bounded, so that other threads that never stop pushing
    // cannot hold it.
    void apply_now() {
        if (!reg_.hands_off()) return;
        for (int i = 0; i < apply_now_rounds && reg_.apply_handed_off() != 0; ++i) {
        }
    }
    static constexpr int apply_now_rounds = 64;

    // A timeout that finds the hand-off full applies it to make room this many times in its turn
    // before it tries again next turn: enough to drain a full queue that only this thread
    // fills, bounded so that producers that never stop cannot hold the loop.
    static constexpr int expire_tries = 4;

    // A poller and the note that says why it is not the backend asked for.
    struct opened {
        std::unique_ptr<detail::poller> poller;
        std::string note;
    };
    static opened open(const reactor_options& opt) {
        opened o;
        o.poller = detail::open_poller_or_throw(
            opt.which, opt.fall_back,
            detail::poller_config{.io_uring_cq_entries = opt.io_uring_cq_entries,
                                  .io_uring_buffers = opt.io_uring_buffers,
                                  .io_uring_buffer_bytes = opt.io_uring_buffer_bytes,
                                  .io_uring_single_issuer = opt.io_uring_single_issuer},
            o.note);
        return o;
    }

    reactor(R& reg, opened o, reactor_options opt)
        : reg_{reg},
          opt_{opt},
          note_{std::move(o.note)},
          poller_{std::move(o.poller)},
          events_(opt.max_events),
          posts_{opt.max_posts},
          carriers_{opt.max_foreign_ops},
          owner_{std::this_thread::get_id()} {
        assert(poller_ != nullptr);
        dying_.reserve(8);  // closes nested in callbacks: no allocation below this depth
    }

    struct post_node {
        explicit post_node(task&& f) noexcept : fn{std::move(f)} {}
        mpsc_hook hook;
        task fn;
    };
    static_assert(sizeof(post_node) == detail::cache_line || task_capacity != 48,
                  "a post node is one line at the default capacity");

    // The callback of an op armed from another thread, and its completion once it ended.
    struct carrier_node {
        explicit carrier_node(callback&& c) noexcept : cb{std::move(c)} {}
        mpsc_hook hook;
        callback cb;
        completion done{};
    };

    // What the registry holds for an op armed from another thread: it owns the node until
    // the op ends, then hands the completion to the reactor thread (or runs the callback at
    // once when it already is there). Destroyed without running (the arm was refused, or the
    // registry went away): the node, and the user's callback in it, are destroyed.
    class carrier {
    public:
        carrier(reactor* loop, carrier_node* n) noexcept : loop_{loop}, node_{n} {}
        carrier(carrier&& o) noexcept : loop_{o.loop_}, node_{std::exchange(o.node_, nullptr)} {}
        carrier& operator=(carrier&&) = delete;
        ~carrier() {
            if (node_ != nullptr) loop_->carriers_.destroy(node_);
        }
        void operator()(const completion& c) { loop_->hand_over(std::exchange(node_, nullptr), c); }

    private:
        reactor* loop_;
        carrier_node* node_;
    };

    // The (fd, direction)'s deadline timer, and the op it is for.
    struct deadline {
        timer_id timer{};
        op_token op{};
        bool live = false;
    };

    // Is `a` issued after `b` on the same slot? Generations grow by one per op, modulo the
    // token's width: serial-number arithmetic, sound while fewer than 2^37 ops separate them.
    [[nodiscard]] static bool newer(op_token a, op_token b) noexcept {
        const std::uint64_t d = (a.generation() - b.generation()) & token_generation_mask;
        return d != 0 && d < (token_generation_mask >> 1) + 1;
    }

    void expire(op_token t) {
        // The timer fired: the slot has no deadline any more (unless a newer op's replaced
        // this one, which then stays).
        if (deadlines_[t.slot()].live && deadlines_[t.slot()].op == t)
            deadlines_[t.slot()].live = false;
        for (int tries = 0; tries < expire_tries; ++tries) {
            if (reg_.cancel(t, outcome::timed_out) != cancel_status::full) return;
            // The hand-off is full: the owner (this thread) makes room, then tries again.
            if (reg_.apply_handed_off() == 0) break;
        }
        // Still no room (other threads keep it full): again next turn, as the slot's
        // deadline unless a newer op has one by now.
        reactor* self = this;
        const timer_id again = after(clock::duration::zero(), [self, t] { self->expire(t); });
        deadline& dl = deadlines_[t.slot()];  // after the callbacks above: may have moved
        if (!dl.live) {
            dl.timer = again;
            dl.op = t;
            dl.live = true;
        }
    }

    void drop_deadline(std::uint32_t slot) {
        if (slot >= deadlines_.size() || !deadlines_[slot].live) return;
        timers_.cancel(deadlines_[slot].timer);
        deadlines_[slot].live = false;
    }

    void hand_over(carrier_node* n, const completion& c) noexcept {
        if (on_reactor_thread()) {
            run_carried(n, c);
            return;
        }
        n->done = c;
        handed_.push(n);
        wake();
    }

    // Reactor thread: frees the carrier's node, then runs the callback it carried.
    void run_carried(carrier_node* n, const completion& c) noexcept {
        callback cb = std::move(n->cb);
        carriers_.destroy(n);
        detail::invoke(cb, c);
    }

    void wake() noexcept {
        // acq_rel: see WAKE-UP ORDERING in the header comment.
        if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
            wakeups_.fetch_add(1, std::memory_order_relaxed);  // a statistic
            poller_->wake();
        }
    }

    std::size_t run_due_timers() {
        if (timers_.empty()) return 0;
        std::size_t n = 0;
        const auto now = clock::now();
        task fn;
        while (timers_.pop_due(now, fn)) {
            run_task(fn);
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
            run_task(fn);
            ++n;
        }
        stats_.posts += n;
        return n;
    }

    // Completions carriers brought from other threads; as many as there are carriers, at most.
    std::size_t run_handed_over() {
        std::size_t n = 0;
        while (n < opt_.max_foreign_ops) {
            carrier_node* node = handed_.try_pop();
            if (node == nullptr) break;
            const completion c = node->done;  // a copy: run_carried frees the node first
            run_carried(node, c);
            ++n;
        }
        stats_.handed_over += n;
        return n;
    }

    // Tasks and timers must not throw: one that does ends the program here.
    static void run_task(task& fn) noexcept { fn(); }

    // ---- Completion mode ------------------------------------------------------------------
    // Reactor thread only. An fd's recv stream and every send live in records named by a
    // 32-bit id, which the kernel request carries (the backend tags it); the registry op's
    // callback is a trampoline naming the record, and the record holds the user's callback.
    // Records are freed when both the op has ended and the kernel has given the request up,
    // so a late completion always finds its own record, never a newer one's.
    static constexpr std::int32_t stream_open = 1;
    // Emptied held buffers kept for reuse (so that bytes which arrive before their recv cost
    // no allocation once warm): at most this many, each of at most twice a provided buffer.
    static constexpr std::size_t spare_hold_count = 64;
    // What a std::string holds without an allocation (15 bytes in libstdc++, not its size):
    // a string of more capacity owns a buffer worth keeping.
    static inline const std::size_t inline_capacity = std::string{}.capacity();

    struct io_stream {
        io_callback cb;           // the pending recv op's
        op_token op{};            // the pending recv op; invalid when none
        std::string held;         // bytes that came while no recv op could take them
        std::string_view direct;  // bytes handed straight from a provided buffer to the op
        std::uint64_t ends = 0;   // recv ops ended so far (tells an end inside arm apart)
        int fd = -1;
        int busy = 0;             // calls on this stream in progress: not freed under them
        std::int32_t end = stream_open;  // 0: end of stream, -errno: failed; after the held bytes
        std::int32_t fail = 0;    // -errno: its recv could not be (re)started; the op's, once
        bool in_kernel = false;   // the multishot recv is armed (its last CQE has not come)
        bool closing = false;     // the fd was closed: freed once nothing refers to it
        bool ending = false;      // the op's ready end is requested (a hand-off ends it later)
        bool pausing = false;     // its recv is being cancelled for holding too much
    };
    struct io_send {
        io_callback cb;
        op_token op{};
        int fd = -1;
        std::int32_t res = 0;
        bool in_kernel = false;  // the kernel holds the bytes
        bool ended = false;      // the op ended (its callback waits for the kernel when in_kernel)
        completion how{};        // how it ended
    };
    struct io_fd {
        std::uint32_t stream = 0;  // its stream's id + 1; 0: none
        std::uint32_t send = 0;    // its pending send op's id + 1; 0: none
        std::uint32_t sends = 0;   // sends the kernel holds on this fd number
    };

    io_fd& io_fd_of(int fd) {
        const auto i = static_cast<std::size_t>(fd);
        if (i >= io_fds_.size())
            io_fds_.resize(std::max({i + 1, io_fds_.size() * 2, std::size_t{64}}));
        return io_fds_[i];
    }

    result<std::uint32_t> stream_of(int fd) {
        if (!detail::fd_in_range(fd, reg_.config())) return errc::fd_out_of_range;
        io_fd& f = io_fd_of(fd);
        if (f.stream != 0) return f.stream - 1;
        std::uint32_t id;
        if (!free_streams_.empty()) {
            id = free_streams_.back();
            free_streams_.pop_back();
        } else {
            id = static_cast<std::uint32_t>(streams_.size());
            streams_.emplace_back();
        }
        streams_[id].fd = fd;
        f.stream = id + 1;
        return id;
    }

    // A closed fd's stream goes once no op, kernel request or call in progress refers to it.
    void free_stream_if_done(std::uint32_t id) {
        io_stream& s = streams_[id];
        if (!s.closing || s.in_kernel || s.op.valid() || s.busy != 0) return;
        io_stream fresh;
        std::swap(s, fresh);  // not s = {}: a string assigned an empty one keeps its buffer
        free_streams_.push_back(id);
    }

    std::uint32_t new_send() {
        if (free_sends_.empty()) {
            sends_.emplace_back();
            return static_cast<std::uint32_t>(sends_.size() - 1);
        }
        const std::uint32_t id = free_sends_.back();
        free_sends_.pop_back();
        return id;
    }
    void free_send(std::uint32_t id) {
        sends_[id] = io_send{};
        free_sends_.push_back(id);
    }

    // false when the kernel request could not be made (no SQE, no memory): the pending op,
    // if any, ends with that error; the stream stays open and the next recv() tries again.
    bool start_recv(std::uint32_t id) {
        io_stream& s = streams_[id];
        if (const result<void> r = poller_->recv_multishot(s.fd, id); !r) {
            s.fail = -r.os_error();
            return false;
        }
        s.fail = 0;
        s.in_kernel = true;
        return true;
    }

    // Held bytes live in a string taken from the spares, given back once delivered.
    void hold(io_stream& s, std::string_view bytes) {
        if (s.held.empty() && s.held.capacity() <= inline_capacity && !spare_holds_.empty()) {
            s.held.swap(spare_holds_.back());
            spare_holds_.pop_back();
        }
        s.held.append(bytes);
    }
    void give_back_hold(std::string& h) noexcept {
        if (h.capacity() <= inline_capacity) return;  // inline: nothing to keep
        if (h.capacity() > 2 * std::size_t{opt_.io_uring_buffer_bytes} ||
            spare_holds_.size() >= spare_hold_count) {
            std::string{}.swap(h);  // its memory goes now
            return;
        }
        h.clear();
        if (spare_holds_.capacity() == 0) {
            try {
                spare_holds_.reserve(spare_hold_count);
            } catch (...) {
                std::string{}.swap(h);
                return;
            }
        }
        spare_holds_.push_back(std::move(h));  // within the reserved capacity: no throw
        std::string{}.swap(h);
    }

    // Ends op t as ready: at once, or handed to a hand-off registry's owner (this thread, this
    // turn). A hand-off with no room is applied to make room, and tried again next turn at
    // the latest (as a timeout is), so a kernel completion is never lost.
    void end_ready(op_token t) {
        for (int tries = 0; tries < expire_tries; ++tries) {
            if (reg_.cancel(t, outcome::ready) != cancel_status::full) return;
            if (reg_.apply_handed_off() == 0) break;
        }
        reactor* self = this;
        (void)after(clock::duration::zero(), [self, t] { self->end_ready(t); });
    }
    // The stream's pending op, once.
    void end_recv(std::uint32_t id) {
        io_stream& s = streams_[id];
        if (s.ending) return;
        s.ending = true;
        end_ready(s.op);
    }
    // The same from the next turn: for a failed start, which a callback that recvs again
    // would otherwise meet again inside its own recv(), without end.
    void end_recv_later(std::uint32_t id) {
        io_stream& s = streams_[id];
        if (s.ending) return;
        s.ending = true;
        reactor* self = this;
        (void)after(clock::duration::zero(), [self, t = s.op] { self->end_ready(t); });
    }

    // The destructor's: every completion-mode op still pending ends (cancelled) without its
    // callback, every kernel request is cancelled, and the kernel's last word on each is
    // awaited (bounded), so that no request outlives the reactor with the caller's memory.
    void abandon_io() noexcept {
        if (streams_.empty() && sends_.empty()) return;
        abandoning_ = true;
        bool cancelled_all = true;
        for (std::size_t fd = 0; fd < io_fds_.size(); ++fd) {
            const io_fd& f = io_fds_[fd];
            if (f.sends != 0 || (f.stream != 0 && streams_[f.stream - 1].in_kernel))
                cancelled_all = poller_->cancel_fd(static_cast<int>(fd)).ok() && cancelled_all;
        }
        for (io_stream& s : streams_) {
            s.closing = true;
            if (s.op.valid()) end_now(s.op);
        }
        for (io_send& x : sends_)
            if (x.op.valid() && !x.ended) end_now(x.op);
        apply_now();
        const auto give_up = clock::now() + std::chrono::seconds(2);
        while (cancelled_all && io_in_kernel() && clock::now() < give_up) {
            const result<std::size_t> n = poller_->wait(events_, 10);
            if (!n) break;  // a ring this thread may not use (single issuer): it exits anyway
            for (std::size_t i = 0; i < n.value(); ++i)
                if (events_[i].io != detail::io_kind::none) on_io_event(events_[i]);
        }
    }
    // Ends op t as cancelled now (a full hand-off is applied to make room).
    void end_now(op_token t) noexcept {
        for (int tries = 0; tries < expire_tries; ++tries) {
            if (reg_.cancel(t) != cancel_status::full) return;
            if (reg_.apply_handed_off() == 0) return;
        }
    }
    [[nodiscard]] bool io_in_kernel() const noexcept {
        for (const io_stream& s : streams_)
            if (s.in_kernel) return true;
        for (const io_send& x : sends_)
            if (x.in_kernel) return true;
        return false;
    }

    // The fd is being closed: its requests are cancelled in the kernel before the fd goes.
    void close_io(int fd) {
        if (fd < 0 || static_cast<std::size_t>(fd) >= io_fds_.size()) return;
        io_fd& f = io_fds_[static_cast<std::size_t>(fd)];
        const bool stream_in_kernel = f.stream != 0 && streams_[f.stream - 1].in_kernel;
        if (stream_in_kernel || f.sends != 0) (void)poller_->cancel_fd(fd);
        f.send = 0;  // a pending send ends as closed, now or when a hand-off is applied
        if (f.stream != 0) {
            const std::uint32_t id = f.stream - 1;
            f.stream = 0;
            streams_[id].closing = true;
            give_back_hold(streams_[id].held);
            free_stream_if_done(id);
        }
    }

    void on_io_event(const detail::poll_event& ev) {
        const auto id = static_cast<std::uint32_t>(ev.token);
        if (ev.io == detail::io_kind::send)
            send_completed(id, ev.res);
        else
            recv_completed(id, ev);
    }

    void recv_completed(std::uint32_t id, const detail::poll_event& ev) {
        io_stream& s = streams_[id];
        ++s.busy;
        if (!ev.more) {
            s.in_kernel = false;
            s.pausing = false;
        }
        if (ev.has_buffer) {
            if (ev.res > 0 && !s.closing) {
                const std::string_view bytes(poller_->buffer_data(ev.buffer),
                                             static_cast<std::size_t>(ev.res));
                // The usual case: an op waits and the registry ends it here, on this thread:
                // the bytes go to its callback straight from the kernel's buffer. Otherwise
                // (bytes held already, no op, an owner that ends it later) they are copied.
                if (s.op.valid() && !s.ending && s.held.empty() && !reg_.hands_off()) {
                    s.direct = bytes;
                    end_recv(id);
                    if (!s.direct.empty()) hold(s, bytes);  // not taken after all
                    s.direct = {};
                } else {
                    hold(s, bytes);
                }
            }
            poller_->release_buffer(ev.buffer);
        }
        if (s.closing) {
            // Nothing more for anyone.
        } else if (!ev.more) {
            if (ev.res == 0) {
                s.end = 0;  // end of stream
            } else if (ev.res > 0 || ev.res == -ENOBUFS || ev.res == -ECANCELED) {
                // Ended by the kernel with its last bytes, out of buffers (they are back by
                // the next submission), or cancelled for holding too much: go on when wanted,
                // unless a callback above has already started it again.
                if (!s.in_kernel && s.end == stream_open &&
                    (s.op.valid() || s.held.size() < opt_.recv_hold_limit))
                    (void)start_recv(id);
            } else {
                s.end = ev.res;
            }
        } else if (!s.op.valid() && s.held.size() >= opt_.recv_hold_limit && !s.pausing) {
            // The rest waits in the kernel. A cancel that cannot be made now is tried again at
            // the stream's next completion.
            s.pausing = poller_->cancel_io(detail::io_kind::recv, id).ok();
        }
        if (!s.closing && s.op.valid() &&
            (!s.held.empty() || s.end != stream_open || s.fail != 0))
            end_recv(id);
        --s.busy;
        free_stream_if_done(id);
    }

    // The recv op ended (the registry's callback).
    void recv_ended(std::uint32_t id, const completion& c) {
        io_stream& s = streams_[id];
        ++s.busy;
        ++s.ends;
        s.op = op_token{};
        s.ending = false;
        if (abandoning_) {  // the reactor is going: the callback goes without running
            s.cb.reset();
            --s.busy;
            return;
        }
        io_completion x{c, 0, {}};
        // What the op takes leaves the stream before its callback runs: a recv() the callback
        // makes waits for new bytes.
        std::string taken;
        if (c.result == outcome::ready) {
            if (!s.direct.empty()) {
                x.data = std::exchange(s.direct, std::string_view{});
            } else if (!s.held.empty()) {
                taken.swap(s.held);
                x.data = taken;
            }
            x.res = !x.data.empty()      ? static_cast<std::int32_t>(x.data.size())
                    : s.fail != 0        ? std::exchange(s.fail, 0)
                    : s.end == stream_open ? -EAGAIN  // a spurious ready (a latch): recv again
                                           : s.end;
        }
        io_callback cb = std::move(s.cb);
        run_io_callback(cb, x, s.fd);
        give_back_hold(taken);
        // Stopped for holding too much, and the callback wants more.
        if (!s.closing && !s.in_kernel && s.end == stream_open && s.op.valid() && s.held.empty() &&
            !s.ending && !start_recv(id))
            end_recv_later(id);
        --s.busy;
        free_stream_if_done(id);
    }

    void send_completed(std::uint32_t id, std::int32_t res) {
        io_send& x = sends_[id];
        x.in_kernel = false;
        --io_fds_[static_cast<std::size_t>(x.fd)].sends;
        x.res = res;
        if (!x.ended) {
            end_ready(x.op);  // ends it here, or in this turn's hand-off
            return;
        }
        // It ended first (cancelled, timed out, closed): its callback waited for the kernel.
        deliver_send(id);
    }

    // The send op ended (the registry's callback).
    void send_ended(std::uint32_t id, const completion& c) {
        io_send& x = sends_[id];
        x.ended = true;
        x.how = c;
        io_fd& f = io_fds_[static_cast<std::size_t>(x.fd)];
        if (f.send == id + 1) f.send = 0;
        if (abandoning_) {  // the reactor is going: the callback goes without running
            x.cb.reset();
            if (!x.in_kernel) free_send(id);
            return;
        }
        if (x.in_kernel) {
            (void)poller_->cancel_io(detail::io_kind::send, id);  // its callback waits for this
            return;
        }
        if (x.op.valid()) deliver_send(id);  // else it ended inside arm: send() delivers it
    }

    void deliver_send(std::uint32_t id) {
        io_send& x = sends_[id];
        if (abandoning_) {
            free_send(id);
            return;
        }
        const io_completion done{x.how, x.res, {}};
        const int fd = x.fd;
        io_callback cb = std::move(x.cb);
        free_send(id);
        run_io_callback(cb, done, fd);
    }

    R& reg_;
    reactor_options opt_;
    std::string note_;
    std::unique_ptr<detail::poller> poller_;
    std::vector<detail::poll_event> events_;
    object_pool<post_node> posts_;
    intrusive_mpsc_queue<post_node, &post_node::hook> queue_;
    object_pool<carrier_node> carriers_;
    intrusive_mpsc_queue<carrier_node, &carrier_node::hook> handed_;
    detail::timer_heap<task> timers_;
    std::vector<deadline> deadlines_;  // per op slot; reactor thread only
    // Completion mode; reactor thread only. deques: a record stays put while callbacks add more.
    std::deque<io_stream> streams_;
    std::vector<std::uint32_t> free_streams_;
    std::deque<io_send> sends_;
    std::vector<std::uint32_t> free_sends_;
    std::vector<io_fd> io_fds_;  // per fd number
    std::vector<std::string> spare_holds_;  // emptied held buffers, kept for the next hold
    bool abandoning_ = false;  // the destructor ends the ops: their callbacks do not run
    std::vector<int> dying_;  // see dying(); reactor thread only
    bool registry_busy_ = false;       // the last apply_handed_off() applied work: do not sleep
    std::atomic<std::thread::id> owner_;
    alignas(detail::cache_line) std::atomic<bool> wake_pending_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> wakeups_{0};
    reactor_stats stats_;  // reactor thread only
};

}  // namespace opreg
