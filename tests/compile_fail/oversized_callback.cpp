// SPDX-License-Identifier: Apache-2.0
// Built by ctest: with OPREG_OVERSIZED the capture is one byte over the inline capacity and
// this file must fail to compile with the header's message; without it, it must compile.
#include <opreg/types.hpp>

int main() {
#ifdef OPREG_OVERSIZED
    constexpr std::size_t size = opreg::callback_capacity + 1;
#else
    constexpr std::size_t size = opreg::callback_capacity;
#endif
    struct capture {
        char bytes[size];
        void operator()(const opreg::completion&) const {}
    };
    opreg::callback cb{capture{}};
    return cb ? 0 : 1;
}
