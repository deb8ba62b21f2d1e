// SPDX-License-Identifier: Apache-2.0
// Checks an installed opreg end to end, as a program of a user's would use it: headers found
// (the version and config headers too), library linked, one armed read completes exactly
// once when its fd becomes readable, and the pieces a user's own loop needs: the readiness
// mapping, errors as std::error_code, a registry chosen by name.
#include <opreg/opreg.hpp>

#include <poll.h>

#include <cstddef>
#include <cstdio>
#include <string_view>
#include <system_error>

static_assert(OPREG_VERSION >= OPREG_VERSION_OF(0, 1, 0), "opreg/version.hpp");

int main() {
    constexpr int fd = 3;
    opreg::slot_array reg{opreg::registry_config{.max_fds = 64}};

    auto ft = reg.token_of(fd);
    if (!ft.ok()) {
        std::puts("consumer: token_of(3) failed");
        return 1;
    }

    int calls = 0;
    auto t = reg.arm(fd, opreg::direction::read, [&](const opreg::completion& c) {
        calls += (c.result == opreg::outcome::ready);
    });
    if (!t.ok()) {
        std::puts("consumer: arm(3, read) failed");
        return 1;
    }

    const std::size_t ended = reg.dispatch(ft.value(), opreg::readiness_from_poll(POLLIN));
    if (calls != 1) {
        std::printf("consumer: callback ran %d times as ready (ops ended: %zu), expected 1\n",
                    calls, ended);
        return 1;
    }

    // A refused arm as a std::error_code, in opreg's category.
    const opreg::result<opreg::op_token> bad = reg.arm(-1, opreg::direction::read, [](auto&) {});
    const std::error_code ec = bad.error_code();
    if (ec != opreg::errc::fd_out_of_range || std::string_view(ec.category().name()) != "opreg") {
        std::printf("consumer: error_code %s:%d\n", ec.category().name(), ec.value());
        return 1;
    }

    // Chosen by name from the library's table.
    if (!opreg::make_registry("slot_array")) {
        std::puts("consumer: make_registry(slot_array) failed");
        return 1;
    }
    std::printf("consumer: ok (opreg %s, %s)\n", OPREG_VERSION_STRING, ec.message().c_str());
    return 0;
}
