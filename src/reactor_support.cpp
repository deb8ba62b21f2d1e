// SPDX-License-Identifier: Apache-2.0
// The portable, non-template parts of the reactor: backend names, choosing a backend, the
// acceptor's spare fd. (Platform calls live in src/linux/, src/kqueue/ and src/posix/.)
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>

#include <opreg/acceptor.hpp>
#include <opreg/reactor.hpp>

namespace opreg {

std::string_view to_string(backend b) noexcept {
    switch (b) {
        case backend::epoll: return "epoll";
        case backend::io_uring: return "io_uring";
        case backend::kqueue: return "kqueue";
    }
    return "?";
}

bool parse_backend(std::string_view name, backend& out) noexcept {
    for (const backend b : {backend::epoll, backend::io_uring, backend::kqueue}) {
        if (name == to_string(b)) {
            out = b;
            return true;
        }
    }
    return false;
}

namespace detail {

namespace {

result<std::unique_ptr<poller>> make_poller(backend b, const poller_config& cfg, std::string& why) {
    switch (b) {
        case backend::epoll: return make_epoll_poller(why);
        case backend::io_uring: return make_io_uring_poller(why, cfg);
        case backend::kqueue: return make_kqueue_poller(why);
    }
    return os_failure(EINVAL);
}

}  // namespace

result<std::unique_ptr<poller>> open_poller(backend which, bool fall_back, const poller_config& cfg,
                                            std::string& note) {
    std::string why;
    result<std::unique_ptr<poller>> p = make_poller(which, cfg, why);
    const backend native = native_backend();
    if (p || !fall_back || which == native) {
        if (!p) note = why;
        return p;
    }
    std::string second;
    result<std::unique_ptr<poller>> q = make_poller(native, cfg, second);
    note = q ? why + "; using " + std::string(to_string(native)) : why + "; " + second;
    return q;
}

std::unique_ptr<poller> open_poller_or_throw(backend which, bool fall_back,
                                             const poller_config& cfg, std::string& note) {
    result<std::unique_ptr<poller>> p = open_poller(which, fall_back, cfg, note);
    if (!p) throw std::system_error(p.os_error(), std::generic_category(), "opreg: " + note);
    return std::move(p.value());
}

void close_fd(int fd) noexcept {
    if (fd >= 0) ::close(fd);  // POSIX leaves the fd closed even on EINTR here (Linux)
}

}  // namespace detail
}  // namespace opreg

namespace opreg::detail {

int open_spare_fd() noexcept {
    return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

}  // namespace opreg::detail
