// SPDX-License-Identifier: Apache-2.0
// Completion mode (reactor::recv / reactor::send on io_uring), for every registry strategy:
// the kernel does the I/O, and each op ends exactly once through the registry with the
// kernel's result. Real sockets only (socketpairs, loopback TCP).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

#include "support/backends.hpp"
#include "support/sockets.hpp"
#include "support/strategies.hpp"

using namespace opreg;
using namespace std::chrono_literals;
using opreg_test::socket_pair;

namespace {

// How the ops of one test ended: every callback appends here.
struct io_log {
    int calls = 0;
    std::vector<io_completion> ends;
    std::string bytes;  // every recv's data, in order
    void add(const io_completion& x) {
        ++calls;
        ends.push_back(x);
        ends.back().data = {};  // only valid during the callback
        bytes.append(x.data);
    }
};

// Writes all of `s` to a non-blocking fd (a socketpair's peer), retrying on EAGAIN.
void write_all(int fd, std::string_view s) {
    while (!s.empty()) {
        const ssize_t n = ::write(fd, s.data(), s.size());
        if (n > 0) {
            s.remove_prefix(static_cast<std::size_t>(n));
        } else {
            ASSERT_TRUE(n < 0 && errno == EAGAIN) << std::strerror(errno);
            std::this_thread::sleep_for(1ms);
        }
    }
}

// Fills fd's send buffer (the peer does not read): true once a write says EAGAIN.
bool fill_send_buffer(int fd) {
    const std::string chunk(64 * 1024, 'f');
    for (int i = 0; i < 10'000; ++i)
        if (::write(fd, chunk.data(), chunk.size()) < 0) return errno == EAGAIN;
    return false;
}

template <class R>
class ReactorIo : public ::testing::Test {
public:
    void SetUp() override { open({}); }

    void open(reactor_options opt) {
        opt.which = backend::io_uring;
        loop.reset();
        std::string why;
        loop = opreg_test::open_reactor(reg, opt, why);
        if (!loop) GTEST_SKIP() << why;
    }

    template <class Pred>
    bool run_until(Pred pred) {
        const auto give_up = std::chrono::steady_clock::now() + 3s;
        while (!pred() && std::chrono::steady_clock::now() < give_up) loop->run_once(20);
        return pred();
    }
    // Turns the loop for a while whatever happens (to show that nothing more comes).
    void run_for(std::chrono::milliseconds d) {
        const auto end = std::chrono::steady_clock::now() + d;
        while (std::chrono::steady_clock::now() < end) loop->run_once(5);
    }

    result<op_token> recv(int fd, io_log& log) {
        return loop->recv(fd, [&log](const io_completion& x) { log.add(x); });
    }

    R reg{registry_config{.max_fds = 4096}};
    std::unique_ptr<reactor<R>> loop;
};


// An io_uring poller whose recv starts and recv cancels fail on demand, as when no SQE or no
// memory is to be had; everything else goes to the real one.
class faulty_poller final : public detail::poller {
public:
    explicit faulty_poller(std::unique_ptr<detail::poller> inner) : inner_{std::move(inner)} {}
    backend kind() const noexcept override { return inner_->kind(); }
    result<void> watch(int fd, std::uint64_t token) noexcept override { return inner_->watch(fd, token); }
    result<void> unwatch(int fd) noexcept override { return inner_->unwatch(fd); }
    result<std::size_t> wait(std::span<detail::poll_event> out, int timeout_ms) noexcept override {
        return inner_->wait(out, timeout_ms);
    }
    void wake() noexcept override { inner_->wake(); }
    int native_handle() const noexcept override { return inner_->native_handle(); }
    void submit() noexcept override { inner_->submit(); }
    bool supports_io() const noexcept override { return inner_->supports_io(); }
    result<void> recv_multishot(int fd, std::uint32_t id) noexcept override {
        if (fail_recv_starts > 0) {
            --fail_recv_starts;
            return os_failure(EBUSY);
        }
        return inner_->recv_multishot(fd, id);
    }
    result<void> send(int fd, const char* data, std::size_t len, std::uint32_t id) noexcept override {
        return inner_->send(fd, data, len, id);
    }
    result<void> cancel_io(detail::io_kind k, std::uint32_t id) noexcept override {
        if (k == detail::io_kind::recv && fail_recv_cancels > 0) {
            --fail_recv_cancels;
            return os_failure(EBUSY);
        }
        return inner_->cancel_io(k, id);
    }
    result<void> cancel_fd(int fd) noexcept override { return inner_->cancel_fd(fd); }
    const char* buffer_data(std::uint16_t bid) const noexcept override { return inner_->buffer_data(bid); }
    void release_buffer(std::uint16_t bid) noexcept override { inner_->release_buffer(bid); }
    bool single_issuer() const noexcept override { return inner_->single_issuer(); }

    int fail_recv_starts = 0;
    int fail_recv_cancels = 0;

private:
    std::unique_ptr<detail::poller> inner_;
};

// The fixture's reactor on a faulty_poller over io_uring; nullptr (and a skip) without one.
template <class Fixture>
faulty_poller* open_faulty(Fixture& f, const reactor_options& opt) {
    std::string why;
    result<std::unique_ptr<detail::poller>> real = detail::open_poller(
        backend::io_uring, false,
        detail::poller_config{.io_uring_buffers = opt.io_uring_buffers,
                              .io_uring_buffer_bytes = opt.io_uring_buffer_bytes},
        why);
    if (!real || !real.value()->supports_io()) return nullptr;
    auto faulty = std::make_unique<faulty_poller>(std::move(real.value()));
    faulty_poller* seen = faulty.get();
    f.loop.reset();
    f.loop = std::make_unique<reactor<typename std::remove_reference_t<decltype(f.reg)>>>(
        f.reg, std::move(faulty), opt);
    return seen;
}

#if OPREG_TEST_KQUEUE_BUILD
using io_strategies = ::testing::Types<opreg::slot_array>;
#elif OPREG_TEST_REACTOR_QUICK
// make test (quick matrix): the direct and the hand-off strategy, as the reactor suites run
// io_uring there (tests/support/backends.hpp); make check runs every one.
using io_strategies = ::testing::Types<opreg::slot_array, opreg::mpsc_queue>;
#else
using io_strategies = opreg_test::all_strategies;
#endif
TYPED_TEST_SUITE(ReactorIo, io_strategies);

TYPED_TEST(ReactorIo, RecvEndsOnceWithTheBytes) {
    socket_pair p;
    io_log log;
    const result<op_token> t = this->recv(p.a, log);
    ASSERT_TRUE(t.ok());
    this->run_for(30ms);
    EXPECT_EQ(log.calls, 0) << "nothing was sent yet";
    write_all(p.b, "hello");
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    const io_completion& x = log.ends[0];
    EXPECT_EQ(x.op.result, outcome::ready);
    EXPECT_EQ(x.op.token, t.value());
    EXPECT_EQ(x.op.fd, p.a);
    EXPECT_EQ(x.op.dir, direction::read);
    EXPECT_EQ(x.res, 5);
    EXPECT_EQ(log.bytes, "hello");
    this->run_for(30ms);
    EXPECT_EQ(log.calls, 1);
    EXPECT_EQ(this->reg.stats().completed, 1u);
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
}

TYPED_TEST(ReactorIo, BytesThatComeBetweenRecvsWaitForTheNext) {
    socket_pair p;
    io_log log;
    ASSERT_TRUE(this->recv(p.a, log).ok());
    write_all(p.b, "one");
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    write_all(p.b, "two");
    this->run_for(30ms);  // the stream goes on with no op pending: the bytes are kept
    EXPECT_EQ(log.calls, 1);
    ASSERT_TRUE(this->recv(p.a, log).ok());
    ASSERT_TRUE(this->run_until([&] { return log.calls == 2; }));
    EXPECT_EQ(log.bytes, "onetwo");
    EXPECT_TRUE(log.ends[1].op.result == outcome::ready && log.ends[1].res == 3);
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
}

TYPED_TEST(ReactorIo, EndOfStreamIsReadyWithZero) {
    socket_pair p;
    io_log log;
    write_all(p.b, "last");
    ::shutdown(p.b, SHUT_WR);
    ASSERT_TRUE(this->recv(p.a, log).ok());
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    EXPECT_EQ(log.bytes, "last");
    ASSERT_TRUE(this->recv(p.a, log).ok());
    ASSERT_TRUE(this->run_until([&] { return log.calls == 2; }));
    EXPECT_EQ(log.ends[1].op.result, outcome::ready);
    EXPECT_EQ(log.ends[1].res, 0);
    // And again: the end is not lost or repeated as bytes.
    ASSERT_TRUE(this->recv(p.a, log).ok());
    ASSERT_TRUE(this->run_until([&] { return log.calls == 3; }));
    EXPECT_EQ(log.ends[2].res, 0);
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
}

TYPED_TEST(ReactorIo, ACallbackThatRecvsAgainWaitsForNewBytes) {
    socket_pair p;
    io_log log;
    reactor<TypeParam>* loop = this->loop.get();
    int fd = p.a;
    std::function<void(const io_completion&)> again;  // test-only: re-arms from the callback
    again = [&](const io_completion& x) {
        log.add(x);
        if (x.op.result == outcome::ready && x.res > 0 && log.calls < 3) {
            ASSERT_TRUE(loop->recv(fd, [&](const io_completion& y) { again(y); }).ok());
        }
    };
    ASSERT_TRUE(loop->recv(fd, [&](const io_completion& y) { again(y); }).ok());
    write_all(p.b, "a");
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    this->run_for(30ms);
    EXPECT_EQ(log.calls, 1) << "the re-armed recv must not get the same bytes again";
    write_all(p.b, "b");
    ASSERT_TRUE(this->run_until([&] { return log.calls == 2; }));
    EXPECT_EQ(log.bytes, "ab");
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);  // ends the third as closed
    ASSERT_TRUE(this->run_until([&] { return log.calls == 3; }));
    EXPECT_EQ(log.ends[2].op.result, outcome::closed);
}

TYPED_TEST(ReactorIo, SendEndsOnceWithEveryByte) {
    int port = 0;
    const int lfd = opreg_test::listen_loopback(port);
    ASSERT_GE(lfd, 0);
    const int client = opreg_test::connect_loopback(port);
    ASSERT_GE(client, 0);
    const int server = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ASSERT_GE(server, 0);
    // 4 MiB: more than the socket takes at once.
    std::string big(4 << 20, 'x');
    for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
    std::string got;
    std::thread reader([&] {
        char buf[65536];
        for (;;) {
            const ssize_t n = ::read(client, buf, sizeof buf);
            if (n <= 0) break;
            got.append(buf, static_cast<std::size_t>(n));
        }
    });
    // Each send ends once, with what the kernel took; the rest goes in the next, as after a
    // short write.
    io_log log;
    std::size_t sent = 0;
    while (sent < big.size()) {
        const int before = log.calls;
        ASSERT_TRUE(this->loop
                        ->send(server, std::string_view(big).substr(sent),
                               [&](const io_completion& x) { log.add(x); })
                        .ok());
        ASSERT_TRUE(this->run_until([&] { return log.calls == before + 1; }));
        const io_completion& x = log.ends.back();
        ASSERT_EQ(x.op.result, outcome::ready);
        ASSERT_EQ(x.op.dir, direction::write);
        ASSERT_GT(x.res, 0);
        sent += static_cast<std::size_t>(x.res);
    }
    EXPECT_EQ(sent, big.size());
    EXPECT_EQ(this->loop->close(server), errc::ok);
    reader.join();
    EXPECT_TRUE(got == big) << "received " << got.size() << " of " << big.size() << " bytes";
    ::close(client);
    ::close(lfd);
}

// A send the peer does not take: cancelling it ends the op as cancelled, and its callback
// comes only once the kernel has let go of the bytes (so they may then be freed).
TYPED_TEST(ReactorIo, ACancelledSendEndsOnceAfterTheKernelGaveItUp) {
    socket_pair p;
    ASSERT_TRUE(fill_send_buffer(p.a));
    auto bytes = std::make_unique<std::string>(1 << 20, 'z');
    io_log log;
    const result<op_token> t =
        this->loop->send(p.a, *bytes, [&](const io_completion& x) { log.add(x); });
    ASSERT_TRUE(t.ok());
    this->run_for(30ms);
    EXPECT_EQ(log.calls, 0) << "the peer reads nothing: the send cannot end";
    EXPECT_EQ(this->loop->cancel(t.value()), this->reg.hands_off() ? cancel_status::requested
                                                                  : cancel_status::done);
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    EXPECT_EQ(log.ends[0].op.result, outcome::cancelled);
    EXPECT_TRUE(log.ends[0].res == -ECANCELED || log.ends[0].res >= 0) << log.ends[0].res;
    bytes.reset();  // the kernel is done with them
    this->run_for(30ms);
    EXPECT_EQ(log.calls, 1);
    const registry_stats s = this->reg.stats();
    EXPECT_EQ(s.cancelled, 1u);
    EXPECT_EQ(s.in_flight, 0u);
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
}

// close() ends a pending recv and a stuck send as closed, each once, and the fd is really
// closed: the peer sees its end once it reads what was sent.
TYPED_TEST(ReactorIo, CloseEndsEveryOpAndReleasesTheFile) {
    socket_pair p;
    ASSERT_TRUE(fill_send_buffer(p.a));
    const std::string bytes(256 * 1024, 'c');
    io_log rlog, slog;
    ASSERT_TRUE(this->recv(p.a, rlog).ok());
    ASSERT_TRUE(this->loop->send(p.a, bytes, [&](const io_completion& x) { slog.add(x); }).ok());
    this->run_for(30ms);
    ASSERT_EQ(rlog.calls + slog.calls, 0);
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
    ASSERT_TRUE(this->run_until([&] { return rlog.calls == 1 && slog.calls == 1; }));
    EXPECT_EQ(rlog.ends[0].op.result, outcome::closed);
    EXPECT_EQ(slog.ends[0].op.result, outcome::closed);
    // The peer drains and then reads end-of-file: nothing in the kernel holds the file.
    const int fl = ::fcntl(p.b, F_GETFL);
    ::fcntl(p.b, F_SETFL, fl & ~O_NONBLOCK);
    timeval tv{.tv_sec = 3, .tv_usec = 0};
    ::setsockopt(p.b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[65536];
    ssize_t n;
    while ((n = ::read(p.b, buf, sizeof buf)) > 0) {}
    EXPECT_EQ(n, 0) << "no end of file: " << std::strerror(errno);
    this->run_for(30ms);
    EXPECT_EQ(rlog.calls + slog.calls, 2);
    EXPECT_EQ(this->reg.stats().in_flight, 0u);
}

// A recv that times out ends as timed_out; the stream goes on and the next recv gets the
// bytes, in order, none lost.
TYPED_TEST(ReactorIo, ATimedOutRecvLosesNoBytes) {
    socket_pair p;
    io_log log;
    const result<op_token> t = this->recv(p.a, log);
    ASSERT_TRUE(t.ok());
    this->loop->expire_after(t.value(), 20ms);
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    EXPECT_EQ(log.ends[0].op.result, outcome::timed_out);
    write_all(p.b, "late");
    this->run_for(20ms);
    ASSERT_TRUE(this->recv(p.a, log).ok());
    ASSERT_TRUE(this->run_until([&] { return log.calls == 2; }));
    EXPECT_EQ(log.ends[1].op.result, outcome::ready);
    EXPECT_EQ(log.bytes, "late");
    EXPECT_EQ(this->reg.stats().timed_out, 1u);
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
}

// The token of an ended recv names nothing: cancelling it leaves the newer recv pending,
// and that one gets the bytes.
TYPED_TEST(ReactorIo, AStaleTokenNeverReachesTheNewerRecv) {
    socket_pair p;
    io_log first, second;
    const result<op_token> old = this->recv(p.a, first);
    ASSERT_TRUE(old.ok());
    (void)this->loop->cancel(old.value());
    ASSERT_TRUE(this->run_until([&] { return first.calls == 1; }));
    ASSERT_TRUE(this->recv(p.a, second).ok());
    (void)this->loop->cancel(old.value());
    this->run_for(30ms);
    EXPECT_EQ(second.calls, 0) << "the old token ended the newer op";
    write_all(p.b, "new");
    ASSERT_TRUE(this->run_until([&] { return second.calls == 1; }));
    EXPECT_EQ(second.bytes, "new");
    EXPECT_EQ(first.calls, 1);
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
}

// Bytes that come while no recv is pending are held up to recv_hold_limit; past it the
// kernel's recv stops and TCP holds the rest. Every byte arrives, in order, none twice.
TYPED_TEST(ReactorIo, HoldLimitLosesNothing) {
    this->open(reactor_options{.recv_hold_limit = 4096});
    if (this->IsSkipped()) return;
    socket_pair p;
    std::string sent;
    for (int i = 0; sent.size() < 200'000; ++i) sent += std::to_string(i) + ",";
    std::thread writer([&] {
        const int fl = ::fcntl(p.b, F_GETFL);
        ::fcntl(p.b, F_SETFL, fl & ~O_NONBLOCK);
        (void)!::write(p.b, sent.data(), sent.size());
    });
    io_log log;
    ASSERT_TRUE(this->recv(p.a, log).ok());
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    this->run_for(50ms);  // no op: the stream fills its hold and pauses
    while (log.bytes.size() < sent.size()) {
        const int before = log.calls;
        ASSERT_TRUE(this->recv(p.a, log).ok());
        ASSERT_TRUE(this->run_until([&] { return log.calls == before + 1; }))
            << "stalled after " << log.bytes.size() << " bytes";
        ASSERT_EQ(log.ends.back().op.result, outcome::ready);
        ASSERT_GT(log.ends.back().res, 0);
    }
    writer.join();
    EXPECT_TRUE(log.bytes == sent) << log.bytes.size() << " vs " << sent.size();
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
}

// More arrivals in one turn than there are provided buffers: a recv that finds none ends
// with -ENOBUFS inside the reactor and starts again; no connection loses a byte.
TYPED_TEST(ReactorIo, FewBuffersManyConnections) {
    this->open(reactor_options{.io_uring_buffers = 2, .io_uring_buffer_bytes = 64});
    if (this->IsSkipped()) return;
    constexpr int conns = 8;
    std::vector<std::unique_ptr<socket_pair>> pairs;
    std::vector<io_log> logs(conns);
    std::vector<std::string> want(conns);
    for (int i = 0; i < conns; ++i) {
        pairs.push_back(std::make_unique<socket_pair>());
        for (int k = 0; k < 40; ++k) want[i] += "c" + std::to_string(i) + "-" + std::to_string(k) + ";";
    }
    for (int i = 0; i < conns; ++i) write_all(pairs[i]->b, want[i]);
    for (int round = 0; round < 10'000; ++round) {
        bool done = true;
        for (int i = 0; i < conns; ++i) {
            io_log& l = logs[i];
            if (l.bytes.size() < want[i].size()) {
                done = false;
                (void)this->recv(pairs[i]->a, l);  // busy while the last is pending
            }
        }
        if (done) break;
        this->loop->run_once(5);
    }
    for (int i = 0; i < conns; ++i) {
        EXPECT_EQ(logs[i].bytes, want[i]) << "connection " << i;
        EXPECT_EQ(this->loop->close(pairs[i]->take_a()), errc::ok);
    }
    this->run_for(20ms);
    EXPECT_EQ(this->reg.stats().in_flight, 0u);
}

TYPED_TEST(ReactorIo, RecvAndSendRefuseWhatTheyCannotDo) {
    socket_pair p;
    io_log log;
    ASSERT_TRUE(this->recv(p.a, log).ok());
    EXPECT_EQ(this->recv(p.a, log).error(), errc::busy);
    EXPECT_EQ(this->loop->recv(p.a, io_callback{}).error(), errc::no_callback);
    EXPECT_EQ(this->loop->send(p.a, "x", io_callback{}).error(), errc::no_callback);
    EXPECT_EQ(this->loop->recv(1 << 20, [](const io_completion&) {}).error(),
              errc::fd_out_of_range);
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
    this->run_for(20ms);
    EXPECT_EQ(this->reg.stats().in_flight, 0u);
    int ended_closed = 0;
    for (const io_completion& x : log.ends) ended_closed += x.op.result == outcome::closed;
    EXPECT_GE(ended_closed, 1);
}

// SINGLE_ISSUER + DEFER_TASKRUN where the kernel has them: the same behaviour, on a reactor
// made and driven by one thread.
TYPED_TEST(ReactorIo, SingleIssuerRingWorksTheSame) {
    this->open(reactor_options{.io_uring_single_issuer = true});
    if (this->IsSkipped()) return;
    // A kernel that refuses SINGLE_ISSUER/DEFER_TASKRUN gives the ordinary ring, which the
    // other cases test: this one would test nothing new there, and says so.
    if (!this->loop->single_issuer())
        GTEST_SKIP() << "this kernel refused SINGLE_ISSUER | DEFER_TASKRUN: the ordinary ring ran";
    EXPECT_GE(this->loop->native_handle(), 0) << "a handle another loop can wait on, in both modes";
    socket_pair p;
    io_log log;
    ASSERT_TRUE(this->recv(p.a, log).ok());
    write_all(p.b, "ping");
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    EXPECT_EQ(log.bytes, "ping");
    io_log slog;
    ASSERT_TRUE(this->loop->send(p.a, "pong", [&](const io_completion& x) { slog.add(x); }).ok());
    ASSERT_TRUE(this->run_until([&] { return slog.calls == 1; }));
    EXPECT_EQ(slog.ends[0].res, 4);
    char buf[8];
    EXPECT_EQ(::read(p.b, buf, sizeof buf), 4);
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
}

// A reactor destroyed with a recv and a send pending: both ops end in the registry, their
// callbacks are destroyed without running, and the kernel has given the send's bytes back.
// The registry then serves a new reactor on the same fd as if nothing had been there.
TYPED_TEST(ReactorIo, DestroyedWithOpsPendingLeavesTheRegistryClean) {
    socket_pair p;
    ASSERT_TRUE(fill_send_buffer(p.a));
    auto bytes = std::make_unique<std::string>(64 * 1024, 's');
    int ran = 0;
    ASSERT_TRUE(this->loop->recv(p.a, [&ran](const io_completion&) { ++ran; }).ok());
    ASSERT_TRUE(this->loop->send(p.a, *bytes, [&ran](const io_completion&) { ++ran; }).ok());
    this->run_for(20ms);
    ASSERT_EQ(ran, 0);
    this->loop.reset();
    EXPECT_EQ(ran, 0) << "a callback ran from the destructor";
    bytes.reset();  // the kernel is done with them
    EXPECT_EQ(this->reg.stats().in_flight, 0u) << "ops left pending, pointing into the reactor";
    this->open({});
    io_log log;
    ASSERT_TRUE(this->recv(p.a, log).ok()) << "the fd is still busy in the registry";
    char drain[65536];
    while (::read(p.b, drain, sizeof drain) > 0) {}
    write_all(p.b, "after");
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    EXPECT_EQ(log.bytes, "after");
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
    EXPECT_EQ(ran, 0);
}

// Bytes the kernel brought in a turn, then a timer of that turn closes the fd: the recv
// ended ready with the bytes when they came, whatever the strategy (a hand-off registry
// ends it there too), and the close finds nothing left to end.
TYPED_TEST(ReactorIo, BytesThatCameBeforeACloseInTheSameTurnAreDelivered) {
    socket_pair p;
    io_log log;
    ASSERT_TRUE(this->recv(p.a, log).ok());
    this->run_for(10ms);
    write_all(p.b, "data");
    std::this_thread::sleep_for(20ms);
    reactor<TypeParam>* loop = this->loop.get();
    const int fd = p.take_a();
    (void)loop->after(0ms, [loop, fd] { EXPECT_EQ(loop->close(fd), errc::ok); });
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    this->run_for(20ms);
    ASSERT_EQ(log.calls, 1);
    EXPECT_EQ(log.ends[0].op.result, outcome::ready);
    EXPECT_EQ(log.ends[0].res, 4);
    EXPECT_EQ(log.bytes, "data");
    EXPECT_EQ(this->reg.stats().in_flight, 0u);
}

// A recv and a send of one fd complete in one turn, and the recv's callback closes the fd:
// closed wins (registry.hpp), so the send does not end ready after the close.
TYPED_TEST(ReactorIo, ASendNeverEndsReadyAfterItsFdWasClosed) {
    socket_pair p;
    ASSERT_TRUE(fill_send_buffer(p.a));
    reactor<TypeParam>* loop = this->loop.get();
    const int fd = p.take_a();
    bool closed = false;
    int recv_calls = 0;
    ASSERT_TRUE(loop->recv(fd, [&](const io_completion&) {
                        ++recv_calls;
                        if (!closed) {
                            EXPECT_EQ(loop->close(fd), errc::ok);
                        }
                        closed = true;
                    }).ok());
    io_log slog;
    bool ended_ready_after_close = false;
    ASSERT_TRUE(loop->send(fd, "y",
                           [&](const io_completion& x) {
                               slog.add(x);
                               ended_ready_after_close = closed && x.op.result == outcome::ready;
                           })
                    .ok());
    this->run_for(20ms);
    ASSERT_EQ(slog.calls, 0);
    // Both become due together: bytes for the recv, then room for the send.
    write_all(p.b, "x");
    char drain[65536];
    while (::read(p.b, drain, sizeof drain) > 0) {}
    ASSERT_TRUE(this->run_until([&] { return recv_calls == 1 && slog.calls == 1; }));
    this->run_for(20ms);
    EXPECT_EQ(recv_calls, 1);
    EXPECT_EQ(slog.calls, 1);
    EXPECT_FALSE(ended_ready_after_close)
        << "the send ended " << to_string(slog.ends[0].op.result) << " after its fd was closed";
    EXPECT_EQ(this->reg.stats().in_flight, 0u);
}

// The first completion example (docs/reactor.md, once the README) closed again on outcome::closed. Such a close is a
// reported no-op (stale), whatever the strategy and whenever the callback runs: the new file
// that took the number meanwhile stays open. Here the number is reused in the close's own
// turn (a timer closes, a post, after the timers, opens), before a hand-off registry runs
// the callback.
TYPED_TEST(ReactorIo, ACloseFromAClosedCallbackIsStaleAndSparesTheNumbersNewFile) {
    auto first = std::make_unique<socket_pair>();
    reactor<TypeParam>* loop = this->loop.get();
    const int fd = first->take_a();
    errc again = errc::ok;
    int calls = 0;
    ASSERT_TRUE(loop->recv(fd, [&](const io_completion& x) {
                        ++calls;
                        if (x.op.result != outcome::ready) again = loop->close(fd);
                    }).ok());
    this->run_for(10ms);
    std::unique_ptr<socket_pair> second;
    (void)loop->after(0ms, [&] { EXPECT_EQ(loop->close(fd), errc::ok); });
    ASSERT_TRUE(loop->post([&] { second = std::make_unique<socket_pair>(); }));
    ASSERT_TRUE(this->run_until([&] { return calls == 1; }));
    ASSERT_NE(second, nullptr);
    ASSERT_EQ(second->a, fd) << "the number was not reused; the test needs it to be";
    EXPECT_EQ(again, errc::stale);
    EXPECT_NE(::fcntl(second->a, F_GETFD), -1) << "the second close closed the new file";
    io_log log;
    ASSERT_TRUE(this->recv(second->a, log).ok());
    write_all(second->b, "new");
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    EXPECT_EQ(log.bytes, "new");
    EXPECT_EQ(this->loop->close(second->take_a()), errc::ok);
}

// A callback of the ops that close() ends cannot give the dying fd new work or close it
// again, whenever it runs (inside close(), or later for a hand-off registry): refused as
// stale, nothing left pending for the next file with that number.
TYPED_TEST(ReactorIo, CallbacksOfACloseCannotReArmTheDyingFd) {
    socket_pair p;
    reactor<TypeParam>* loop = this->loop.get();
    const int fd = p.take_a();
    std::vector<errc> refused;
    int calls = 0;
    ASSERT_TRUE(loop->recv(fd, [&](const io_completion& x) {
                        ++calls;
                        EXPECT_EQ(x.op.result, outcome::closed);
                        refused.push_back(loop->recv(fd, [](const io_completion&) {}).error());
                        refused.push_back(loop->send(fd, "z", [](const io_completion&) {}).error());
                        refused.push_back(
                            loop->arm(fd, direction::read, [](const completion&) {}).error());
                        refused.push_back(loop->close(fd));
                    }).ok());
    EXPECT_EQ(loop->close(fd), errc::ok);
    ASSERT_TRUE(this->run_until([&] { return calls == 1; }));
    this->run_for(20ms);
    EXPECT_EQ(refused, (std::vector<errc>{errc::stale, errc::stale, errc::stale, errc::stale}));
    EXPECT_EQ(this->reg.stats().in_flight, 0u);
    socket_pair next;  // the number again: nothing of the old file waits on it
    ASSERT_EQ(next.a, fd);
    io_log log;
    ASSERT_TRUE(this->recv(next.a, log).ok()) << "busy: an op of the closed file was left pending";
    write_all(next.b, "fresh");
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    EXPECT_EQ(log.bytes, "fresh");
    EXPECT_EQ(this->loop->close(next.take_a()), errc::ok);
}

// A send stuck on a full socket, the fd closed, its number reused at once: the new file's
// send is not refused busy by the old one (a hand-off registry ends it inside close()).
TYPED_TEST(ReactorIo, ASendSlotIsFreeAsSoonAsItsFdIsClosed) {
    auto old = std::make_unique<socket_pair>();
    ASSERT_TRUE(fill_send_buffer(old->a));
    io_log first;
    ASSERT_TRUE(this->loop->send(old->a, "stuck", [&](const io_completion& x) { first.add(x); })
                    .ok());
    const int fd = old->take_a();
    EXPECT_EQ(this->loop->close(fd), errc::ok);
    socket_pair next;
    ASSERT_EQ(next.a, fd);
    io_log second;
    const result<op_token> t =
        this->loop->send(next.a, "new", [&](const io_completion& x) { second.add(x); });
    ASSERT_TRUE(t.ok()) << to_string(t.error());
    ASSERT_TRUE(this->run_until([&] { return first.calls == 1 && second.calls == 1; }));
    EXPECT_EQ(first.ends[0].op.result, outcome::closed);
    EXPECT_EQ(second.ends[0].op.result, outcome::ready);
    EXPECT_EQ(second.ends[0].res, 3);
    EXPECT_EQ(this->loop->close(next.take_a()), errc::ok);
}

// A send of 4 GiB or more takes what the kernel takes (at most max_send_bytes), never 0 with
// ready: a "send the rest" loop progresses. The 4 GiB are a read-only mapping of the zero
// page: nothing is touched but what the socket takes.
TYPED_TEST(ReactorIo, ASendOfFourGiBOrMoreProgresses) {
    if (sizeof(std::size_t) < 8) GTEST_SKIP() << "a 32-bit size_t cannot name 4 GiB";
    constexpr std::size_t four_gib = std::size_t{1} << 32;
    void* mem = ::mmap(nullptr, four_gib + 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
    if (mem == MAP_FAILED) GTEST_SKIP() << "no 4 GiB of address space: " << std::strerror(errno);
    socket_pair p;
    for (const std::size_t len : {four_gib, four_gib + 1}) {
        io_log log;
        ASSERT_TRUE(this->loop
                        ->send(p.a, std::string_view(static_cast<const char*>(mem), len),
                               [&](const io_completion& x) { log.add(x); })
                        .ok());
        ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
        EXPECT_EQ(log.ends[0].op.result, outcome::ready);
        EXPECT_GT(log.ends[0].res, 0) << "a send of " << len << " bytes took nothing";
        char drain[65536];
        while (::read(p.b, drain, sizeof drain) > 0) {}
    }
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
    this->run_for(10ms);
    ::munmap(mem, four_gib + 4096);
}

// Held bytes live in buffers reused across streams: a stream holding a few bytes inline
// when a spare buffer comes back keeps them (they were once swapped away with it).
TYPED_TEST(ReactorIo, HeldBytesSurviveTheSpareBuffers) {
    socket_pair a, b;
    io_log la, lb;
    ASSERT_TRUE(this->recv(a.a, la).ok());  // both streams running, no spare buffer yet
    write_all(a.b, "1");
    ASSERT_TRUE(this->recv(b.a, lb).ok());
    write_all(b.b, "2");
    ASSERT_TRUE(this->run_until([&] { return la.calls == 1 && lb.calls == 1; }));
    write_all(a.b, "a");  // held by a, inline
    this->run_for(20ms);
    write_all(b.b, std::string(200, 'B'));  // held by b in a buffer of its own...
    this->run_for(20ms);
    ASSERT_TRUE(this->recv(b.a, lb).ok());  // ...which goes to the spares once delivered
    ASSERT_TRUE(this->run_until([&] { return lb.calls == 2; }));
    write_all(a.b, "b");  // a holds more while a spare is there
    this->run_for(20ms);
    ASSERT_TRUE(this->recv(a.a, la).ok());
    ASSERT_TRUE(this->run_until([&] { return la.calls == 2; }));
    EXPECT_EQ(la.bytes, "1ab");
    EXPECT_EQ(this->loop->close(a.take_a()), errc::ok);
    EXPECT_EQ(this->loop->close(b.take_a()), errc::ok);
}

// A recv that cannot be started (no SQE to be had) ends its op with that error once; the
// stream is not dead: the next recv starts it again and gets the bytes.
TYPED_TEST(ReactorIo, ARecvThatCouldNotStartIsTriedAgain) {
    faulty_poller* faulty = open_faulty(*this, reactor_options{});
    if (faulty == nullptr) GTEST_SKIP() << "no io_uring completion mode here";
    socket_pair p;
    faulty->fail_recv_starts = 1;
    io_log log;
    ASSERT_TRUE(this->recv(p.a, log).ok());
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    EXPECT_EQ(log.ends[0].op.result, outcome::ready);
    EXPECT_EQ(log.ends[0].res, -EBUSY);
    write_all(p.b, "later");
    ASSERT_TRUE(this->recv(p.a, log).ok());
    ASSERT_TRUE(this->run_until([&] { return log.calls == 2; }));
    EXPECT_EQ(log.ends[1].res, 5) << "the failed start was kept as the stream's end";
    EXPECT_EQ(log.bytes, "later");
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
}

// A callback that recvs again while the recv cannot start is not called back inside its
// own recv(): each failure ends on the loop, so a retry loop cannot recurse without end.
TYPED_TEST(ReactorIo, RetriesOfARecvThatCannotStartDoNotNest) {
    faulty_poller* faulty = open_faulty(*this, reactor_options{});
    if (faulty == nullptr) GTEST_SKIP() << "no io_uring completion mode here";
    socket_pair p;
    faulty->fail_recv_starts = 50;
    reactor<TypeParam>* loop = this->loop.get();
    int calls = 0, depth = 0, deepest = 0;
    std::function<void(const io_completion&)> again;  // test-only: re-arms from the callback
    again = [&](const io_completion& x) {
        ++calls;
        deepest = std::max(deepest, ++depth);
        if (x.res == -EBUSY) {
            EXPECT_TRUE(loop->recv(p.a, [&](const io_completion& y) { again(y); }).ok());
        }
        --depth;
    };
    ASSERT_TRUE(loop->recv(p.a, [&](const io_completion& y) { again(y); }).ok());
    ASSERT_TRUE(this->run_until([&] { return calls == 50; }));
    EXPECT_EQ(deepest, 1) << "callbacks ran inside the recv() of the one before";
    write_all(p.b, "ok");
    ASSERT_TRUE(this->run_until([&] { return calls == 51; }));
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
}

// The held bytes of a stream with no recv pending stay within recv_hold_limit plus what
// the kernel had already put in provided buffers when the pause reached it (at most the
// buffer ring and the buffer that crossed the limit), even when the first pause cannot be
// asked for: it is asked again at the next arrival.
TYPED_TEST(ReactorIo, HeldBytesStayWithinTheirBound) {
    const reactor_options opt{.io_uring_buffers = 256, .io_uring_buffer_bytes = 1024,
                              .recv_hold_limit = 4096};
    faulty_poller* faulty = open_faulty(*this, opt);
    if (faulty == nullptr) GTEST_SKIP() << "no io_uring completion mode here";
    const std::size_t bound =
        opt.recv_hold_limit + (opt.io_uring_buffers + 1) * opt.io_uring_buffer_bytes;
    socket_pair p;
    faulty->fail_recv_cancels = 1;
    io_log log;
    ASSERT_TRUE(this->recv(p.a, log).ok());
    write_all(p.b, "go");
    ASSERT_TRUE(this->run_until([&] { return log.calls == 1; }));
    // No recv pending now; the peer sends far more than the bound, in pieces.
    std::string sent;
    for (int i = 0; sent.size() < 2 * 1024 * 1024; ++i) sent += std::to_string(i) + ";";
    std::thread writer([&] {
        const int fl = ::fcntl(p.b, F_GETFL);
        ::fcntl(p.b, F_SETFL, fl & ~O_NONBLOCK);
        constexpr std::size_t piece = 16 * 1024;
        for (std::size_t at = 0; at < sent.size(); at += piece)
            (void)!::write(p.b, sent.data() + at, std::min(piece, sent.size() - at));
    });
    this->run_for(100ms);
    std::string got;
    while (got.size() < sent.size()) {
        const int before = log.calls;
        ASSERT_TRUE(this->recv(p.a, log).ok());
        ASSERT_TRUE(this->run_until([&] { return log.calls == before + 1; }))
            << "stalled after " << got.size() << " bytes";
        const io_completion& x = log.ends.back();
        ASSERT_EQ(x.op.result, outcome::ready);
        ASSERT_GT(x.res, 0);
        EXPECT_LE(static_cast<std::size_t>(x.res), bound) << "held beyond the bound";
        got = log.bytes.substr(2);
        this->run_for(5ms);
    }
    writer.join();
    EXPECT_TRUE(got == sent) << got.size() << " of " << sent.size();
    EXPECT_EQ(this->loop->close(p.take_a()), errc::ok);
}

// Readiness backends have no completion mode: a clear refusal, nothing armed.
TEST(ReactorIoElsewhere, ReadinessBackendsRefuseWithENOTSUP) {
    slot_array reg{registry_config{.max_fds = 1024}};
    reactor<slot_array> loop{reg, reactor_options{.which = native_backend()}};
    ASSERT_FALSE(loop.supports_io());
    socket_pair p;
    const result<op_token> r = loop.recv(p.a, [](const io_completion&) {});
    EXPECT_EQ(r.error(), errc::os_error);
    EXPECT_EQ(r.os_error(), ENOTSUP);
    EXPECT_EQ(loop.send(p.a, "x", [](const io_completion&) {}).os_error(), ENOTSUP);
    EXPECT_EQ(reg.stats().armed, 0u);
}

}  // namespace
