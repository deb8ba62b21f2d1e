// SPDX-License-Identifier: Apache-2.0
// The wake-up source of the Linux backends: an eventfd, written by wake() on any thread and
// read back to 0 by the backend's wait() before it reports detail::wake_token. Private to
// src/linux/.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include <opreg/types.hpp>

namespace opreg::detail {

class eventfd_wake {
public:
    eventfd_wake() noexcept = default;
    eventfd_wake(const eventfd_wake&) = delete;
    eventfd_wake& operator=(const eventfd_wake&) = delete;
    ~eventfd_wake() {
        if (fd_ >= 0) ::close(fd_);
    }

    [[nodiscard]] result<void> open() noexcept {
        fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd_ < 0) return os_failure(errno);
        return {};
    }
    [[nodiscard]] int fd() const noexcept { return fd_; }

    // Any thread: counter += 1. EAGAIN only when the counter would overflow, that is when a
    // wake-up is pending anyway.
    void signal() const noexcept {
        const std::uint64_t one = 1;
        while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
    // The backend's thread: counter = 0.
    void consume() const noexcept {
        std::uint64_t value;
        while (::read(fd_, &value, sizeof value) < 0 && errno == EINTR) {
        }
    }

private:
    int fd_ = -1;
};

} // namespace opreg::detail
