// The strategies every typed suite runs over, and the names tests carry.
#pragma once

#include <utility>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>

namespace opreg_test {

// A strategy reached through any_registry: checks that the type-erased path keeps the
// contract too.
template <class R>
class via_any : public opreg::any_registry {
public:
    explicit via_any(opreg::registry_config cfg = {})
        : opreg::any_registry{std::in_place_type<R>, cfg} {}
};

using all_strategies =
    ::testing::Types<opreg::mutex_map, opreg::sharded_map, opreg::tbb_map, opreg::slot_array,
                     opreg::mpsc_queue, via_any<opreg::mutex_map>, via_any<opreg::slot_array>,
                     via_any<opreg::mpsc_queue>>;

using direct_strategies = ::testing::Types<opreg::mutex_map, opreg::sharded_map, opreg::tbb_map,
                                           opreg::slot_array, opreg::mpsc_queue>;

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

} // namespace opreg_test
