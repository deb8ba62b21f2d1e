// SPDX-License-Identifier: Apache-2.0
// kqueue reactor backend (macOS and the BSDs): EVFILT_READ and EVFILT_WRITE per fd, both
// EV_CLEAR, the fd's token in udata.
//
// Written against POSIX and <sys/event.h> alone. On Linux it is built and tested through
// libkqueue (the kqueue configuration, OPREG_LIBKQUEUE: the reactor, HTTP and stress suites
// run on it); what only a BSD or macOS kernel can confirm is said in docs/reactor.md.
//
// What it guarantees, beyond detail/poller.hpp:
// - Edge-triggered: EV_CLEAR resets a filter's state once it is reported, which is
//   EPOLLET's contract; a filter that is already true when added reports at once.
// - Hang-up (EV_EOF) is readable and writable; EV_EOF with a socket error in fflags, or an
//   EV_ERROR entry, is readiness::error.
// - Owner-only except wake(): the reactor's thread makes every other call. close() removes an
//   fd's filters by itself, but the reactor calls unwatch() first on every backend.
// - Needs a 64-bit udata (a static_assert refuses 32-bit targets), EV_RECEIPT (macOS and
//   FreeBSD have it; other BSDs only in recent releases) and EVFILT_USER, the wake-up: a
//   user event, EV_CLEAR, triggered by wake() from any thread (NOTE_TRIGGER), reported
//   under wake_token.
#include <opreg/detail/poller.hpp>
#include <opreg/readiness.hpp>

#include <fcntl.h>
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

#ifndef OPREG_KQUEUE_ON_LIBKQUEUE
#define OPREG_KQUEUE_ON_LIBKQUEUE 0
#endif

namespace opreg::detail {
namespace {

// The token rides in udata unchanged; a 32-bit udata would cut off its generation.
static_assert(sizeof(std::uintptr_t) >= sizeof(std::uint64_t),
              "the kqueue backend carries 64-bit tokens in kevent.udata");

struct kqueue_traits {
    // Events one kevent() call can return; wait() asks for min(out.size(), this).
    static constexpr std::size_t batch = 512;
    // The ident of the EVFILT_USER event that is the wake-up (idents of user events are
    // their own namespace: no fd is confused with it).
    static constexpr std::uintptr_t wake_ident = 1;
};

// udata is void* on macOS, FreeBSD, OpenBSD and NetBSD 10, intptr_t on older NetBSD.
template <class Udata>
[[nodiscard]] Udata to_udata(std::uint64_t token) noexcept {
    if constexpr (std::is_pointer_v<Udata>)
        return reinterpret_cast<Udata>(static_cast<std::uintptr_t>(token));
    else
        return static_cast<Udata>(token);
}

template <class Udata>
[[nodiscard]] std::uint64_t from_udata(Udata udata) noexcept {
    if constexpr (std::is_pointer_v<Udata>)
        return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(udata));
    else
        return static_cast<std::uint64_t>(udata);
}

using udata_t = decltype(std::declval<struct kevent&>().udata);

// EV_RECEIPT makes every change answer with an EV_ERROR entry (data 0 on success) and keeps
// kevent() from returning, and so consuming, real events in the same call.
[[nodiscard]] struct kevent change(int fd, short filter, unsigned short flags,
                                   std::uint64_t token) noexcept {
    struct kevent kev {};  // EV_SET fills the classic six fields; newer BSDs have more
    EV_SET(&kev, fd, filter, flags | EV_RECEIPT, 0, 0, 0);
    kev.udata = to_udata<udata_t>(token);
    return kev;
}


class kqueue_poller final : public poller {
public:
    kqueue_poller(int kq, struct kevent* buffer) noexcept : kq_{kq}, events_{buffer} {}
    kqueue_poller(const kqueue_poller&) = delete;
    kqueue_poller& operator=(const kqueue_poller&) = delete;
    ~kqueue_poller() override {
        delete[] events_;
        ::close(kq_);
    }

    [[nodiscard]] backend kind() const noexcept override { return backend::kqueue; }

    // The wake-up: a user event, EV_CLEAR so that each trigger is reported once.
    [[nodiscard]] result<void> init() noexcept {
        struct kevent kev {};
        EV_SET(&kev, kqueue_traits::wake_ident, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, 0);
        kev.udata = to_udata<udata_t>(wake_token);
        if (::kevent(kq_, &kev, 1, nullptr, 0, nullptr) < 0) return os_failure(errno);
        return {};
    }

    // libkqueue on Linux keeps one epoll registration per fd for both filters, and with the
    // write filter present it loses EPOLLRDHUP: bytes and a FIN queued together come as a
    // read event without EV_EOF, and no event follows. BSD and macOS set EV_EOF.
    [[nodiscard]] bool reports_hangup() const noexcept override {
        return OPREG_KQUEUE_ON_LIBKQUEUE == 0;
    }

    // BSD and macOS: the kqueue polls readable while events are pending. libkqueue on Linux
    // hands out an fd that never does (the write end of a pipe): no handle to wait on there.
    [[nodiscard]] int native_handle() const noexcept override {
        return OPREG_KQUEUE_ON_LIBKQUEUE == 0 ? kq_ : -1;
    }

    void wake() noexcept override {
        struct kevent kev {};
        EV_SET(&kev, kqueue_traits::wake_ident, EVFILT_USER, 0, NOTE_TRIGGER, 0, 0);
        kev.udata = to_udata<udata_t>(wake_token);
        while (::kevent(kq_, &kev, 1, nullptr, 0, nullptr) < 0 && errno == EINTR) {
        }
    }

    [[nodiscard]] result<void> watch(int fd, std::uint64_t token) noexcept override {
        if (fd < 0) return os_failure(EBADF);
        if (token == wake_token) return os_failure(EINVAL);  // its events would read as wake-ups
        struct kevent changes[2] = {change(fd, EVFILT_READ, EV_ADD | EV_CLEAR, token),
                                    change(fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, token)};
        struct kevent receipts[2];
        const int n = ::kevent(kq_, changes, 2, receipts, 2, nullptr);
        if (n < 0) return os_failure(errno);
        // Watched if either filter took: some descriptors have no write side (the read end
        // of a pipe whose writer is gone refuses EVFILT_WRITE), which epoll would simply
        // never report.
        int first_error = 0;
        for (int i = 0; i < n; ++i) {
            if (!(receipts[i].flags & EV_ERROR) || receipts[i].data == 0) return {};
            if (first_error == 0) first_error = static_cast<int>(receipts[i].data);
        }
        return os_failure(first_error != 0 ? first_error : EIO);
    }

    [[nodiscard]] result<void> unwatch(int fd) noexcept override {
        if (fd < 0) return os_failure(ENOENT);
        // EV_DELETE is keyed by (ident, filter): the udata is not looked at.
        struct kevent changes[2] = {change(fd, EVFILT_READ, EV_DELETE, 0),
                                    change(fd, EVFILT_WRITE, EV_DELETE, 0)};
        struct kevent receipts[2];
        const int n = ::kevent(kq_, changes, 2, receipts, 2, nullptr);
        if (n < 0) return os_failure(errno);
        // A filter that watch() could not add is absent (ENOENT): not an error here. Both
        // absent means the fd was never watched.
        int absent = 0;
        for (int i = 0; i < n; ++i) {
            if (!(receipts[i].flags & EV_ERROR) || receipts[i].data == 0) continue;
            const int err = static_cast<int>(receipts[i].data);
            if (err != ENOENT) return os_failure(err);
            ++absent;
        }
        if (absent == 2) return os_failure(ENOENT);
        return {};
    }

    [[nodiscard]] result<std::size_t> wait(std::span<poll_event> out,
                                           int timeout_ms) noexcept override {
        struct timespec ts {};
        const struct timespec* tsp = nullptr;
        if (timeout_ms >= 0) {
            ts.tv_sec = timeout_ms / 1000;
            ts.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1'000'000L;
            tsp = &ts;
        }
        const int cap =
            static_cast<int>(out.size() < kqueue_traits::batch ? out.size() : kqueue_traits::batch);
        const int n = ::kevent(kq_, nullptr, 0, events_, cap, tsp);
        if (n < 0) {
            if (errno == EINTR) return std::size_t{0};
            return os_failure(errno);
        }
        std::size_t count = 0;
        for (int i = 0; i < n; ++i) {
            if (events_[i].filter == EVFILT_USER) {
                out[count++] = poll_event{wake_token, readiness::readable};
                continue;
            }
            const readiness r = readiness_from_kevent(events_[i]);
            if (r == readiness::none) continue;
            out[count++] = poll_event{from_udata(events_[i].udata), r};
        }
        return count;
    }

private:
    int kq_;
    struct kevent* events_;  // kqueue_traits::batch entries, owned
};

}  // namespace

result<std::unique_ptr<poller>> make_kqueue_poller(std::string& why) {
    try {
        const int kq = ::kqueue();
        if (kq < 0) {
            const int err = errno;
            why = "kqueue unavailable: kqueue: " + std::generic_category().message(err);
            return os_failure(err);
        }
        // A kqueue is not inherited across fork(); across exec it is closed only if asked.
        (void)::fcntl(kq, F_SETFD, FD_CLOEXEC);
        auto* buffer = new (std::nothrow) struct kevent[kqueue_traits::batch];
        auto* p = buffer != nullptr ? new (std::nothrow) kqueue_poller(kq, buffer) : nullptr;
        if (p == nullptr) {
            delete[] buffer;
            ::close(kq);
            why = "kqueue unavailable: out of memory";
            return os_failure(ENOMEM);
        }
        std::unique_ptr<poller> owned(p);
        if (const result<void> r = p->init(); !r) {
            why = "kqueue unavailable: the EVFILT_USER wake-up: " +
                  std::generic_category().message(r.os_error());
            return r.why();
        }
        return owned;
    } catch (...) {  // std::bad_alloc from a message
        return os_failure(ENOMEM);
    }
}

}  // namespace opreg::detail
