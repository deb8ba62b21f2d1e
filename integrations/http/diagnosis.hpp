// SPDX-License-Identifier: Apache-2.0
// opreg-httpd's diagnosis modes: the original design's suspected costs, re-created one at a
// time behind flags (see --help), and kept out of the server's normal path. Each is chosen
// once, at startup:
// - --rearm-per-op: the worker runs on a rearming_poller, which wraps the real backend and
//   registers an fd with the kernel again before each operation is armed;
// - --std-function and --rearm-per-op: the worker arms through diagnosed_arming (a policy,
//   a template parameter of the worker) instead of plain_arming;
// - --write-per-part: the response_buffer records where each part of a response ends, and
//   the write step writes each part on its own (response_buffer.hpp).
// --shared-registry and --nagle are configuration, made where the server sets up.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <opreg/detail/poller.hpp>
#include <opreg/reactor.hpp>

#include "server.hpp"

namespace opreg::http {

// A poller that forwards to the real one and can register an fd with the kernel again:
// what a design that registers per operation pays (epoll: EPOLL_CTL_DEL then EPOLL_CTL_ADD,
// two system calls per operation; kqueue: EV_DELETE then EV_ADD), instead of once per fd
// lifetime.
//
// Exact for epoll and kqueue: once the removal returns, the old registration is gone, and the
// new one reports the fd's readiness at once, as any fresh registration does. Not for
// io_uring, whose poll removal completes later: the old poll's last completion would re-arm a
// poll that nothing removes, which holds the file open after close. The server refuses
// --rearm-per-op with io_uring at startup; the constructor refuses an io_uring poller.
//
// Reactor thread only, as every poller hook is.
class rearming_poller final : public detail::poller {
public:
    // Throws std::invalid_argument for a null or io_uring poller.
    explicit rearming_poller(std::unique_ptr<detail::poller> inner);

    [[nodiscard]] backend kind() const noexcept override { return inner_->kind(); }
    [[nodiscard]] result<void> watch(int fd, std::uint64_t token) noexcept override;
    [[nodiscard]] result<void> unwatch(int fd) noexcept override;
    [[nodiscard]] result<std::size_t> wait(std::span<detail::poll_event> out,
                                           int timeout_ms) noexcept override {
        return inner_->wait(out, timeout_ms);
    }
    void wake() noexcept override { inner_->wake(); }
    [[nodiscard]] bool reports_hangup() const noexcept override { return inner_->reports_hangup(); }

    // Registers fd again, under the token it was watched with: unwatch, then watch. The new
    // registration reports fd's current readiness. os_failure(ENOENT) when fd is not watched
    // here; the kernel's error otherwise (after a failed watch, fd is no longer watched).
    [[nodiscard]] result<void> reregister(int fd) noexcept;

    // Successful reregister() calls so far.
    [[nodiscard]] std::uint64_t reregistrations() const noexcept { return reregistrations_; }

private:
    struct registration {
        std::uint64_t token = 0;
        bool watched = false;
    };
    std::unique_ptr<detail::poller> inner_;
    std::vector<registration> by_fd_;  // grows to the highest fd watched
    std::uint64_t reregistrations_ = 0;
};

// The poller a worker runs on: the backend `opt` asks for (epoll, with a note, when the
// kernel refuses it), inside a rearming_poller under --rearm-per-op.
struct worker_poller {
    std::unique_ptr<detail::poller> poller;
    rearming_poller* rearm = nullptr;  // the wrapper inside `poller`, or null
};
// `note` says why the backend is not the one asked for, or why none could be opened.
result<worker_poller> open_worker_poller(const server_options& opt, std::string& note);

// How the async server's worker arms an operation: a policy (template parameter of the
// worker), chosen once at startup, so that the normal path carries no diagnosis branch.
// Each is constructed from the options and the worker's rearming_poller (null without
// --rearm-per-op), and arms `fn` on (fd, d) through `loop`, answering as reactor::arm does.

// The normal path: the callback is stored inline in the registry's slot.
struct plain_arming {
    plain_arming(const server_options&, rearming_poller*) noexcept {}

    template <registry R, class F>
    [[nodiscard]] result<op_token> arm(reactor<R>& loop, int fd, direction d, F&& fn) const {
        return loop.arm(fd, d, std::forward<F>(fn));
    }
};

// Arms `fn` through a heap-allocated std::function, as the original design's callbacks did:
// one allocation and one indirect call per operation. The function is owned by the callback
// the registry holds, so it is freed when the op ends and when the arm is refused.
template <registry R, class F>
[[nodiscard]] result<op_token> arm_through_std_function(reactor<R>& loop, int fd, direction d,
                                                        F&& fn) {
    using function = std::function<void(const completion&)>;
    return loop.arm(fd, d,
                    [held = std::make_unique<function>(std::forward<F>(fn))](const completion& x) {
                        (*held)(x);
                    });
}

// --std-function and --rearm-per-op, each when asked for.
class diagnosed_arming {
public:
    diagnosed_arming(const server_options& opt, rearming_poller* rearm) noexcept
        : std_function_{opt.std_function},
          rearm_{rearm} {}

    // A failed re-registration is the arm's failure: the fd may no longer be watched.
    template <registry R, class F>
    [[nodiscard]] result<op_token> arm(reactor<R>& loop, int fd, direction d, F&& fn) const {
        if (rearm_ != nullptr) {
            if (const result<void> r = rearm_->reregister(fd); !r) return r.why();
        }
        if (std_function_) return arm_through_std_function(loop, fd, d, std::forward<F>(fn));
        return loop.arm(fd, d, std::forward<F>(fn));
    }

private:
    bool std_function_;
    rearming_poller* rearm_;
};

}  // namespace opreg::http
