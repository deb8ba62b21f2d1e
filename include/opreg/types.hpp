// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/types.hpp — the vocabulary every registry shares: directions, readiness, outcomes,
/// error codes, the completion record a callback receives, and result<T>.
#pragma once

#include <opreg/config.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include <opreg/inline_function.hpp>
#include <opreg/token.hpp>

namespace opreg {

/// Which readiness an operation waits for. One pending op per (fd, direction).
enum class direction : std::uint8_t { read = 0, write = 1 };

/// What the kernel reported for an fd, as a bit mask (mapped from EPOLLIN/EPOLLOUT/EPOLLERR,
/// kqueue filters or io_uring poll results by the reactor backend).
enum class readiness : std::uint8_t {
    none = 0,
    readable = 1,
    writable = 2,
    error = 4,   ///< EPOLLERR and the like: every pending op on the fd ends with outcome::error
    hangup = 8,  ///< the peer shut down its sending side or the connection is gone (EPOLLRDHUP,
                 ///< EPOLLHUP, POLLRDHUP, EV_EOF): a read reaches end-of-file once the bytes
                 ///< already queued are read. Comes with readable; ends nothing by itself.
};
/// Both sets of readiness bits.
[[nodiscard]] constexpr readiness operator|(readiness a, readiness b) noexcept {
    return static_cast<readiness>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
/// Whether `set` has every bit of `bit`.
[[nodiscard]] constexpr bool has(readiness set, readiness bit) noexcept {
    return (static_cast<std::uint8_t>(set) & static_cast<std::uint8_t>(bit)) != 0;
}

/// How an armed operation ended. Every armed op ends exactly once, with exactly one of these.
enum class outcome : std::uint8_t {
    ready,      ///< dispatch delivered the readiness it waited for, or a completion-mode
                ///< backend ended the op its kernel completion names (cancel(t, ready))
    cancelled,  ///< cancel() won against any completion
    closed,     ///< its fd was closed (close() bumped the fd's generation)
    timed_out,  ///< cancel(token, outcome::timed_out): its deadline passed first
    error,      ///< the kernel reported an error on the fd, or the owner refused it (errc)
};

/// Errors a registry reports instead of dropping work.
enum class errc : std::uint8_t {
    ok = 0,
    fd_out_of_range,  ///< fd < 0 or fd >= registry_config::max_fds
    busy,             ///< (fd, direction) already has a pending op
    full,             ///< no room for another pending op (or for a hand-off command)
    stale,            ///< a token whose generation no longer matches
    os_error,         ///< a system call failed: result<T>::os_error() is its errno value
    no_callback,      ///< arm() was given an empty callback (nullptr, a null function pointer)
};

/// The direction's name ("read", "write").
[[nodiscard]] OPREG_API std::string_view to_string(direction d) noexcept;
/// The outcome's name ("ready", "cancelled", "closed", "timed_out", "error").
[[nodiscard]] OPREG_API std::string_view to_string(outcome o) noexcept;
/// The error's name ("ok", "fd_out_of_range", "busy", "full", "stale", ...).
[[nodiscard]] OPREG_API std::string_view to_string(errc e) noexcept;

/// errc as a std::error_code: the category's name is "opreg", its messages to_string(errc).
/// An errc::os_error result converts to the system category with its errno value instead
/// (result<void>::error_code()), so the OS reason travels with it.
[[nodiscard]] OPREG_API const std::error_category& error_category() noexcept;
/// The errc as a std::error_code in the opreg category (std::is_error_code_enum is specialised).
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// What a callback receives. Small and trivially copyable: passed by const reference.
struct completion {
    op_token token;  ///< the op that ended
    int fd = -1;  ///< its fd
    direction dir = direction::read;  ///< its direction
    outcome result = outcome::ready;  ///< how it ended
    errc error = errc::ok;  ///< for outcome::error raised by the registry (e.g. busy, seen by
                            /// the owner thread of mpsc_queue); ok for kernel errors
    bool latched = false;   ///< ready at arm: the readiness arrived before the op was armed
    bool hangup = false;    ///< ready, and the event that ended it carried readiness::hangup.
                            // Only an event says so: a latched ready leaves it false, so a
                            // reader that skips its EAGAIN read must not skip after one.
};
static_assert(std::is_trivially_copyable_v<completion>);

/// Inline storage for a completion handler: by default 48 bytes of captures (six pointers)
/// plus the dispatch pointer, so that an op slot of state word + callback is one 64-byte
/// cache line. OPREG_CALLBACK_CAPACITY (a CMake option, recorded in config.hpp) changes it
/// for the library and every program built against it.
inline constexpr std::size_t callback_capacity = OPREG_CALLBACK_CAPACITY;
/// An op's callback: move-only, its captures inline (callback_capacity bytes), never a heap
/// allocation.
using callback = inline_function<void(const completion&), callback_capacity>;
static_assert(sizeof(callback) == callback_capacity + sizeof(void*));

namespace detail {
// result<T>::value() on an error: a bug in the caller, stopped here in every build mode
// rather than handing out a default value (a default op_token would name a live op once).
[[noreturn]] inline void bad_result_access(errc e) noexcept {
    std::fprintf(stderr, "opreg: result<T>::value() called on an error (errc %d)\n",
                 static_cast<int>(e));
    std::abort();
}
}  // namespace detail

/// An error: its errc and, for errc::os_error, the errno value of the system call that
/// failed. Converts to every result<T>.
struct failure {
    errc code = errc::ok;  ///< what failed
    int os_error = 0;  ///< errno, for errc::os_error
};
/// A system call failed with `err` (an errno value).
[[nodiscard]] constexpr failure os_failure(int err) noexcept {
    return {errc::os_error, err};
}

template <class T>
class result;

/// Success, or an error: what an operation with nothing to return reports, and the error half
/// of every result<T>. The one error convention: see ERRORS in registry.hpp.
template <>
class [[nodiscard]] result<void> {
public:
    /// Success.
    constexpr result() noexcept = default;
    /// The error `e`.
    constexpr result(errc e) noexcept : error_{e, 0} {}
    /// The error `f` (an errc and its errno).
    constexpr result(failure f) noexcept : error_{f} {}

    /// Whether this is a success.
    [[nodiscard]] constexpr bool ok() const noexcept { return error_.code == errc::ok; }
    /// ok().
    constexpr explicit operator bool() const noexcept { return ok(); }
    /// errc::ok, or what failed.
    [[nodiscard]] constexpr errc error() const noexcept { return error_.code; }
    /// The errno value for errc::os_error; 0 otherwise.
    [[nodiscard]] constexpr int os_error() const noexcept { return error_.os_error; }
    /// The error whole: its errc and errno, to pass on as it is.
    [[nodiscard]] constexpr failure why() const noexcept { return error_; }
    /// The error as a std::error_code: the system category and errno for errc::os_error, the
    /// opreg category otherwise; a default (no error) code when ok().
    [[nodiscard]] std::error_code error_code() const noexcept {
        if (ok()) return {};
        if (error_.code == errc::os_error) return {error_.os_error, std::system_category()};
        return make_error_code(error_.code);
    }

private:
    failure error_{};
};

/// A value or an error (std::expected is C++23; this is the part of it opreg needs). A
/// result<T> is also a result<void>: its error passes on as it is. value() on an error aborts
/// with a message, in release builds too: check ok() first.
template <class T>
class [[nodiscard]] result
#ifndef OPREG_DOXYGEN  // Doxygen 1.9 takes a base that specialises the class for a cycle
    : public result<void>
#endif
{
public:
    /// A success carrying `value`.
    constexpr result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)
        : value_{std::move(value)} {}
    /// The error `e`.
    constexpr result(errc e) noexcept : result<void>{e} {}
    /// The error `f` (an errc and its errno).
    constexpr result(failure f) noexcept : result<void>{f} {}

    /// The value; aborts on an error.
    [[nodiscard]] constexpr const T& value() const& noexcept {
        if (!ok()) detail::bad_result_access(error());
        return value_;
    }
    /// The value; aborts on an error.
    [[nodiscard]] constexpr T& value() & noexcept {
        if (!ok()) detail::bad_result_access(error());
        return value_;
    }
    /// The value, or `fallback` on an error.
    [[nodiscard]] constexpr T value_or(T fallback) const
        noexcept(std::is_nothrow_copy_constructible_v<T>) {
        return ok() ? value_ : fallback;
    }

private:
    T value_{};
};

/// What cancel() did.
enum class cancel_status : std::uint8_t {
    done,       ///< this call ended the op; its callback has run with the requested outcome
    requested,  ///< handed to the owner thread (mpsc_queue); the op ends there, with the
                ///< requested outcome unless a completion already won
    stale,      ///< no such pending op: it already ended, or the token was never issued
    full,       ///< no room to hand the request over (mpsc_queue); try again after
                ///< apply_handed_off()
};
/// The status's name ("done", "requested", "stale", "full").
[[nodiscard]] OPREG_API std::string_view to_string(cancel_status s) noexcept;

}  // namespace opreg

/// @cond STD_SPECIALISATIONS
template <>
struct std::is_error_code_enum<opreg::errc> : std::true_type {};
/// @endcond
