// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/readiness.hpp — what the kernel's readiness reports mean as opreg::readiness, for a
/// loop of one's own (epoll_wait, poll, kevent) that feeds a registry's dispatch(). The
/// reactor's backends map their events through these same functions.
///
/// The rules (types.hpp has the bits):
/// - An error condition ends every pending op on the fd with outcome::error.
/// - Hang-up (the peer's FIN, or the connection gone) is readable and writable, so that the
///   op's own read (0) or write (EPIPE) sees it, and carries readiness::hangup, so that a
///   reader knows not to stop at a short read before end-of-file.
///
///   const readiness r = opreg::readiness_from_epoll(ev.events);
///   reg.dispatch(opreg::fd_token::from_u64(ev.data.u64), r);
#pragma once

#include <opreg/config.hpp>

#include <poll.h>

#include <cstdint>

#include <opreg/types.hpp>

#if __has_include(<sys/epoll.h>)
#include <sys/epoll.h>
#endif
#if __has_include(<sys/event.h>)
#include <sys/event.h>
#endif

namespace opreg {

/// poll(2) revents, and io_uring's poll results (the same bits).
[[nodiscard]] constexpr readiness readiness_from_poll(unsigned revents) noexcept {
    readiness r = readiness::none;
    if (revents & (POLLERR | POLLNVAL)) r = r | readiness::error;
#if defined(POLLRDHUP)
    constexpr unsigned rdhup = POLLRDHUP;
#else
    constexpr unsigned rdhup = 0;
#endif
    if (revents & (POLLIN | rdhup | POLLHUP)) r = r | readiness::readable;
    if (revents & (POLLOUT | POLLHUP)) r = r | readiness::writable;
    if (revents & (rdhup | POLLHUP)) r = r | readiness::hangup;
    return r;
}

#if __has_include(<sys/epoll.h>)
// epoll_event::events. EPOLLERR alone says error (the op's I/O would only report it again).
[[nodiscard]] constexpr readiness readiness_from_epoll(std::uint32_t events) noexcept {
    if (events & EPOLLERR) return readiness::error;
    readiness r = readiness::none;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) r = r | readiness::readable;
    if (events & (EPOLLOUT | EPOLLHUP)) r = r | readiness::writable;
    if (events & (EPOLLRDHUP | EPOLLHUP)) r = r | readiness::hangup;
    return r;
}
#endif

#if __has_include(<sys/event.h>)
// One kevent of EVFILT_READ or EVFILT_WRITE. EV_EOF is hang-up (for sockets, fflags then
// holds the pending error, if any); EV_ERROR is error.
[[nodiscard]] inline readiness readiness_from_kevent(const struct kevent& kev) noexcept {
    readiness r = readiness::none;
    if (kev.filter == EVFILT_READ) r = r | readiness::readable;
    if (kev.filter == EVFILT_WRITE) r = r | readiness::writable;
    if (kev.flags & EV_EOF) {
        r = r | readiness::readable | readiness::writable | readiness::hangup;
        if (kev.fflags != 0) r = r | readiness::error;
    }
    if (kev.flags & EV_ERROR) r = r | readiness::error;
    return r;
}
#endif

}  // namespace opreg
