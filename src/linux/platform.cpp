// SPDX-License-Identifier: Apache-2.0
// What the Linux build takes from Linux alone: its native backend and accept4.
#include <sys/socket.h>

#include <cerrno>

#include <opreg/acceptor.hpp>
#include <opreg/detail/poller.hpp>

namespace opreg {

backend native_backend() noexcept { return backend::epoll; }

namespace detail {

result<int> accept_nonblocking(int listen_fd) noexcept {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return os_failure(errno);
    return fd;
}

}  // namespace detail
}  // namespace opreg
