// SPDX-License-Identifier: Apache-2.0
// The epoll backend: edge-triggered, the fd token in epoll_event.data.u64, one epoll_ctl
// per fd lifetime (EPOLL_CTL_ADD in watch, EPOLL_CTL_DEL in unwatch), none per operation.
// Its wake-up is an eventfd in the same epoll set under wake_token.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <opreg/detail/poller.hpp>
#include <opreg/readiness.hpp>

#include "eventfd_wake.hpp"

namespace opreg::detail {

namespace {

class epoll_poller final : public poller {
public:
    explicit epoll_poller(int epfd) : epfd_{epfd} {}
    ~epoll_poller() override { ::close(epfd_); }

    // The wake-up eventfd, in the set for the poller's lifetime.
    [[nodiscard]] result<void> init() noexcept {
        if (const result<void> r = wake_.open(); !r) return r;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLET;
        ev.data.u64 = wake_token;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_.fd(), &ev) != 0) return os_failure(errno);
        return {};
    }

    backend kind() const noexcept override { return backend::epoll; }

    result<void> watch(int fd, std::uint64_t token) noexcept override {
        if (token == wake_token) return os_failure(EINVAL);  // its events would read as wake-ups
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = token;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return os_failure(errno);
        return {};
    }

    result<void> unwatch(int fd) noexcept override {
        // Closing the fd would remove it too, unless it was dup'ed: say it explicitly.
        epoll_event ev{};
        if (::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev) != 0) return os_failure(errno);
        return {};
    }

    result<std::size_t> wait(std::span<poll_event> out, int timeout_ms) noexcept override {
        if (raw_.size() < out.size()) raw_.resize(out.size());  // once: out has a fixed size
        const int n = ::epoll_wait(epfd_, raw_.data(), static_cast<int>(out.size()), timeout_ms);
        if (n < 0) {
            if (errno == EINTR) return std::size_t{0};
            return os_failure(errno);
        }
        for (int i = 0; i < n; ++i) {
            if (raw_[i].data.u64 == wake_token) {
                wake_.consume();
                out[static_cast<std::size_t>(i)] = poll_event{wake_token, readiness::readable};
                continue;
            }
            out[static_cast<std::size_t>(i)] =
                poll_event{raw_[i].data.u64, readiness_from_epoll(raw_[i].events)};
        }
        return static_cast<std::size_t>(n);
    }

    void wake() noexcept override { wake_.signal(); }
    [[nodiscard]] int native_handle() const noexcept override { return epfd_; }

private:
    int epfd_;
    eventfd_wake wake_;
    std::vector<epoll_event> raw_;
};

}  // namespace

result<std::unique_ptr<poller>> make_epoll_poller(std::string& why) {
    const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        const int err = errno;
        why = std::string("epoll unavailable: epoll_create1: ") + std::strerror(err);
        return os_failure(err);
    }
    auto p = std::make_unique<epoll_poller>(epfd);
    if (const result<void> r = p->init(); !r) {
        why = std::string("epoll unavailable: the wake-up eventfd: ") + std::strerror(r.os_error());
        return r.why();
    }
    return std::unique_ptr<poller>{std::move(p)};
}

}  // namespace opreg::detail
