// io_uring reactor backend (Linux 5.13+, liburing 2.3+): readiness through one multishot
// IORING_OP_POLL_ADD per fd lifetime, the fd's token in the poll's user_data.
//
// What it guarantees, beyond detail/poller.hpp:
// - Edge-triggered: a multishot poll without IORING_POLL_ADD_LEVEL is EPOLLET inside the
//   kernel, and it reports once at arm time if the fd is already ready.
// - A poll the kernel ends on its own (no IORING_CQE_F_MORE: the CQ ring was full, or a
//   cancellation we did not ask for) is re-armed while its fd is watched; the re-armed poll
//   reports the fd's state at arm time, so no edge is lost. A poll that fails (say -EBADF)
//   is reported once as readiness::error and not re-armed.
// - Owner-only: not thread-safe; the reactor's thread makes every call. watch() submits its
//   poll at once (one io_uring_enter per new fd): a poll-add and a poll-remove that reach
//   the kernel in one batch do not meet, and the poll would keep the file. The kernel ties
//   a poll to the thread that submitted it: once that thread has exited it cancels the poll
//   at its next event, and the re-arm above makes that one event a few milliseconds late.
// - unwatch() submits its poll-remove at once: io_uring holds a reference to the file while
//   a poll is armed, so the ::close() that follows only releases the file (and a socket
//   only sends its FIN) once the poll is gone. unwatch() must come before ::close().
//
// Reserved user_data. Four values at the top of the 64-bit range are ours, and wait() skips
// their CQEs; watch() refuses them as tokens (EINVAL). Read as tokens they would name slot
// 0xFFFFFFFC..0xFFFFFFFF (fd -4..-1) with generation 0xFFFFFFFF, which no registry issues
// (slots stay below 2^30) and which stay clear of the reactor's wake token 0x00000000FFFFFFFF:
//   udata_update  0xFFFFFFFF'FFFFFFFC  the CQE of every poll update rewatch() submits
//   udata_probe   0xFFFFFFFF'FFFFFFFD  the throwaway poll of the creation probe
//   udata_remove  0xFFFFFFFF'FFFFFFFE  the CQE of every poll-remove unwatch() submits
//   ~0            LIBURING_UDATA_TIMEOUT, liburing's own timeout SQE on kernels without
//                 IORING_FEAT_EXT_ARG
#include <opreg/detail/poller.hpp>

#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <vector>

namespace opreg::detail {
namespace {

struct io_uring_traits {
    // Submission ring entries. watch() and unwatch() take one SQE per fd lifetime and a
    // re-arm takes one; when the ring is full it is submitted first, so this bounds batching,
    // not the number of fds. Must be a power of 2 (the kernel rounds it up otherwise).
    static constexpr unsigned sq_entries = 1024;
    // Completion ring entries: one CQE per readiness change per fd. A multishot poll whose
    // CQE finds the ring full ends (and is re-armed), so a larger ring means fewer re-arms
    // under load; 16 bytes each. Must be a power of 2 and at least sq_entries.
    static constexpr unsigned cq_entries = 4096;
    // POLLERR and POLLHUP are always reported; naming them documents what wait() maps.
    // POLLRDHUP shows a peer's shutdown(SHUT_WR) as readable, as epoll's backend does.
    static constexpr unsigned poll_mask = POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP;
    // wait() rounds that may end with internal CQEs only before it returns 0 early.
    static constexpr int internal_rounds = 4;
    // How long the creation probe waits for its poll's CQE (it is due at once).
    static constexpr long long probe_timeout_ns = 1'000'000'000;
};
static_assert((io_uring_traits::sq_entries & (io_uring_traits::sq_entries - 1)) == 0);
static_assert((io_uring_traits::cq_entries & (io_uring_traits::cq_entries - 1)) == 0);
static_assert(io_uring_traits::cq_entries >= io_uring_traits::sq_entries);

constexpr std::uint64_t udata_update = 0xFFFF'FFFF'FFFF'FFFCull;
constexpr std::uint64_t udata_probe = 0xFFFF'FFFF'FFFF'FFFDull;
constexpr std::uint64_t udata_remove = 0xFFFF'FFFF'FFFF'FFFEull;
static_assert(LIBURING_UDATA_TIMEOUT == ~std::uint64_t{0});
// watched_[fd] when fd is not watched: reserved, so it never equals a token.
constexpr std::uint64_t no_token = ~std::uint64_t{0};

[[nodiscard]] constexpr bool is_reserved(std::uint64_t user_data) noexcept {
    return user_data >= udata_update;
}

[[nodiscard]] constexpr readiness to_readiness(unsigned mask) noexcept {
    readiness r = readiness::none;
    if (mask & (POLLERR | POLLNVAL)) r = r | readiness::error;
    // Hang-up is readable and writable, so that the op's own read (0) or write (EPIPE) sees
    // it, and says hangup, so that a reader knows not to stop before end-of-file.
    if (mask & (POLLIN | POLLRDHUP | POLLHUP)) r = r | readiness::readable;
    if (mask & (POLLOUT | POLLHUP)) r = r | readiness::writable;
    if (mask & (POLLRDHUP | POLLHUP)) r = r | readiness::hangup;
    return r;
}

[[nodiscard]] std::string errno_text(int err) {
    return std::generic_category().message(err);
}

[[nodiscard]] __kernel_timespec to_timespec(long long ns) noexcept {
    __kernel_timespec ts{};
    ts.tv_sec = ns / 1'000'000'000;
    ts.tv_nsec = ns % 1'000'000'000;
    return ts;
}

class io_uring_poller final : public poller {
public:
    io_uring_poller() noexcept = default;
    io_uring_poller(const io_uring_poller&) = delete;
    io_uring_poller& operator=(const io_uring_poller&) = delete;
    // Exiting the ring cancels every poll still armed and drops its file reference.
    ~io_uring_poller() override {
        if (ring_live_) io_uring_queue_exit(&ring_);
    }

    // Sets up the ring and checks that multishot poll works; on failure `why` says which step.
    [[nodiscard]] bool init(std::string& why);

    [[nodiscard]] backend kind() const noexcept override { return backend::io_uring; }
    [[nodiscard]] int watch(int fd, std::uint64_t token) noexcept override;
    [[nodiscard]] int unwatch(int fd, std::uint64_t token) noexcept override;
    [[nodiscard]] int rewatch(int fd, std::uint64_t token) noexcept override;
    [[nodiscard]] int wait(std::span<poll_event> out, int timeout_ms) noexcept override;

private:
    [[nodiscard]] int next_sqe(io_uring_sqe*& sqe) noexcept;
    [[nodiscard]] int arm(int fd, std::uint64_t token) noexcept;
    [[nodiscard]] int watched_fd(std::uint64_t token) const noexcept;
    [[nodiscard]] bool on_cqe(const io_uring_cqe& cqe, poll_event& ev) noexcept;
    [[nodiscard]] std::size_t harvest(std::span<poll_event> out, unsigned& consumed) noexcept;
    [[nodiscard]] bool probe_multishot(std::string& why);

    io_uring ring_{};
    bool ring_live_ = false;
    // fd -> token of its current lifetime, no_token when unwatched. Indexed by fd and grown on
    // demand by watch(): touched once per fd lifetime and once per re-arm, never per op.
    std::vector<std::uint64_t> watched_;
    // Watched tokens whose slot is not their fd (the reactor's wake-up token): a re-arm finds
    // its fd here. A handful at most, so a vector searched in order.
    struct odd_watch {
        int fd;
        std::uint64_t token;
    };
    std::vector<odd_watch> odd_;
};

bool io_uring_poller::init(std::string& why) {
    // COOP_TASKRUN: completions are processed when this thread next enters the kernel rather
    // than by interrupting it, which is all a loop that only looks at completions in wait()
    // needs. SUBMIT_ALL: one bad SQE does not hold back the rest of a batch. Both are
    // optimisations from Linux 5.18/5.19; an older kernel rejects them and gets a plain ring.
    io_uring_params params{};
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    params.cq_entries = io_uring_traits::cq_entries;
    int rc = io_uring_queue_init_params(io_uring_traits::sq_entries, &ring_, &params);
    if (rc == -EINVAL) {
        params = io_uring_params{};
        params.flags = IORING_SETUP_CQSIZE;
        params.cq_entries = io_uring_traits::cq_entries;
        rc = io_uring_queue_init_params(io_uring_traits::sq_entries, &ring_, &params);
    }
    if (rc < 0) {
        why = "io_uring_queue_init: " + errno_text(-rc);
        return false;
    }
    ring_live_ = true;
    return probe_multishot(why);
}

// A kernel without multishot poll (before 5.13) rejects IORING_POLL_ADD_MULTI with -EINVAL,
// and one that ends the poll after its first CQE would leave fds unwatched: arm one on a
// fresh eventfd (writable at once), check its first CQE, then remove it and drain the ring.
bool io_uring_poller::probe_multishot(std::string& why) {
    const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
        why = "eventfd for the multishot poll probe: " + errno_text(errno);
        return false;
    }
    bool ok = false;
    int pending = 0;  // CQEs still owed to us: the probe poll's and the remove's
    __kernel_timespec ts = to_timespec(io_uring_traits::probe_timeout_ns);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);  // the ring is empty: never null here
    io_uring_prep_poll_multishot(sqe, efd, POLLOUT);
    io_uring_sqe_set_data64(sqe, udata_probe);
    int rc = io_uring_submit(&ring_);
    if (rc < 0) {
        why = "submitting the multishot poll probe: " + errno_text(-rc);
    } else {
        pending = 1;
        io_uring_cqe* cqe = nullptr;
        rc = io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
        if (rc < 0) {
            why = "waiting for the multishot poll probe: " + errno_text(-rc);
        } else {
            const int res = cqe->res;
            const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
            io_uring_cqe_seen(&ring_, cqe);
            if (res < 0) {
                pending = 0;
                why = "multishot poll: " + errno_text(-res) + " (needs Linux 5.13 or later)";
            } else if (!more) {
                pending = 0;
                why = "multishot poll ended after its first completion";
            } else {
                ok = true;
            }
        }
    }
    if (pending == 1) {
        sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_poll_remove(sqe, udata_probe);
        io_uring_sqe_set_data64(sqe, udata_remove);
        if (io_uring_submit(&ring_) == 1) pending = 2;
    }
    // Drain what the probe still owes so that the ring starts empty. The poll itself keeps a
    // reference to the eventfd until its final CQE; if that never comes the ring's exit drops it.
    while (pending > 0) {
        io_uring_cqe* cqe = nullptr;
        if (io_uring_wait_cqe_timeout(&ring_, &cqe, &ts) < 0) {
            if (ok) why = "multishot poll probe did not end after its removal";
            ok = false;
            break;
        }
        io_uring_cqe_seen(&ring_, cqe);
        --pending;
    }
    ::close(efd);
    return ok;
}

// An SQE to fill; a full submission ring is submitted first. 0, or the errno submit gave.
int io_uring_poller::next_sqe(io_uring_sqe*& sqe) noexcept {
    sqe = io_uring_get_sqe(&ring_);
    if (sqe != nullptr) return 0;
    const int rc = io_uring_submit(&ring_);
    if (rc < 0) return -rc;
    sqe = io_uring_get_sqe(&ring_);
    return sqe != nullptr ? 0 : EBUSY;  // the kernel took none of the queued SQEs
}

int io_uring_poller::arm(int fd, std::uint64_t token) noexcept {
    io_uring_sqe* sqe = nullptr;
    if (const int err = next_sqe(sqe)) return err;
    io_uring_prep_poll_multishot(sqe, fd, io_uring_traits::poll_mask);
    io_uring_sqe_set_data64(sqe, token);
    return 0;
}

// The fd `token` is watched on now, or -1 (unwatched, or an old lifetime's token).
int io_uring_poller::watched_fd(std::uint64_t token) const noexcept {
    const std::size_t slot = static_cast<std::uint32_t>(token);
    if (slot < watched_.size() && watched_[slot] == token) return static_cast<int>(slot);
    for (const odd_watch& w : odd_)
        if (w.token == token) return w.fd;
    return -1;
}

int io_uring_poller::watch(int fd, std::uint64_t token) noexcept {
    if (fd < 0) return EBADF;
    if (is_reserved(token)) return EINVAL;
    const auto index = static_cast<std::size_t>(fd);
    // A CQE finds its record again through the token's slot, which is the fd for registry
    // tokens; any other token is also listed in odd_.
    const bool odd = static_cast<std::uint32_t>(token) != static_cast<std::uint32_t>(fd);
    try {
        if (index >= watched_.size())
            watched_.resize(std::max({index + 1, watched_.size() * 2, std::size_t{64}}), no_token);
        if (odd) odd_.reserve(odd_.size() + 1);
    } catch (...) {
        return ENOMEM;
    }
    if (watched_[index] != no_token) return EEXIST;  // as epoll_ctl(ADD) says
    if (const int err = arm(fd, token)) return err;
    // Submitted now, not with the next wait(): a poll-remove that reaches the kernel in the
    // same batch as its poll-add does not find it, and the poll then keeps the file (no
    // FIN ever) once the fd is closed; seen for a connection answered and closed before
    // the loop's next wait.
    (void)io_uring_submit(&ring_);
    watched_[index] = token;
    if (odd) odd_.push_back(odd_watch{fd, token});  // reserved above: cannot throw
    return 0;
}

int io_uring_poller::unwatch(int fd, std::uint64_t token) noexcept {
    const auto index = static_cast<std::size_t>(fd);
    if (fd < 0 || index >= watched_.size() || watched_[index] != token) return ENOENT;
    io_uring_sqe* sqe = nullptr;
    if (const int err = next_sqe(sqe)) return err;
    // Removal is keyed by user_data alone, so an fd number already reused under a newer
    // token keeps its poll. The removed poll's final CQE (-ECANCELED) then finds no record.
    io_uring_prep_poll_remove(sqe, token);
    io_uring_sqe_set_data64(sqe, udata_remove);
    watched_[index] = no_token;
    std::erase_if(odd_, [fd](const odd_watch& w) { return w.fd == fd; });
    // Submitted now so that the file reference is gone before the caller's ::close(). Should
    // the kernel refuse the batch (-EAGAIN), the SQE stays queued and wait() submits it: the
    // unwatch still happens, only the file's release is late.
    (void)io_uring_submit(&ring_);
    return 0;
}

// Not unwatch then watch: the removal completes later, its poll's final -ECANCELED CQE
// would find the same token watched again and re-arm it, and every re-registration would
// leave one more poll holding the file (a closed connection then never sends its FIN).
// A poll update replaces the poll in place and polls again, as epoll's ADD does; if the
// poll has just ended (its final CQE not harvested yet) the update finds nothing and the
// harvest re-arms it, so there is one poll either way.
int io_uring_poller::rewatch(int fd, std::uint64_t token) noexcept {
    if (watched_fd(token) != fd) return ENOENT;
    io_uring_sqe* sqe = nullptr;
    if (const int err = next_sqe(sqe)) return err;
    // new_user_data 0: the kernel refuses one without IORING_POLL_UPDATE_USER_DATA. The
    // poll keeps its multishot mode; only its event mask is set again.
    io_uring_prep_poll_update(sqe, token, 0, io_uring_traits::poll_mask,
                              IORING_POLL_UPDATE_EVENTS);
    // Its own CQE says 0, or -ENOENT/-EALREADY for a poll that has just ended (the harvest
    // re-arms it): nothing to act on, so it is dropped like a removal's.
    io_uring_sqe_set_data64(sqe, udata_update);
    (void)io_uring_submit(&ring_);
    return 0;
}

// One CQE; true when it fills `ev`. Runs inside harvest()'s walk of the CQ ring, which a
// re-arm's submit (when the SQ is full) does not disturb: it only moves the SQ ring.
bool io_uring_poller::on_cqe(const io_uring_cqe& cqe, poll_event& ev) noexcept {
    const std::uint64_t token = cqe.user_data;
    if (is_reserved(token)) return false;
    const bool ended = (cqe.flags & IORING_CQE_F_MORE) == 0;
    if (cqe.res >= 0) {
        // Readiness, also on a poll's final CQE (the kernel ends a multishot poll whose next
        // CQE would not fit, and hands over that readiness in the final one). An old
        // lifetime's events are delivered as they are: the registry drops them as stale.
        ev = poll_event{token, to_readiness(static_cast<unsigned>(cqe.res))};
        if (ended) {
            if (const int fd = watched_fd(token); fd >= 0 && arm(fd, token) != 0)
                ev.ev = ev.ev | readiness::error;  // cannot re-arm: end the fd's ops visibly
        }
        return ev.ev != readiness::none;
    }
    // A negative result always ends the poll. -ECANCELED after unwatch(), or for an old
    // lifetime, finds no record and is dropped here.
    const int fd = watched_fd(token);
    if (fd < 0) return false;
    if (cqe.res == -ECANCELED && arm(fd, token) == 0)
        return false;  // cancelled by the kernel (its submitting thread exited...): re-armed
    // The fd cannot be polled (-EBADF: watch() was given a closed fd, -ENOMEM, ...): pending
    // ops end with outcome::error. The record stays, so the reactor's unwatch() still pairs.
    ev = poll_event{token, readiness::error};
    return true;
}

// Fills `out` from the CQ ring; `consumed` counts the CQEs taken, events or not.
std::size_t io_uring_poller::harvest(std::span<poll_event> out, unsigned& consumed) noexcept {
    std::size_t n = 0;
    unsigned seen = 0;
    unsigned head = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
        if (n == out.size()) break;  // the rest stay in the ring for the next wait()
        ++seen;
        if (on_cqe(*cqe, out[n])) ++n;
    }
    io_uring_cq_advance(&ring_, seen);
    consumed = seen;
    return n;
}

int io_uring_poller::wait(std::span<poll_event> out, int timeout_ms) noexcept {
    using clock = std::chrono::steady_clock;
    const clock::time_point deadline =
        timeout_ms > 0 ? clock::now() + std::chrono::milliseconds(timeout_ms) : clock::time_point{};
    for (int round = 0;; ++round) {
        __kernel_timespec ts{};
        __kernel_timespec* tsp = nullptr;
        if (round == 0 && timeout_ms >= 0) {
            ts = to_timespec(static_cast<long long>(timeout_ms) * 1'000'000);
            tsp = &ts;
        } else if (timeout_ms >= 0) {
            const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now());
            ts = to_timespec(left.count() > 0 ? left.count() : 0);
            tsp = &ts;
        }
        // Submits queued watches, re-arms and removes, and waits for one CQE, without
        // entering the kernel when there is nothing to submit and CQEs are already there.
        io_uring_cqe* first = nullptr;
        const int rc = io_uring_submit_and_wait_timeout(&ring_, &first, 1, tsp, nullptr);
        // Harvest even after an error: the events are real, and an error such as -EBUSY
        // (completions backed up) clears once the ring is drained.
        unsigned consumed = 0;
        const std::size_t n = harvest(out, consumed);
        if (n > 0) return static_cast<int>(n);
        if (rc == -ETIME || rc == -EINTR) return 0;
        // Only internal CQEs (removes, polls ended by unwatch, re-arms) woke us: wait again
        // for the time left, so that an unwatch() does not cut the caller's wait short. A few
        // rounds drain them all; past that, return 0 like EINTR.
        if (consumed == 0 || round == io_uring_traits::internal_rounds) return rc < 0 ? rc : 0;
    }
}

} // namespace

std::unique_ptr<poller> make_io_uring_poller(std::string& why) {
    try {
        auto p = std::make_unique<io_uring_poller>();
        std::string step;
        if (!p->init(step)) {
            why = "io_uring unavailable: " + step;
            return nullptr;
        }
        return p;
    } catch (...) {  // std::bad_alloc, from the poller or a message
        try {
            why = "io_uring unavailable: out of memory";
        } catch (...) {
        }
        return nullptr;
    }
}

} // namespace opreg::detail
