// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/registry.hpp — the contract every pending-operation registry keeps.
///
/// A registry is the table an I/O reactor keeps between "arm a read on fd 7, call me back"
/// and "the kernel says fd 7 is readable". opreg has several strategies behind one concept,
/// so that a reactor can take the strategy as a template parameter (hot path) or choose it
/// at run time by name through any_registry (see any_registry.hpp).
///
/// THE CONTRACT (the conformance suite in tests/ checks every clause for every strategy)
///
/// Tokens. token_of(fd) returns the fd_token naming the fd's current lifetime; the reactor
///   hands it to the kernel once per fd (epoll data.u64, kevent udata, io_uring user_data).
///   arm() returns an op_token naming one operation. A token whose generation no longer matches is
///   stale and resolves to nothing, never to a newer operation or fd lifetime.
///
/// arm(fd, dir, cb)          any thread. Registers one operation waiting for `dir` readiness
///   on fd, with its callback. One pending op per (fd, direction). Reported errors, never a
///   silent drop: fd_out_of_range; no_callback (cb is empty: nullptr, a null function
///   pointer); busy; full (no room for the op); stale (a close of the same fd raced this arm
///   and won). On an error the callback is destroyed without running: the op was never
///   armed. Strategies that hand work to the owner thread (hands_off() true) detect `busy`
///   on the owner: the op then ends there with outcome::error, errc::busy.
///
/// cancel(op, why)           any thread; why is outcome::cancelled, outcome::timed_out or
///   outcome::ready. Ends the op with `why` unless a completion already won. A completion
///   racing a cancel has exactly one winner. Returns done (this call ended it), requested
///   (handed to the owner), stale (nothing pending under that token) or full (could not hand
///   over).
///   outcome::ready is how a completion-mode backend (io_uring: the op token rides in the
///   kernel's completion) ends the op that completion names. It is counted in `completed`,
///   its completion has latched and hangup false, and it wins or loses against dispatch,
///   close and other cancels by the same single-winner rule (a stale token ends nothing).
///   hands_off() strategies hand it to the owner like any cancel (requested); closed wins
///   there too: one that reaches the owner after close(fd) returned ends the op as closed,
///   as a direct strategy's close had ended it.
///
/// dispatch(fd_token, ev)    the owning thread. Delivers kernel readiness: for each direction
///   in ev the pending op ends with outcome::ready (readiness::error ends every pending op on
///   the fd with outcome::error). readiness::hangup in ev is passed on as completion::hangup
///   of the ops it ends as ready (not with error; and a latched ready carries none). An
///   fd_token whose generation is stale is dropped and counted in stale_dropped. Returns the
///   number of ops it ended. Closed wins: dispatch ends an op as ready only while the fd
///   lifetime of the event is current, so when one event ends both directions and the first
///   callback closes the fd, the second op ends as closed (by that close), never as ready
///   after close() returned.
///
/// Readiness is never lost. Readiness for a direction with no pending op is latched (per
///   fd lifetime); the next arm of that direction ends at once with outcome::ready — inside
///   arm(), on the arming thread, or for hands_off() strategies on the owner when it applies
///   the arm. This is what lets a reactor register each fd with the kernel once,
///   edge-triggered: an edge that fires between the user's EAGAIN and its arm is kept.
///   A spurious ready is possible (the readiness was consumed before the arm); a user who
///   gets EAGAIN after it simply arms again.
///
/// close(fd)                 any thread, before the fd number goes back to the kernel
///   (by the system's close). Bumps the fd's generation and ends its pending ops with
///   outcome::closed.
///   Events for the old generation still in the kernel's batch are then stale: dropped and
///   counted, never delivered to an op armed on the reused fd number. Clears the latch.
///
/// apply_handed_off()                    the owning thread. Processes work handed over by other
/// threads
///   (hands_off() strategies; a no-op returning 0 elsewhere). dispatch() applies it first.
///
/// Exactly once. Every op that arm() accepted ends exactly once, with exactly one outcome,
///   and its callback runs exactly once. Callbacks run outside every registry lock and after
///   the op's slot is released, so a callback may arm, cancel or close on the same registry.
///
/// Which thread runs a callback. For hands_off() strategies, always the owner (the thread in
///   apply_handed_off()/dispatch()). For the others, the thread whose call ended the op: dispatch's
///   for ready and error, cancel's for cancelled, timed_out and the ready it passes, close's
///   for closed, and arm's own for an op that ends at once on latched readiness. (Through
///   opreg::reactor every callback runs on the reactor thread, whatever the strategy: see
///   reactor.hpp.)
///
/// Callbacks must not throw. Every strategy runs them from noexcept code, so an exception
///   that leaves a callback ends the program (std::terminate) at once, with no op of the
///   batch silently dropped.
///
/// Destruction. Destroying a registry with ops still pending destroys their callbacks
///   without running them (nothing can end them any more); the owner must have stopped
///   every other thread's use of it first.
///
/// ERRORS: one convention for the whole library.
///   - An operation that can fail returns result<T> (result<void> when there is nothing to
///     return), errc alone where the answer is a status (close), or cancel_status. Refusals
///     are reported, never dropped, and never thrown.
///   - A failed system call is errc::os_error, and the result carries the errno value:
///     result.os_error() (failure{errc::os_error, err}, made by os_failure(err)). errno is
///     never the channel: nothing in opreg leaves its answer there. The reactor's backends
///     (detail/poller.hpp) answer in the same results.
///   - Only constructors throw, since they cannot return a result: a configuration the caller
///     got wrong (registry_config::max_fds, a pool's capacity) is std::invalid_argument or
///     std::length_error; an OS resource a reactor cannot do without (its backend, its
///     eventfd) is std::system_error with the OS error in code(). Callbacks, tasks and timers
///     must not throw (above).
///   - A bug in the caller (value() of an error) aborts with a message, in every build mode.
///
/// Stats. armed == completed + cancelled + closed + timed_out + errors + in_flight, exactly
///   at quiescence; a snapshot taken while other threads work is approximate.
#pragma once

#include <opreg/config.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <opreg/token.hpp>
#include <opreg/types.hpp>

namespace opreg {

/// How a registry is sized; every strategy takes one.
struct registry_config {
    /// fds 0 .. max_fds-1 are accepted; anything else is errc::fd_out_of_range.
    std::uint32_t max_fds = 65536;
    /// Bound on pending ops for strategies that keep op records in bounded storage
    /// (bounded_pending() true); 0 means one per (fd, direction), 2 * max_fds. Strategies
    /// indexed by fd have a place for every (fd, direction) and ignore a smaller bound.
    std::uint32_t max_pending = 0;

    /// The bound on pending ops that max_pending sets (2 * max_fds when 0).
    [[nodiscard]] constexpr std::size_t pending_limit() const noexcept {
        return max_pending != 0 ? max_pending : std::size_t{2} * max_fds;
    }

    /// Where every generation (op and fd) starts, reduced to each strategy's width. 0 in
    /// production; tests of wrap-around start near the top (say ~0 - 2) so that the wrap is
    /// reached at full width in a few operations.
    std::uint64_t first_generation = 0;

    /// Largest max_fds: op slots (fd * 2 + direction) stay below token_reserved_slot, 2^25,
    /// so that every larger slot is free for sentinels (token.hpp).
    static constexpr std::uint32_t max_fds_limit = std::uint32_t{1} << 24;
};

/// A registry's counts: armed == ended() + in_flight at every quiescent point.
struct registry_stats {
    std::uint64_t armed = 0;          ///< arms accepted (a token was returned)
    std::uint64_t completed = 0;      ///< ended with outcome::ready
    std::uint64_t cancelled = 0;      ///< ended with outcome::cancelled
    std::uint64_t closed = 0;         ///< ended with outcome::closed
    std::uint64_t timed_out = 0;      ///< ended with outcome::timed_out
    std::uint64_t errors = 0;         ///< ended with outcome::error
    std::uint64_t stale_dropped = 0;  ///< dispatches whose fd_token was stale
    std::uint64_t failures = 0;       ///< arms refused with an errc
    std::uint64_t in_flight = 0;      ///< armed and not yet ended

    /// Ops that ended, whatever their outcome.
    [[nodiscard]] constexpr std::uint64_t ended() const noexcept {
        return completed + cancelled + closed + timed_out + errors;
    }
    /// Counts compare member by member.
    friend constexpr bool operator==(const registry_stats&, const registry_stats&) = default;
};

/// The index of an op's slot in op tokens: fd * 2 + direction.
[[nodiscard]] constexpr std::uint32_t op_slot(int fd, direction d) noexcept {
    static_assert(std::uint64_t{registry_config::max_fds_limit} * 2 <= token_reserved_slot);
    return static_cast<std::uint32_t>(fd) * 2 + static_cast<std::uint32_t>(d);
}
/// The fd an op token names.
[[nodiscard]] constexpr int op_fd(op_token t) noexcept {
    return static_cast<int>(t.slot() / 2);
}
/// The direction an op token names.
[[nodiscard]] constexpr direction op_direction(op_token t) noexcept {
    return static_cast<direction>(t.slot() & 1);
}

template <class R>
concept registry = requires(R& r, const R& cr, int fd, direction d, callback cb, op_token ot,
                            fd_token ft, readiness ev, outcome why) {
    { cr.name() } -> std::convertible_to<std::string_view>;
    { cr.hands_off() } -> std::same_as<bool>;        // arm/cancel/close queued to the owner
    { cr.bounded_pending() } -> std::same_as<bool>;  // honours registry_config::max_pending
    { cr.config() } -> std::same_as<const registry_config&>;
    { r.token_of(fd) } -> std::same_as<result<fd_token>>;
    { r.arm(fd, d, std::move(cb)) } -> std::same_as<result<op_token>>;
    { r.cancel(ot, why) } -> std::same_as<cancel_status>;
    { r.dispatch(ft, ev) } -> std::same_as<std::size_t>;
    { r.close(fd) } -> std::same_as<errc>;
    { r.apply_handed_off() } -> std::same_as<std::size_t>;
    { cr.stats() } -> std::same_as<registry_stats>;
};

}  // namespace opreg
