// Checks an installed opreg end to end: headers found, library linked, and one armed read
// completes exactly once when its fd becomes readable.
#include <opreg/opreg.hpp>

#include <cstddef>
#include <cstdio>

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

    const std::size_t ended = reg.dispatch(ft.value(), opreg::readiness::readable);
    if (calls != 1) {
        std::printf("consumer: callback ran %d times as ready (ops ended: %zu), expected 1\n",
                    calls, ended);
        return 1;
    }
    std::puts("consumer: ok");
    return 0;
}
