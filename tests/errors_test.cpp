// SPDX-License-Identifier: Apache-2.0
// The one error convention (registry.hpp, ERRORS): a failed system call comes back as
// errc::os_error with its errno value in the result, from the reactor, the acceptor and every
// backend hook alike; only constructors throw, with the OS error in the exception. And a
// reactor runs on a poller its user opened or wrapped.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

#include <opreg/detail/poller.hpp>

#include "support/backends.hpp"
#include "support/sockets.hpp"
#include "support/strategies.hpp"

using namespace opreg;
using opreg_test::record;
using opreg_test::recorder;
using opreg_test::socket_pair;

namespace {

// An fd number below max_fds that names no open file.
int unused_fd() {
    const int fd = ::dup(0);
    ::close(fd);
    return fd;
}

// Opens the backend `which` alone; nullptr with the reason when this machine has none.
std::unique_ptr<detail::poller> open_only(backend which, std::string& why) {
    result<std::unique_ptr<detail::poller>> p =
        detail::open_poller(which, false, detail::poller_config{}, why);
    if (!p) return nullptr;
    return std::move(p.value());
}

}  // namespace

TEST(Errors, AResultCarriesTheOsErrorBesideItsErrc) {
    const result<int> r = os_failure(EMFILE);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error(), errc::os_error);
    EXPECT_EQ(r.os_error(), EMFILE);
    EXPECT_EQ(r.value_or(-1), -1);
    const result<int> busy = errc::busy;
    EXPECT_EQ(busy.error(), errc::busy);
    EXPECT_EQ(busy.os_error(), 0);
    const result<void> fine;
    EXPECT_TRUE(fine.ok());
    const result<void> passed_on = r.why();
    EXPECT_EQ(passed_on.error(), errc::os_error);
    EXPECT_EQ(passed_on.os_error(), EMFILE);
    EXPECT_EQ(result<int>{7}.value_or(-1), 7);
}

// reactor::watch on an fd number that names no file: the kernel's EBADF is in the result.
TEST(Errors, AWatchTheKernelRefusesReportsItsErrno) {
    slot_array reg{registry_config{.max_fds = 4096}};
    reactor<slot_array> loop{reg};
    const int fd = unused_fd();
    const result<fd_token> t = loop.watch(fd);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error(), errc::os_error);
    EXPECT_EQ(t.os_error(), EBADF);
    // A registry refusal has no OS error.
    const result<fd_token> out = loop.watch(5000);
    EXPECT_EQ(out.error(), errc::fd_out_of_range);
    EXPECT_EQ(out.os_error(), 0);
}

TEST(Errors, AnAcceptorOnAClosedFdReportsItsErrno) {
    slot_array reg{registry_config{.max_fds = 4096}};
    reactor<slot_array> loop{reg};
    // Two free numbers: the acceptor's reserve fd takes the lowest free one.
    const int low = ::dup(0), high = ::dup(0);
    ::close(low);
    ::close(high);
    acceptor<slot_array> acc{loop, high, [](int fd) { ::close(fd); }};
    const result<void> r = acc.start();
    EXPECT_EQ(r.error(), errc::os_error);
    EXPECT_EQ(r.os_error(), EBADF);
}

// Every backend built here answers its hooks in results: a second watch of one fd is EEXIST
// (not asked of kqueue, where EV_ADD of a filter already there updates it), an unwatch of an
// fd it does not watch is ENOENT. A backend this kernel refuses is a skip.
class ErrorsOnBackend : public ::testing::TestWithParam<backend> {};

TEST_P(ErrorsOnBackend, HooksAnswerInResults) {
    const backend which = GetParam();
    std::string why;
    std::unique_ptr<detail::poller> p = open_only(which, why);
    if (!p) GTEST_SKIP() << why;
    socket_pair sp;
    ASSERT_TRUE(p->watch(sp.a, 7).ok());
    if (which != backend::kqueue) {
        const result<void> again = p->watch(sp.a, 7);
        EXPECT_EQ(again.error(), errc::os_error);
        EXPECT_EQ(again.os_error(), EEXIST);
    }
    ASSERT_TRUE(p->unwatch(sp.a).ok());
    const result<void> gone = p->unwatch(sp.a);
    EXPECT_EQ(gone.error(), errc::os_error);
    EXPECT_EQ(gone.os_error(), ENOENT);
    // (Events already in flight before the unwatch may still come: not counted here.)
    detail::poll_event out[4];
    EXPECT_TRUE(p->wait(out, 0).ok());
}

INSTANTIATE_TEST_SUITE_P(Built, ErrorsOnBackend, opreg_test::built_backends,
                         opreg_test::backend_name);

// A backend that is not built here: the factory's result says ENOSYS, with a reason, and
// the reactor's constructor throws that same error.
TEST(Errors, ABackendNotBuiltHereIsENOSYSAndTheConstructorThrowsIt) {
    // epoll is built wherever kqueue is not, and the other way round.
    const backend native = native_backend();
    const backend absent = native == backend::kqueue ? backend::epoll : backend::kqueue;
    const std::string absent_name{to_string(absent)};
    std::string why;
    const result<std::unique_ptr<detail::poller>> p =
        detail::open_poller(absent, false, detail::poller_config{}, why);
    ASSERT_FALSE(p.ok()) << absent_name << " is built here too";
    EXPECT_EQ(p.error(), errc::os_error);
    EXPECT_EQ(p.os_error(), ENOSYS);
    EXPECT_NE(why.find(absent_name), std::string::npos) << why;
    slot_array reg{registry_config{.max_fds = 64}};
    try {
        reactor<slot_array> loop{reg, reactor_options{.which = absent, .fall_back = false}};
        ADD_FAILURE() << "the constructor did not throw";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOSYS);
        EXPECT_NE(std::string(e.what()).find(absent_name), std::string::npos) << e.what();
    }
    // With fall_back the reactor runs on the native backend and says why.
    reactor<slot_array> loop{reg, reactor_options{.which = absent}};
    EXPECT_EQ(loop.active_backend(), native);
    EXPECT_NE(loop.note().find("using " + std::string(to_string(native))), std::string::npos)
        << loop.note();
}

// A poller that counts what goes through it to the real one.
class counting_poller final : public detail::poller {
public:
    explicit counting_poller(std::unique_ptr<detail::poller> inner) : inner_{std::move(inner)} {}
    backend kind() const noexcept override { return inner_->kind(); }
    result<void> watch(int fd, std::uint64_t token) noexcept override {
        ++watches;
        return inner_->watch(fd, token);
    }
    result<void> unwatch(int fd) noexcept override {
        ++unwatches;
        return inner_->unwatch(fd);
    }
    result<std::size_t> wait(std::span<detail::poll_event> out, int timeout_ms) noexcept override {
        ++waits;
        return inner_->wait(out, timeout_ms);
    }
    void wake() noexcept override {
        wakes.fetch_add(1);
        inner_->wake();
    }
    bool reports_hangup() const noexcept override { return inner_->reports_hangup(); }
    int watches = 0, unwatches = 0, waits = 0;
    std::atomic<int> wakes{0};

private:
    std::unique_ptr<detail::poller> inner_;
};

TEST(ReactorOnAPoller, RunsOnTheWrappedPollerItWasGiven) {
    std::string why;
    std::unique_ptr<detail::poller> native = open_only(native_backend(), why);
    ASSERT_NE(native, nullptr) << why;
    auto counting = std::make_unique<counting_poller>(std::move(native));
    counting_poller& seen = *counting;
    slot_array reg{registry_config{.max_fds = 4096}};
    {
        reactor<slot_array> loop{reg, std::move(counting)};
        EXPECT_EQ(loop.active_backend(), native_backend());
        EXPECT_EQ(seen.watches, 0) << "the wake-up is the backend's own";
        socket_pair p;
        ASSERT_TRUE(loop.watch(p.a).ok());
        record rec;
        ASSERT_TRUE(loop.arm(p.a, direction::read, recorder(rec)).ok());
        ASSERT_EQ(::write(p.b, "x", 1), 1);
        for (int i = 0; i < 100 && rec.calls == 0; ++i) loop.run_once(10);
        ASSERT_EQ(rec.calls, 1);
        EXPECT_EQ(rec.last.result, outcome::ready);
        EXPECT_EQ(loop.close(p.take_a()), errc::ok);
        EXPECT_EQ(seen.watches, 1);
        EXPECT_EQ(seen.unwatches, 1);
        EXPECT_GE(seen.waits, 1);
        // A post from another thread wakes the loop through the backend's hook.
        bool ran = false;
        std::thread poster([&] { ASSERT_TRUE(loop.post([&ran] { ran = true; })); });
        poster.join();
        EXPECT_EQ(seen.wakes.load(), 1);
        for (int i = 0; i < 100 && !ran; ++i) loop.run_once(1000);
        EXPECT_TRUE(ran);
    }
}
