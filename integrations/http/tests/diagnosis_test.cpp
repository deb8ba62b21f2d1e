// SPDX-License-Identifier: Apache-2.0
// The diagnosis modes of opreg-httpd (diagnosis.hpp, response_buffer.hpp) on their own:
// the re-registering poller over real fds, the std::function arming's ownership, and the
// part boundaries --write-per-part writes by.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

#include "app.hpp"
#include "diagnosis.hpp"
#include "response_buffer.hpp"
#include "session.hpp"
#include "support/sockets.hpp"
#include "support/strategies.hpp"

namespace {

using namespace opreg;
using namespace opreg::http;

using opreg_test::record;
using opreg_test::socket_pair;

// A copyable recorder (opreg_test::recorder is an opreg::callback, move-only), so that the
// --std-function arming can hold it in a std::function.
auto copyable_recorder(record& r) {
    return [p = &r](const completion& c) {
        ++p->calls;
        p->last = c;
    };
}

template <class R, class Pred>
bool run_loop_until(reactor<R>& loop, Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        loop.run_once(10);
    }
    return true;
}

constexpr registry_config test_config{.max_fds = 4096};

// The build's own backend (epoll, or kqueue in a kqueue build): both re-register exactly.
std::unique_ptr<detail::poller> open_native() {
    std::string note;
    result<std::unique_ptr<detail::poller>> p =
        detail::open_poller(native_backend(), /*fall_back=*/false, detail::poller_config{}, note);
    if (!p) return nullptr;
    return std::move(p.value());
}

// The server's --rearm-per-op: each arm re-registers the fd with the kernel first. Events
// still arrive, each re-registration polls the fd again, and after many of them a close still
// lets the file go (the peer sees end-of-file), so no registration outlived it.
TEST(RearmingPoller, ReRegisteringPerOpDeliversAndTheCloseIsFinal) {
    std::unique_ptr<detail::poller> native = open_native();
    ASSERT_NE(native, nullptr);
    auto wrapper = std::make_unique<rearming_poller>(std::move(native));
    rearming_poller* rearm = wrapper.get();
    slot_array reg{test_config};
    reactor<slot_array> loop{reg, std::move(wrapper)};
    server_options opt;
    opt.rearm_per_op = true;
    const diagnosed_arming arming{opt, rearm};  // what the worker arms through

    socket_pair p;
    ASSERT_GE(p.a, 0);
    ASSERT_TRUE(loop.watch(p.a).ok());
    record rec;
    constexpr int rounds = 50;
    for (int i = 1; i <= rounds; ++i) {
        ASSERT_TRUE(arming.arm(loop, p.a, direction::read, copyable_recorder(rec)).ok());
        ASSERT_EQ(::write(p.b, "x", 1), 1);
        ASSERT_TRUE(run_loop_until(loop, [&] { return rec.calls == i; })) << "round " << i;
        EXPECT_EQ(rec.last.result, outcome::ready);
        char c;
        ASSERT_EQ(::read(p.a, &c, 1), 1);
    }
    EXPECT_EQ(rearm->reregistrations(), std::uint64_t(rounds));

    // Registering again polls again: bytes already queued, whose edge an earlier op took,
    // are reported to the next arm (without re-registration that arm would wait). Each arm
    // raises a kernel event of its own.
    ASSERT_EQ(::write(p.b, "y", 1), 1);
    for (int i = rounds + 1; i <= rounds + 3; ++i) {
        for (int k = 0; k < 3; ++k) loop.run_once(10);  // take every event there is
        const std::uint64_t before = loop.stats().events;
        ASSERT_TRUE(arming.arm(loop, p.a, direction::read, copyable_recorder(rec)).ok());
        ASSERT_TRUE(run_loop_until(loop, [&] { return rec.calls == i; }))
            << "re-registration did not poll the fd again";
        EXPECT_EQ(rec.last.result, outcome::ready);
        for (int k = 0; k < 3; ++k) loop.run_once(10);
        EXPECT_GT(loop.stats().events, before) << "re-registration did not poll the fd again";
    }
    char y;
    ASSERT_EQ(::read(p.a, &y, 1), 1);  // unread bytes would make the close a reset
    EXPECT_EQ(loop.close(p.take_a()), errc::ok);
    for (int i = 0; i < 5; ++i) loop.run_once(10);
    pollfd pf{p.b, POLLIN, 0};
    ASSERT_EQ(::poll(&pf, 1, 1000), 1) << "the closed end is still held open";
    char c;
    EXPECT_EQ(::read(p.b, &c, 1), 0);
}

TEST(RearmingPoller, AnFdNotWatchedIsNotReRegistered) {
    std::unique_ptr<detail::poller> native = open_native();
    ASSERT_NE(native, nullptr);
    rearming_poller rearm{std::move(native)};
    socket_pair p;
    EXPECT_EQ(rearm.reregister(p.a).os_error(), ENOENT);
    ASSERT_TRUE(rearm.watch(p.a, 7).ok());
    EXPECT_TRUE(rearm.reregister(p.a).ok());
    ASSERT_TRUE(rearm.unwatch(p.a).ok());
    EXPECT_EQ(rearm.reregister(p.a).os_error(), ENOENT);
    EXPECT_EQ(rearm.reregistrations(), 1u);
}

// io_uring's poll removal completes later, so re-registering there is refused, at startup.
TEST(RearmingPoller, IoUringIsRefused) {
    server_options opt;
    opt.which = backend::io_uring;
    opt.rearm_per_op = true;
    std::string note;
    const result<worker_poller> p = open_worker_poller(opt, note);
    std::string probe;
    if (!detail::open_poller(backend::io_uring, false, detail::poller_config{}, probe))
        GTEST_SKIP() << "io_uring not usable here: " << probe;
    EXPECT_FALSE(p.ok());
    EXPECT_NE(note.find("io_uring"), std::string::npos) << note;
}

// --std-function: the heap std::function belongs to the callback the registry holds, so a
// refused arm frees it, and so does the end of the op.
TEST(StdFunctionArming, ARefusedArmFreesItsFunction) {
    slot_array reg{test_config};
    reactor<slot_array> loop{reg, reactor_options{.which = native_backend(), .fall_back = false}};
    server_options opt;
    opt.std_function = true;
    const diagnosed_arming arming{opt, nullptr};
    socket_pair p;
    ASSERT_TRUE(loop.watch(p.a).ok());
    const auto alive = std::make_shared<int>(0);  // its use_count counts the copies
    ASSERT_TRUE(arming.arm(loop, p.a, direction::read, [alive](const completion&) {}).ok());
    EXPECT_EQ(alive.use_count(), 2) << "the pending op's function holds one copy";

    const result<op_token> refused =
        arming.arm(loop, p.a, direction::read, [alive](const completion&) {});
    EXPECT_EQ(refused.error(), errc::busy);
    EXPECT_EQ(alive.use_count(), 2) << "the refused arm's std::function was not freed";

    EXPECT_EQ(loop.close(p.take_a()), errc::ok);  // ends the pending op as closed
    for (int i = 0; i < 3; ++i) loop.run_once(0);
    EXPECT_EQ(alive.use_count(), 1) << "the ended op's std::function was not freed";
}

// --write-per-part writes by the parts the application marked as it appended (heads and
// bodies), never by what the bytes look like.
std::vector<std::string_view> parts_of(const response_buffer& out) {
    std::vector<std::string_view> parts;
    std::size_t from = 0;
    for (const std::size_t end : out.part_ends()) {
        parts.push_back(out.view().substr(from, end - from));
        from = end;
    }
    if (from < out.size()) parts.push_back(out.view().substr(from));
    return parts;
}

TEST(WritePerPart, PartsAreTheHeadsAndBodiesTheApplicationWrote) {
    app a;
    session_state st;
    response_buffer out{/*record_parts=*/true};
    const std::string look_alike = "HTTP/1.1 200 OK\r\n\r\nHTTP/1.0 x";  // a body, echoed
    const std::string in =
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(look_alike.size()) +
        "\r\n\r\n" + look_alike +
        "GET / HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\n\r\n";
    const serve_result r = serve_requests({a, limits{}}, in, out, st);
    ASSERT_EQ(r.requests, 3u);
    const std::vector<std::string_view> parts = parts_of(out);
    ASSERT_EQ(parts.size(), 5u);  // head, body; head, body; head (HEAD: no body)
    EXPECT_TRUE(parts[0].starts_with("HTTP/1.1 200 OK\r\n") && parts[0].ends_with("\r\n\r\n"));
    EXPECT_EQ(parts[1], look_alike);
    EXPECT_TRUE(parts[2].starts_with("HTTP/1.1 200 OK\r\n") && parts[2].ends_with("\r\n\r\n"));
    EXPECT_EQ(parts[3], "Hello, World!");
    EXPECT_TRUE(parts[4].starts_with("HTTP/1.1 200 OK\r\n") && parts[4].ends_with("\r\n\r\n"));
    EXPECT_EQ(out.part_ends().back(), out.size()) << "every byte is in a marked part";
}

TEST(WritePerPart, ContinueAndErrorsArePartsToo) {
    app a;
    session_state st;
    response_buffer out{/*record_parts=*/true};
    serve_requests({a, limits{}},
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n", out,
        st);
    ASSERT_EQ(parts_of(out).size(), 1u);
    EXPECT_EQ(parts_of(out)[0], "HTTP/1.1 100 Continue\r\n\r\n");
    out.clear();
    session_state bad;
    serve_requests({a, limits{}}, "GET / HTTP/9.9\r\n\r\n", out, bad);
    const std::vector<std::string_view> parts = parts_of(out);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_TRUE(parts[0].starts_with("HTTP/1.1 505"));
    EXPECT_EQ(out.part_ends().back(), out.size());
}

TEST(WritePerPart, NothingIsRecordedUnlessAsked) {
    app a;
    session_state st;
    response_buffer out;
    serve_requests({a, limits{}},
                   "GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n", out, st);
    EXPECT_FALSE(out.empty());
    EXPECT_TRUE(out.part_ends().empty());
}

}  // namespace
