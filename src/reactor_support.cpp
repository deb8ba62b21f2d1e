// The non-template parts of the reactor: backend names, choosing a backend, the eventfd.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
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
    if (p || !fall_back || which == backend::epoll) {
        if (!p) note = why;
        return p;
    }
    std::string second;
    result<std::unique_ptr<poller>> epoll = make_epoll_poller(second);
    note = epoll ? why + "; using epoll" : why + "; " + second;
    return epoll;
}

std::unique_ptr<poller> open_poller_or_throw(backend which, bool fall_back,
                                             const poller_config& cfg, std::string& note) {
    result<std::unique_ptr<poller>> p = open_poller(which, fall_back, cfg, note);
    if (!p) throw std::system_error(p.os_error(), std::generic_category(), "opreg: " + note);
    return std::move(p.value());
}

result<int> make_wake_fd() noexcept {
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return os_failure(errno);
    return fd;
}

void signal_wake_fd(int fd) noexcept {
    const std::uint64_t one = 1;
    // EAGAIN only when the counter would overflow, i.e. the wake-up is already pending.
    while (::write(fd, &one, sizeof one) < 0 && errno == EINTR) {}
}

void drain_wake_fd(int fd) noexcept {
    std::uint64_t value;
    while (::read(fd, &value, sizeof value) < 0 && errno == EINTR) {}
}

void close_fd(int fd) noexcept {
    if (fd >= 0) ::close(fd);  // POSIX leaves the fd closed even on EINTR here (Linux)
}

}  // namespace detail
}  // namespace opreg

namespace opreg::detail {

result<int> accept_nonblocking(int listen_fd) noexcept {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return os_failure(errno);
    return fd;
}

int open_spare_fd() noexcept {
    return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

}  // namespace opreg::detail
