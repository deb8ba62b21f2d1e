// SPDX-License-Identifier: Apache-2.0
// Completion mode allocates nothing per recv once warm, for the direct strategy and the
// hand-off one: bytes handed straight from a provided buffer to a pending recv, and bytes
// that came before their recv (held, then delivered inside recv()). Counted with the
// replacement operator new (alloc_counter.cpp) around loops with no test assertion inside.
#include "alloc_counter.hpp"

#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>

#include "../support/sockets.hpp"

using namespace opreg;

namespace {

constexpr int rounds = 500;
// Longer than a std::string keeps inline, so that a held copy would allocate: a long one,
// and a short one (a keep-alive GET's size) whose buffer is smaller than a std::string.
const std::string long_message(200, 'm');
const std::string short_message = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

template <class R>
class ReactorIoAlloc : public ::testing::Test {};
using strategies = ::testing::Types<slot_array, mpsc_queue>;
TYPED_TEST_SUITE(ReactorIoAlloc, strategies);

struct tally {
    int calls = 0;
    std::size_t bytes = 0;
};

// One round: the peer writes; with `early`, the loop turns first so that the bytes are held
// before the recv is made (it then ends inside recv()); else the recv waits and the bytes go
// to it straight from the kernel's buffer. Returns false when the bytes did not come.
template <class R>
bool one_round(reactor<R>& loop, int fd, int peer, const std::string& message, bool early,
               tally& t) {
    const int before = t.calls;
    if (::write(peer, message.data(), message.size()) != static_cast<ssize_t>(message.size()))
        return false;
    if (early)
        for (int i = 0; i < 50 && loop.run_once(1) == 0; ++i) {
        }
    if (!loop.recv(fd, [&t](const io_completion& x) {
                 ++t.calls;
                 t.bytes += x.data.size();
             }).ok())
        return false;
    for (int i = 0; i < 1000 && t.calls == before; ++i) loop.run_once(1);
    return t.calls == before + 1;
}

template <class R>
void expect_no_allocation_per_recv(const std::string& message, bool early) {
    ASSERT_GT(message.size(), std::string{}.capacity()) << "a message kept inline tests nothing";
    R reg{registry_config{.max_fds = 1024}};
    std::string why;
    result<std::unique_ptr<detail::poller>> p =
        detail::open_poller(backend::io_uring, false, detail::poller_config{}, why);
    if (!p || !p.value()->supports_io()) GTEST_SKIP() << "no io_uring completion mode: " << why;
    reactor<R> loop{reg, std::move(p.value())};
    opreg_test::socket_pair sp;
    tally t;
    for (int i = 0; i < 32; ++i)  // warm up
        ASSERT_TRUE(one_round(loop, sp.a, sp.b, message, early, t));
    const std::size_t before = opreg_test::allocations();
    bool all = true;
    for (int i = 0; i < rounds; ++i) all = one_round(loop, sp.a, sp.b, message, early, t) && all;
    const std::size_t allocated = opreg_test::allocations() - before;
    ASSERT_TRUE(all);
    EXPECT_EQ(t.bytes, message.size() * (32 + rounds));
    EXPECT_EQ(allocated, 0u) << allocated << " allocations in " << rounds << " recvs";
    EXPECT_EQ(loop.close(sp.take_a()), errc::ok);
}

TYPED_TEST(ReactorIoAlloc, BytesToAWaitingRecvAllocateNothing) {
    expect_no_allocation_per_recv<TypeParam>(long_message, false);
}

TYPED_TEST(ReactorIoAlloc, BytesThatCameBeforeTheRecvAllocateNothing) {
    expect_no_allocation_per_recv<TypeParam>(long_message, true);
}

// Held bytes of less than sizeof(std::string) still live in a buffer: it is kept for reuse
// as a longer one is (it once was freed, taken for inline storage, and allocated again).
TYPED_TEST(ReactorIoAlloc, ShortBytesToAWaitingRecvAllocateNothing) {
    ASSERT_LT(short_message.size(), sizeof(std::string));
    expect_no_allocation_per_recv<TypeParam>(short_message, false);
}

TYPED_TEST(ReactorIoAlloc, ShortBytesThatCameBeforeTheRecvAllocateNothing) {
    ASSERT_LT(short_message.size(), sizeof(std::string));
    expect_no_allocation_per_recv<TypeParam>(short_message, true);
}

}  // namespace
