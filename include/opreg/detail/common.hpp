// opreg/detail/common.hpp — small pieces every strategy shares.
#pragma once

#include <cstdint>

#include <opreg/registry.hpp>
#include <opreg/types.hpp>

namespace opreg::detail {

// Which directions a kernel event ends, and with what outcome.
struct delivery {
    bool dir[2] = {false, false};
    outcome result = outcome::ready;
};

[[nodiscard]] constexpr delivery plan_delivery(readiness ev) noexcept {
    if (has(ev, readiness::error)) return {{true, true}, outcome::error};
    return {{has(ev, readiness::readable), has(ev, readiness::writable)}, outcome::ready};
}

[[nodiscard]] constexpr bool fd_in_range(int fd, const registry_config& cfg) noexcept {
    return fd >= 0 && static_cast<std::uint32_t>(fd) < cfg.max_fds;
}

[[nodiscard]] constexpr bool cancel_outcome_valid(outcome why) noexcept {
    return why == outcome::cancelled || why == outcome::timed_out;
}

[[nodiscard]] inline completion make_completion(op_token t, outcome o,
                                                errc e = errc::ok) noexcept {
    return completion{t, op_fd(t), op_direction(t), o, e};
}

} // namespace opreg::detail
