// SPDX-License-Identifier: Apache-2.0
// What the kqueue build (BSD, macOS, or Linux through libkqueue) takes from its platform,
// in POSIX calls only: its native backend, and an accept whose fd is made non-blocking and
// close-on-exec by fcntl (accept4 and SOCK_NONBLOCK are not POSIX).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <opreg/acceptor.hpp>
#include <opreg/detail/poller.hpp>

namespace opreg {

backend native_backend() noexcept { return backend::kqueue; }

namespace detail {

result<int> accept_nonblocking(int listen_fd) noexcept {
    const int fd = ::accept(listen_fd, nullptr, nullptr);
    if (fd < 0) return os_failure(errno);
    // Between accept and these calls another thread's fork+exec could inherit the fd: the
    // price of plain POSIX (opreg's own programs do not fork).
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
        ::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        const int err = errno;
        ::close(fd);
        return os_failure(err);
    }
    return fd;
}

}  // namespace detail
}  // namespace opreg
