// SPDX-License-Identifier: Apache-2.0
// Counts calls to the global operator new in a test executable, so that a test can assert
// that a code path performs no heap allocation.
//
// alloc_counter.cpp replaces every global operator new / new[] (plain, sized, aligned and
// nothrow forms) and the matching operator delete forms, forwarding to malloc,
// aligned_alloc and free. Link it into exactly one executable that is built without
// sanitizers: ASan and TSan replace the same operators themselves.
#pragma once

#include <cstddef>

namespace opreg_test {

// Calls to any form of global operator new or new[] since the program started, from every
// thread. Compare two readings taken around the code under test; an allocation made on
// another thread between them counts too.
[[nodiscard]] std::size_t allocations() noexcept;

}  // namespace opreg_test
