// SPDX-License-Identifier: Apache-2.0
// tbb_map through its own component (opreg::tbb): oneTBB's headers and library come with it.
#include <opreg/tbb_map.hpp>

#include <cstdio>

int main() {
    opreg::tbb_map reg{opreg::registry_config{.max_fds = 64}};
    int calls = 0;
    if (!reg.arm(5, opreg::direction::write, [&](const opreg::completion&) { ++calls; })) return 1;
    (void)reg.dispatch(reg.token_of(5).value(), opreg::readiness::writable);
    std::printf("consumer-tbb: %s\n", calls == 1 ? "ok" : "callback count wrong");
    return calls == 1 ? 0 : 1;
}
