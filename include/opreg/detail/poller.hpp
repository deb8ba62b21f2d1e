// SPDX-License-Identifier: Apache-2.0
// opreg/detail/poller.hpp — the few hooks a reactor backend implements.
//
// Declared once here; each backend is one file (src/linux/backend_epoll.cpp,
// src/linux/backend_io_uring.cpp, src/kqueue/backend_kqueue.cpp) and CMake picks the files
// the platform has, with src/absent/<name>.cpp answering "not built here" for the others.
// The portable loop in reactor.hpp has no #ifdef: it calls these through a virtual
// interface, once per wait, once per fd lifetime and once per wake-up, never per operation.
// Everything a backend needs from the kernel (its wake-up source, its bookkeeping) is its
// own: tokens are opaque 64-bit values to it, whatever layout the registry gives them.
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
// - wake(): any thread. The wait() in progress, or the next one, returns an event whose
//   token is wake_token (wake-ups before it may coalesce into one). The backend owns the
//   wake-up source (an eventfd on Linux, EVFILT_USER on kqueue) and consumes it itself.
// - Every hook reports a failed system call as os_failure(errno) in its result (the one
//   error convention: registry.hpp, ERRORS); none throws or leaves errno as the answer.
// - A backend may report several events for one fd in one batch, and readiness::error for
//   EPOLLERR-like conditions; hang-up is reported as readable and writable (reads return
//   0, writes fail), so that the op's own I/O call sees it.
// - native_handle() and submit(): for a reactor embedded in another event loop (reactor.hpp,
//   EMBEDDING).
// - COMPLETION MODE (supports_io(): io_uring only): the kernel does the I/O itself and
//   reports its result. recv_multishot(), send() and cancel_io() queue requests named by a
//   32-bit id of the caller's; wait() returns their completions as io events (poll_event::io
//   not none, token = the id, res = bytes or -errno). Readiness events and io events come
//   from the same wait(); an fd is used in one mode (watched, or given recv/send requests).
// - reports_hangup(): whether an event that finds the peer's FIN queued always carries
//   readiness::hangup. Only then may a reader stop at a short read without reading on to
//   EAGAIN (no edge follows a FIN). epoll, io_uring and BSD kqueue do; kqueue on Linux
//   through libkqueue does not, for a socket watched in both directions.
#pragma once

#include <opreg/config.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <opreg/types.hpp>

namespace opreg {

// Which kernel interface a reactor uses.
enum class backend : std::uint8_t { epoll, io_uring, kqueue };

// The backend this build was made for: epoll on Linux; kqueue on BSD and macOS, and in the
// kqueue configuration on Linux (libkqueue). The default, and what fall_back falls back to.
[[nodiscard]] OPREG_API backend native_backend() noexcept;

namespace detail {

// Which request an io event completes (none: a readiness event).
enum class io_kind : std::uint8_t { none, recv, send };

struct poll_event {
    std::uint64_t token = 0;  // readiness: the fd's token (watch); io: the request's id
    readiness ev = readiness::none;
    io_kind io = io_kind::none;
    bool more = false;        // io: the request goes on (a multishot recv); false: it has ended
    bool has_buffer = false;  // recv: the bytes are in provided buffer `buffer` (release it)
    std::uint16_t buffer = 0;
    std::int32_t res = 0;  // io: bytes received or sent, 0 at end of stream, or -errno
};

// The token of wake()'s event. Its slot field (token.hpp) is above token_reserved_slot, so
// no registry issues it; a backend never takes it for an fd's token.
inline constexpr std::uint64_t wake_token = 0xffffffffull;

class OPREG_API poller {
public:
    virtual ~poller() = default;
    [[nodiscard]] virtual backend kind() const noexcept = 0;
    [[nodiscard]] virtual result<void> watch(int fd, std::uint64_t token) noexcept = 0;
    [[nodiscard]] virtual result<void> unwatch(int fd) noexcept = 0;
    [[nodiscard]] virtual result<std::size_t> wait(std::span<poll_event> out,
                                                   int timeout_ms) noexcept = 0;
    virtual void wake() noexcept = 0;  // any thread
    [[nodiscard]] virtual bool reports_hangup() const noexcept { return true; }
    // The fd another event loop may wait on: readable when wait(out, 0) would report an
    // event or a wake-up (the epoll fd, the kqueue fd, the io_uring ring fd). -1: none.
    [[nodiscard]] virtual int native_handle() const noexcept { return -1; }
    // Hands what watch/unwatch queued to the kernel now, without waiting (io_uring queues
    // submissions until wait(); epoll and kqueue apply each call at once). Called before a
    // wait that is not this poller's own (another loop waiting on native_handle()).
    virtual void submit() noexcept {}

    // COMPLETION MODE. Requests are queued and go to the kernel with the next wait() (one
    // submission per loop turn), except cancel_io, which is submitted at once: a request
    // holds its file until it ends, so that the ::close() that follows really closes it.
    [[nodiscard]] virtual bool supports_io() const noexcept { return false; }
    // A multishot recv on fd into the provided buffer ring: a recv event per arrival (res
    // bytes in `buffer`), until one without `more` (0: end of stream; -ENOBUFS: no buffer was
    // free, so it stopped and may be started again; -ECANCELED after cancel_io; -errno).
    [[nodiscard]] virtual result<void> recv_multishot(int /*fd*/, std::uint32_t /*id*/) noexcept {
        return os_failure(ENOTSUP);
    }
    // One send of data[0, len) (MSG_NOSIGNAL): one send event, res = bytes the kernel took
    // (all of them while the socket has room; fewer, at least one, once it fills) or -errno.
    // The bytes are the caller's and must stay valid until that event.
    [[nodiscard]] virtual result<void> send(int /*fd*/, const char* /*data*/, std::size_t /*len*/,
                                            std::uint32_t /*id*/) noexcept {
        return os_failure(ENOTSUP);
    }
    // IORING_OP_ASYNC_CANCEL of every request of kind k named `id`. Their own last events
    // still come (-ECANCELED, or the result they had when the cancel came too late).
    [[nodiscard]] virtual result<void> cancel_io(io_kind /*k*/, std::uint32_t /*id*/) noexcept {
        return os_failure(ENOTSUP);
    }
    // IORING_OP_ASYNC_CANCEL of every request on fd (recv and sends), submitted at once: what
    // a completion-mode close() does before the fd is closed.
    [[nodiscard]] virtual result<void> cancel_fd(int /*fd*/) noexcept { return os_failure(ENOTSUP); }
    // The bytes of a provided buffer a recv event named, valid until release_buffer(bid),
    // which gives it back to the kernel.
    [[nodiscard]] virtual const char* buffer_data(std::uint16_t /*bid*/) const noexcept {
        return nullptr;
    }
    virtual void release_buffer(std::uint16_t /*bid*/) noexcept {}
    // Whether the ring is driven by one thread only (IORING_SETUP_SINGLE_ISSUER with
    // DEFER_TASKRUN), as poller_config::io_uring_single_issuer asked and the kernel allowed.
    [[nodiscard]] virtual bool single_issuer() const noexcept { return false; }
};

// What a backend may be sized by (reactor_options carries it).
struct poller_config {
    // io_uring: completion ring entries, a power of 2 (at least 2). One CQE per readiness
    // change per fd; a multishot poll whose CQE finds the ring full ends and is re-armed,
    // so a larger ring means fewer re-arms under load (16 bytes each).
    unsigned io_uring_cq_entries = 4096;
    // io_uring, completion mode: the provided buffer ring multishot recvs take from (a power of
    // 2, at most 32768, buffers of io_uring_buffer_bytes each; set up at the first recv).
    unsigned io_uring_buffers = 256;
    unsigned io_uring_buffer_bytes = 4096;
    // io_uring: ask for IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN (Linux 6.1):
    // completions are run only when the loop waits, with no interrupt of the loop's thread.
    // The ring is created disabled and enabled by the first thread that calls a hook, which
    // must then be the only one ever to (a reactor made on one thread and run on another is
    // fine; one run from two threads in turn is not). native_handle() is -1 (the ring fd does
    // not show deferred completions), and a cancel_fd's file is let go at the next wait.
    // Refused by the kernel: a ring without them (single_issuer() says which).
    bool io_uring_single_issuer = false;
};

// One factory per backend file. An error when the backend is not built on this platform
// (ENOSYS) or not usable on this kernel (the errno of the step that failed); `why` then says
// which and why, in one line.
OPREG_API result<std::unique_ptr<poller>> make_epoll_poller(std::string& why);
OPREG_API result<std::unique_ptr<poller>> make_io_uring_poller(std::string& why,
                                                              const poller_config& cfg);
OPREG_API result<std::unique_ptr<poller>> make_kqueue_poller(std::string& why);

}  // namespace detail
}  // namespace opreg
