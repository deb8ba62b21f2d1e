// SPDX-License-Identifier: Apache-2.0
// The strategies every typed suite runs over, and the names tests carry.
#pragma once

#include <utility>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

namespace opreg_test {

// A strategy reached through any_registry: checks that the type-erased path keeps the
// contract too.
template <class R>
class via_any : public opreg::any_registry {
public:
    explicit via_any(opreg::registry_config cfg = {})
        : opreg::any_registry{std::in_place_type<R>, cfg} {}
};

template <class List, class... Extra>
struct gtest_types;
template <class... R, class... Extra>
struct gtest_types<opreg::type_list<R...>, Extra...> {
    using type = ::testing::Types<R..., Extra...>;
};

// Every strategy of opreg::strategies, as it is.
using direct_strategies = gtest_types<opreg::strategies>::type;

// Every strategy, and three reached through any_registry: the baseline, the array and the
// hand-off (a lock, atomics, a queue behind the virtual interface).
using all_strategies = gtest_types<opreg::strategies, via_any<opreg::mutex_map>,
                                   via_any<opreg::slot_array>, via_any<opreg::mpsc_queue>>::type;

// Records how one op ended. Callbacks capture a pointer to one of these.
struct record {
    int calls = 0;
    opreg::completion last{};
};

inline opreg::callback recorder(record& r) {
    return [&r](const opreg::completion& c) {
        ++r.calls;
        r.last = c;
    };
}

}  // namespace opreg_test
