// SPDX-License-Identifier: Apache-2.0
// Names of the vocabulary types, for logs, tests and tools.
#include <string>

#include <opreg/types.hpp>

namespace opreg {

std::string_view to_string(direction d) noexcept {
    return d == direction::read ? "read" : "write";
}

std::string_view to_string(outcome o) noexcept {
    switch (o) {
        case outcome::ready: return "ready";
        case outcome::cancelled: return "cancelled";
        case outcome::closed: return "closed";
        case outcome::timed_out: return "timed_out";
        case outcome::error: return "error";
    }
    return "?";
}

std::string_view to_string(errc e) noexcept {
    switch (e) {
        case errc::ok: return "ok";
        case errc::fd_out_of_range: return "fd out of range";
        case errc::busy: return "busy: (fd, direction) already has a pending op";
        case errc::full: return "full: no room for another pending op";
        case errc::stale: return "stale: the fd was closed";
        case errc::os_error: return "a system call failed";
        case errc::no_callback: return "no callback: arm() needs a callable";
    }
    return "?";
}

std::string_view to_string(cancel_status s) noexcept {
    switch (s) {
        case cancel_status::done: return "done";
        case cancel_status::requested: return "requested";
        case cancel_status::stale: return "stale";
        case cancel_status::full: return "full";
    }
    return "?";
}

namespace {

class opreg_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "opreg"; }
    std::string message(int code) const override {
        return std::string(to_string(static_cast<errc>(code)));
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const opreg_category category;
    return category;
}

}  // namespace opreg
