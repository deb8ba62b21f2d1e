// SPDX-License-Identifier: Apache-2.0
// Reactors on several threads (sharing one registry, or each owning one), and accept-side
// robustness when the process runs out of fds.
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>

#include "support/sockets.hpp"

using namespace opreg;
using namespace std::chrono_literals;
using opreg_test::socket_pair;

namespace {

// Echoes whatever arrives on fd back to it, re-arming after each read.
template <class R>
struct echo {
    reactor<R>* loop;
    int fd;
    int served = 0;  // reactor thread only; read after join

    void arm() {
        echo* self = this;
        (void)loop->arm(fd, direction::read, [self](const completion& c) { self->on_read(c); });
    }
    void on_read(const completion& c) {
        if (c.result != outcome::ready) return;
        char buf[256];
        ssize_t n;
        while ((n = ::read(fd, buf, sizeof buf)) > 0) {
            served += int(n);
            (void)!::write(fd, buf, std::size_t(n));
        }
        arm();
    }
};

bool echo_round_trip(int fd) {
    if (::write(fd, "e", 1) != 1) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1) return false;
    char c;
    return ::read(fd, &c, 1) == 1 && c == 'e';
}

// Two reactor threads; `regs` holds one registry (shared) or two (one each).
template <class R>
void two_reactors_echo(std::vector<std::unique_ptr<R>>& regs) {
    constexpr int rounds = 200;
    socket_pair pairs[2];
    std::unique_ptr<reactor<R>> loops[2];
    std::unique_ptr<echo<R>> echoes[2];
    for (int i = 0; i < 2; ++i) {
        loops[i] = std::make_unique<reactor<R>>(*regs[regs.size() == 1 ? 0 : i]);
        ASSERT_TRUE(loops[i]->watch(pairs[i].a).ok());
        echoes[i] = std::make_unique<echo<R>>(echo<R>{loops[i].get(), pairs[i].a});
        echoes[i]->arm();
    }
    std::thread threads[2];
    for (int i = 0; i < 2; ++i) threads[i] = std::thread([&, i] { loops[i]->run(); });
    int ok = 0;
    for (int r = 0; r < rounds; ++r)
        for (int i = 0; i < 2; ++i) ok += echo_round_trip(pairs[i].b);
    for (auto& l : loops) l->stop();
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok, 2 * rounds);
    for (auto& e : echoes) EXPECT_EQ(e->served, rounds);
    for (int i = 0; i < 2; ++i) loops[i]->close(pairs[i].take_a());
}

}  // namespace

TEST(ReactorThreads, TwoReactorsShareOneSlotArray) {
    std::vector<std::unique_ptr<slot_array>> regs;
    regs.push_back(std::make_unique<slot_array>(registry_config{.max_fds = 1024}));
    two_reactors_echo(regs);
}

TEST(ReactorThreads, TwoReactorsShareOneShardedMap) {
    std::vector<std::unique_ptr<sharded_map>> regs;
    regs.push_back(std::make_unique<sharded_map>(registry_config{.max_fds = 1024}));
    two_reactors_echo(regs);
}

TEST(ReactorThreads, TwoReactorsEachOwnAnMpscQueue) {
    std::vector<std::unique_ptr<mpsc_queue>> regs;
    for (int i = 0; i < 2; ++i)
        regs.push_back(std::make_unique<mpsc_queue>(registry_config{.max_fds = 1024}));
    two_reactors_echo(regs);
}

// TCP_NODELAY on accepted connections when asked for, the socket's default otherwise.
TEST(Acceptor, SetsTcpNoDelayWhenAsked) {
    for (const bool asked : {true, false}) {
        int port = 0;
        const int lfd = opreg_test::listen_loopback(port);
        ASSERT_GE(lfd, 0);
        slot_array reg{registry_config{.max_fds = 1024}};
        reactor<slot_array> loop{reg};
        int accepted = -1;
        {
            acceptor<slot_array> acc{loop, lfd, [&accepted](int fd) { accepted = fd; }};
            acc.set_tcp_nodelay(asked);
            ASSERT_TRUE(acc.start().ok());
            const int client = opreg_test::connect_loopback(port);
            ASSERT_GE(client, 0);
            for (int i = 0; i < 100 && accepted < 0; ++i) loop.run_once(10);
            ASSERT_GE(accepted, 0);
            int on = -1;
            socklen_t len = sizeof on;
            ASSERT_EQ(::getsockopt(accepted, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
            EXPECT_EQ(on != 0, asked);
            ::close(client);
            ::close(accepted);
        }
        EXPECT_EQ(loop.close(lfd), errc::ok);
    }
}

// Out of fds: accept fails with EMFILE. The acceptor must report it, shed the pending
// connection (the client sees a clean close, not a hang), pause instead of spinning, and
// accept again once fds are back. Runs in a child process, whose fd limit it lowers.
TEST(Acceptor, FdExhaustionIsReportedShedAndDoesNotSpin) {
    int port = 0;
    const int lfd = opreg_test::listen_loopback(port);
    ASSERT_GE(lfd, 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        slot_array reg{registry_config{.max_fds = 1024}};
        reactor<slot_array> loop{reg};
        std::vector<int> kept;
        int errors_reported = 0;
        acceptor<slot_array> acc{loop, lfd, [&kept](int fd) { kept.push_back(fd); },
                                 [&errors_reported](int) { ++errors_reported; }, 50ms};
        if (!acc.start().ok()) ::_exit(10);
        // Room for exactly two more fds: fill the holes below the highest open fd (new
        // fds take the lowest free number), then cap the numbers just above it.
        int highest = 0;
        for (int fd = 0; fd < 1024; ++fd)
            if (::fcntl(fd, F_GETFD) >= 0) highest = fd;
        const int filler = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        for (int fd = 0; fd < highest; ++fd)
            if (::fcntl(fd, F_GETFD) < 0) ::dup2(filler, fd);
        if (filler > highest) highest = filler;
        const rlimit low{rlim_t(highest + 3), rlim_t(highest + 3)};
        if (::setrlimit(RLIMIT_NOFILE, &low) != 0) ::_exit(11);
        const auto until = std::chrono::steady_clock::now() + 600ms;
        while (std::chrono::steady_clock::now() < until) loop.run_once(20);
        const auto& s = acc.stats();
        const auto waits = loop.stats().waits;
        // ~30 waits of 20 ms in 600 ms when idle; a spinning loop makes tens of thousands.
        if (s.fd_exhausted < 1) ::_exit(20);
        if (errors_reported < 1) ::_exit(21);
        if (s.accepted < 1) ::_exit(22);
        if (waits > 2000) ::_exit(23);
        // fds come back: accepting resumes.
        for (const int fd : kept) ::close(fd);
        const auto again = std::chrono::steady_clock::now() + 1500ms;  // parent connects again
        const auto before = s.accepted;
        while (std::chrono::steady_clock::now() < again) loop.run_once(20);
        if (acc.stats().accepted <= before) ::_exit(24);
        ::_exit(0);
    }
    std::vector<int> clients;
    for (int i = 0; i < 12; ++i) {
        const int c = opreg_test::connect_loopback(port);
        ASSERT_GE(c, 0);
        clients.push_back(c);
    }
    std::this_thread::sleep_for(900ms);  // the child has freed fds by now
    const int late = opreg_test::connect_loopback(port);
    ASSERT_GE(late, 0);
    clients.push_back(late);
    int eof = 0;  // shed connections read EOF (clean close) rather than hanging
    for (const int c : clients) {
        pollfd p{c, POLLIN, 0};
        if (::poll(&p, 1, 300) == 1) {
            char b;
            eof += ::read(c, &b, 1) == 0;
        }
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "child check failed (see the _exit codes)";
    EXPECT_GE(eof, 1);
    for (const int c : clients) ::close(c);
    ::close(lfd);
}
