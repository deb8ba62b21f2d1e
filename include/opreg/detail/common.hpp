// SPDX-License-Identifier: Apache-2.0
// opreg/detail/common.hpp — small pieces every strategy shares.
#pragma once

#include <opreg/config.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <opreg/registry.hpp>
#include <opreg/types.hpp>

namespace opreg::detail {

// Which directions a kernel event ends, and with what outcome.
struct delivery {
    bool dir[2] = {false, false};
    outcome result = outcome::ready;
    bool hangup = false;  // passed on to completion::hangup of the ops it ends
};

[[nodiscard]] constexpr delivery plan_delivery(readiness ev) noexcept {
    if (has(ev, readiness::error)) return {{true, true}, outcome::error, false};
    return {{has(ev, readiness::readable), has(ev, readiness::writable)},
            outcome::ready,
            has(ev, readiness::hangup)};
}

// A configuration the caller got wrong, in a constructor: std::invalid_argument, or, in a
// program built without exceptions (-fno-exceptions), the message and abort().
[[noreturn]] inline void bad_config(const char* what) {
#if defined(__cpp_exceptions)
    throw std::invalid_argument(what);
#else
    std::fprintf(stderr, "%s\n", what);
    std::abort();
#endif
}

// Every strategy's constructor checks its config through this.
[[nodiscard]] inline registry_config validated(registry_config cfg) {
    if (cfg.max_fds == 0 || cfg.max_fds > registry_config::max_fds_limit)
        bad_config("opreg: registry_config::max_fds must be 1 .. 2^24");
    return cfg;
}

[[nodiscard]] constexpr bool fd_in_range(int fd, const registry_config& cfg) noexcept {
    return fd >= 0 && static_cast<std::uint32_t>(fd) < cfg.max_fds;
}

// The outcomes cancel(t, why) may end an op with (registry.hpp): cancelled, timed_out, and
// ready, which a completion-mode backend uses to end the op its kernel completion names.
[[nodiscard]] constexpr bool cancel_outcome_valid(outcome why) noexcept {
    return why == outcome::cancelled || why == outcome::timed_out || why == outcome::ready;
}

[[nodiscard]] inline completion make_completion(op_token t, outcome o, errc e = errc::ok,
                                                bool latched = false,
                                                bool hangup = false) noexcept {
    return completion{t, op_fd(t), op_direction(t), o, e, latched, hangup};
}

// Runs an op's callback. noexcept on purpose: callbacks must not throw (registry.hpp), and
// one that does ends the program here, through std::terminate, in every strategy alike,
// rather than unwinding through a registry that has half-ended a batch of ops.
inline void invoke(callback& cb, const completion& c) noexcept {
    cb(c);
}

// The arm-time end of an op that found readiness latched.
[[nodiscard]] inline completion latched_completion(op_token t) noexcept {
    return make_completion(t, outcome::ready, errc::ok, true);
}

}  // namespace opreg::detail
