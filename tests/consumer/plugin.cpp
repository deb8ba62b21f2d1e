// SPDX-License-Identifier: Apache-2.0
// A shared object (a plugin) built on the static opreg: links only if libopreg.a is
// position-independent.
#include <opreg/opreg.hpp>

extern "C" int plugin_arm_and_dispatch() {
    opreg::slot_array reg{opreg::registry_config{.max_fds = 16}};
    int calls = 0;
    if (!reg.arm(2, opreg::direction::read, [&](const opreg::completion&) { ++calls; })) return -1;
    (void)reg.dispatch(reg.token_of(2).value(), opreg::readiness::readable);
    return calls + static_cast<int>(opreg::to_string(opreg::direction::read).size());
}
