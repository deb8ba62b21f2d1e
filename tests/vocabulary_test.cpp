// SPDX-License-Identifier: Apache-2.0
// Tokens, inline callbacks, names: the vocabulary every strategy shares.
#include <poll.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>

using namespace opreg;

TEST(Token, PacksSlotAndGenerationIntoSixtyFourBits) {
    const fd_token t{0x1beef01, 0x2a'1234'5678};
    EXPECT_EQ(t.slot(), 0x1beef01u);
    EXPECT_EQ(t.generation(), 0x2a'1234'5678u);
    EXPECT_EQ(t.to_u64(), (std::uint64_t{0x2a'1234'5678} << 26) | 0x1beef01);
    EXPECT_EQ(fd_token::from_u64(t.to_u64()), t);
    // A generation is 38 bits wide and wraps within them.
    EXPECT_EQ(token_generation_bits, 38);
    const fd_token top{5, token_generation_mask};
    EXPECT_EQ(top.generation(), token_generation_mask);
    EXPECT_EQ(top.slot(), 5u);
    EXPECT_EQ(next_generation(token_generation_mask), 0u);
    EXPECT_EQ((fd_token{5, token_generation_mask + 1}.generation()), 0u);
}

// The default token is invalid: it names no slot a registry issues, so cancel(op_token{})
// can never end fd 0's read (once the default, generation 0 of slot 0).
TEST(Token, DefaultIsInvalidAndNeverIssued) {
    EXPECT_FALSE(op_token{}.valid());
    EXPECT_FALSE(fd_token::invalid().valid());
    EXPECT_NE(op_token{}, (op_token{op_slot(0, direction::read), 0}));
    const int top_fd = int(registry_config::max_fds_limit) - 1;
    EXPECT_TRUE((op_token{op_slot(top_fd, direction::write), token_generation_mask}.valid()));
    EXPECT_LT(op_slot(top_fd, direction::write), token_reserved_slot);
}

// value() on an error is a caller bug, stopped in every build mode.
TEST(ResultDeathTest, ValueOfAnErrorAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const result<op_token> failed{errc::busy};
    EXPECT_DEATH((void)failed.value(), "called on an error");
    slot_array reg{registry_config{.max_fds = 4}};
    auto refused = reg.arm(9, direction::read, [](const completion&) {});
    ASSERT_FALSE(refused.ok());
    EXPECT_DEATH((void)reg.cancel(refused.value()), "called on an error");
}

TEST(Token, OpSlotNamesFdAndDirection) {
    const op_token t{op_slot(21, direction::write), 4};
    EXPECT_EQ(op_fd(t), 21);
    EXPECT_EQ(op_direction(t), direction::write);
    EXPECT_EQ(op_direction(op_token{op_slot(21, direction::read), 4}), direction::read);
}

TEST(InlineFunction, InvokesAndReportsEmptiness) {
    int seen = 0;
    callback cb = [&seen](const completion& c) { seen = c.fd; };
    ASSERT_TRUE(static_cast<bool>(cb));
    completion c;
    c.fd = 42;
    cb(c);
    EXPECT_EQ(seen, 42);
    cb.reset();
    EXPECT_FALSE(static_cast<bool>(cb));
    EXPECT_FALSE(static_cast<bool>(callback{}));
}

TEST(InlineFunction, HoldsMoveOnlyCapturesAndDestroysThemExactlyOnce) {
    auto owned = std::make_shared<int>(7);
    std::weak_ptr<int> watch = owned;
    {
        callback a = [p = std::make_unique<std::shared_ptr<int>>(std::move(owned))](
                         const completion&) { ++**p; };
        callback b = std::move(a);
        EXPECT_FALSE(static_cast<bool>(a));
        b(completion{});
        EXPECT_EQ(*watch.lock(), 8);
        callback c;
        c = std::move(b);
        EXPECT_EQ(watch.use_count(), 1);
    }
    EXPECT_TRUE(watch.expired());
}

TEST(InlineFunction, CapacityIsWhatTheHeaderPromises) {
    EXPECT_EQ(callback::capacity, callback_capacity);
    EXPECT_EQ(sizeof(callback), callback_capacity + sizeof(void*));
    struct six_pointers {
        void* p[6];
        void operator()(const completion&) const {}
    };
    static_assert(std::is_constructible_v<callback, six_pointers>);
}

TEST(Names, EveryStrategyIsMadeByItsName) {
    ASSERT_EQ(registry_names().size(), 5u);
    for (const std::string_view n : registry_names()) {
        any_registry r = make_registry(n, registry_config{.max_fds = 8});
        ASSERT_TRUE(static_cast<bool>(r)) << n;
        EXPECT_EQ(r.name(), n);
    }
    EXPECT_FALSE(static_cast<bool>(make_registry("no_such_strategy")));
}

TEST(Names, OutcomesAndErrorsHaveReadableNames) {
    EXPECT_EQ(to_string(outcome::timed_out), "timed_out");
    EXPECT_EQ(to_string(direction::write), "write");
    EXPECT_EQ(to_string(cancel_status::requested), "requested");
    EXPECT_NE(to_string(errc::busy).find("busy"), std::string_view::npos);
}

TEST(InlineFunction, DiscardsTheResultOfANonVoidCallable) {
    int seen = 0;
    callback cb = [&seen](const completion&) { return ++seen; };
    cb(completion{});
    EXPECT_EQ(seen, 1);
}

void plain_handler(const completion&) {}

TEST(InlineFunction, NullFunctionPointerMakesAnEmptyCallback) {
    void (*none)(const completion&) = nullptr;
    EXPECT_FALSE(static_cast<bool>(callback{none}));
    EXPECT_TRUE(static_cast<bool>(callback{&plain_handler}));
}

TEST(RegistryConfig, RejectsAnFdRangeTokensCannotCarry) {
    EXPECT_THROW(slot_array(registry_config{.max_fds = 0}), std::invalid_argument);
    EXPECT_THROW(mpsc_queue(registry_config{.max_fds = registry_config::max_fds_limit + 1}),
                 std::invalid_argument);
    EXPECT_EQ((registry_config{.max_fds = registry_config::max_fds_limit}.pending_limit()),
              std::size_t{1} << 25);
}

// ---- errors as std::error_code --------------------------------------------------------------------

TEST(ErrorCode, ErrcHasItsOwnCategory) {
    const std::error_code ec = opreg::errc::busy;  // is_error_code_enum
    EXPECT_STREQ(ec.category().name(), "opreg");
    EXPECT_EQ(ec.message(), std::string(opreg::to_string(opreg::errc::busy)));
    EXPECT_EQ(ec, opreg::errc::busy);
    EXPECT_NE(ec, opreg::errc::full);
}

TEST(ErrorCode, AnOsErrorCarriesErrnoInTheSystemCategory) {
    const opreg::result<void> r = opreg::os_failure(EBADF);
    EXPECT_EQ(r.error_code(), std::error_code(EBADF, std::system_category()));
    EXPECT_EQ(r.error_code(), std::errc::bad_file_descriptor);
    const opreg::result<int> stale = opreg::errc::stale;
    EXPECT_EQ(stale.error_code(), opreg::errc::stale);
    EXPECT_FALSE(opreg::result<void>{}.error_code());
}

// ---- kernel readiness reports ---------------------------------------------------------------------

TEST(ReadinessMapping, Poll) {
    using opreg::readiness;
    EXPECT_EQ(opreg::readiness_from_poll(POLLIN), readiness::readable);
    EXPECT_EQ(opreg::readiness_from_poll(POLLOUT), readiness::writable);
    EXPECT_EQ(opreg::readiness_from_poll(POLLHUP),
              readiness::readable | readiness::writable | readiness::hangup);
    EXPECT_TRUE(has(opreg::readiness_from_poll(POLLERR | POLLIN), readiness::error));
    EXPECT_TRUE(has(opreg::readiness_from_poll(POLLNVAL), readiness::error));
#if defined(POLLRDHUP)
    EXPECT_EQ(opreg::readiness_from_poll(POLLIN | POLLRDHUP), readiness::readable | readiness::hangup);
#endif
}

#if __has_include(<sys/epoll.h>)
TEST(ReadinessMapping, Epoll) {
    using opreg::readiness;
    EXPECT_EQ(opreg::readiness_from_epoll(EPOLLIN), readiness::readable);
    EXPECT_EQ(opreg::readiness_from_epoll(EPOLLIN | EPOLLOUT), readiness::readable | readiness::writable);
    EXPECT_EQ(opreg::readiness_from_epoll(EPOLLIN | EPOLLRDHUP), readiness::readable | readiness::hangup);
    EXPECT_EQ(opreg::readiness_from_epoll(EPOLLERR | EPOLLIN | EPOLLOUT), readiness::error);
}
#endif
