// opreg/detail/poller.hpp — the few hooks a reactor backend implements.
//
// Declared once here; each backend is one file in src/ (backend_epoll.cpp,
// backend_io_uring.cpp, backend_kqueue.cpp) and CMake picks the files the platform has,
// with src/absent/<name>.cpp answering "not built here" for the others. The portable loop
// in reactor.hpp has no #ifdef: it calls these through a virtual interface, once per wait
// and once per fd lifetime, never per operation.
//
// Semantics every backend keeps:
// - watch(fd, token): register fd for read and write readiness, edge-triggered (a report
//   per readiness change, plus one at registration if the fd is already ready), carrying
//   `token` back in every event. Called once per fd lifetime.
// - unwatch(fd): stop reporting fd, whatever token it was watched under (a registry close()
//   from another thread may have moved the fd's token on since); called before the fd is
//   closed. Events already in flight may still arrive with the old token: the registry
//   drops them as stale.
// - wait(out, timeout_ms): block up to timeout_ms (-1: no limit, 0: poll) for events and
//   fill `out`; returns how many (0 on timeout or EINTR).
// - Every hook reports a failed system call as os_failure(errno) in its result (the one
//   error convention: registry.hpp, ERRORS); none throws or leaves errno as the answer.
// - A backend may report several events for one fd in one batch, and readiness::error for
//   EPOLLERR-like conditions; hang-up is reported as readable and writable (reads return
//   0, writes fail), so that the op's own I/O call sees it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <opreg/types.hpp>

namespace opreg {

// Which kernel interface a reactor uses.
enum class backend : std::uint8_t { epoll, io_uring, kqueue };

namespace detail {

struct poll_event {
    std::uint64_t token = 0;
    readiness ev = readiness::none;
};

class poller {
public:
    virtual ~poller() = default;
    [[nodiscard]] virtual backend kind() const noexcept = 0;
    [[nodiscard]] virtual result<void> watch(int fd, std::uint64_t token) noexcept = 0;
    [[nodiscard]] virtual result<void> unwatch(int fd) noexcept = 0;
    [[nodiscard]] virtual result<std::size_t> wait(std::span<poll_event> out,
                                                   int timeout_ms) noexcept = 0;
};

// What a backend may be sized by (reactor_options carries it).
struct poller_config {
    // io_uring: completion ring entries, a power of 2 (at least 2). One CQE per readiness
    // change per fd; a multishot poll whose CQE finds the ring full ends and is re-armed,
    // so a larger ring means fewer re-arms under load (16 bytes each).
    unsigned io_uring_cq_entries = 4096;
};

// One factory per backend file. An error when the backend is not built on this platform
// (ENOSYS) or not usable on this kernel (the errno of the step that failed); `why` then says
// which and why, in one line.
result<std::unique_ptr<poller>> make_epoll_poller(std::string& why);
result<std::unique_ptr<poller>> make_io_uring_poller(std::string& why, const poller_config& cfg);
result<std::unique_ptr<poller>> make_kqueue_poller(std::string& why);

}  // namespace detail
}  // namespace opreg
