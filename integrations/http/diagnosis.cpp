// SPDX-License-Identifier: Apache-2.0
#include "diagnosis.hpp"

#include <cerrno>
#include <new>
#include <stdexcept>

namespace opreg::http {

rearming_poller::rearming_poller(std::unique_ptr<detail::poller> inner) : inner_{std::move(inner)} {
    if (inner_ == nullptr) throw std::invalid_argument("rearming_poller: no poller to wrap");
    if (inner_->kind() == backend::io_uring)
        throw std::invalid_argument("rearming_poller: io_uring's poll removal is asynchronous");
}

result<void> rearming_poller::watch(int fd, std::uint64_t token) noexcept {
    if (fd < 0) return os_failure(EBADF);
    try {
        if (std::size_t(fd) >= by_fd_.size()) by_fd_.resize(std::size_t(fd) + 1);
    } catch (const std::bad_alloc&) {
        return os_failure(ENOMEM);
    }
    if (const result<void> w = inner_->watch(fd, token); !w) return w;
    by_fd_[std::size_t(fd)] = {token, true};
    return {};
}

result<void> rearming_poller::unwatch(int fd) noexcept {
    // Forgotten whatever the kernel answers: the fd is about to be closed.
    if (fd >= 0 && std::size_t(fd) < by_fd_.size()) by_fd_[std::size_t(fd)].watched = false;
    return inner_->unwatch(fd);
}

result<void> rearming_poller::reregister(int fd) noexcept {
    if (fd < 0 || std::size_t(fd) >= by_fd_.size() || !by_fd_[std::size_t(fd)].watched)
        return os_failure(ENOENT);
    registration& reg = by_fd_[std::size_t(fd)];
    if (const result<void> u = inner_->unwatch(fd); !u) return u;
    if (const result<void> w = inner_->watch(fd, reg.token); !w) {
        reg.watched = false;
        return w;
    }
    ++reregistrations_;
    return {};
}

result<worker_poller> open_worker_poller(const server_options& opt, std::string& note) {
    // Completion mode's ring is driven by its worker's thread alone: SINGLE_ISSUER and
    // DEFER_TASKRUN where the kernel has them.
    const detail::poller_config cfg{.io_uring_single_issuer = opt.completion};
    result<std::unique_ptr<detail::poller>> opened =
        detail::open_poller(opt.which, /*fall_back=*/true, cfg, note);
    if (!opened) return opened.why();
    worker_poller wp{std::move(opened.value())};
    if (!opt.rearm_per_op) return wp;
    if (wp.poller->kind() == backend::io_uring) {
        note = "--rearm-per-op cannot run on io_uring (a poll removal completes later)";
        return os_failure(ENOTSUP);
    }
    auto wrapper = std::make_unique<rearming_poller>(std::move(wp.poller));
    wp.rearm = wrapper.get();
    wp.poller = std::move(wrapper);
    return wp;
}

}  // namespace opreg::http
