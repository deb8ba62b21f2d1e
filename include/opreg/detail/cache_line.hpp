// SPDX-License-Identifier: Apache-2.0
// opreg/detail/cache_line.hpp — the one cache-line size every padded type uses.
#pragma once

#include <opreg/config.hpp>

#include <cstddef>

namespace opreg::detail {

// The size of the false-sharing unit: atomics written by different threads sit this far
// apart. 64 on every target opreg builds for (x86-64, AArch64 outside Apple's M-series,
// whose 128 only costs sharing, never correctness). A fixed constant rather than
// std::hardware_destructive_interference_size: that one follows -mtune, so two translation
// units built with different flags would disagree on the layout of the same type (GCC warns
// about its use in headers for this reason), and clang 14's library does not define it.
inline constexpr std::size_t cache_line = 64;

}  // namespace opreg::detail
