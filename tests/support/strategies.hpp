// The strategies every typed suite runs over, and the names tests carry.
#pragma once

#include <string>
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

template <class T>
struct strategy_name {
    static std::string get() { return std::string{T::name()}; }
};
template <class R>
struct strategy_name<via_any<R>> {
    static std::string get() { return "any_" + std::string{R::name()}; }
};

struct strategy_names {
    template <class T>
    static std::string GetName(int) {
        return strategy_name<T>::get();
    }
};

using all_strategies =
    ::testing::Types<opreg::mutex_map, opreg::sharded_map, opreg::tbb_map, opreg::slot_array,
                     opreg::mpsc_registry, via_any<opreg::mutex_map>, via_any<opreg::slot_array>,
                     via_any<opreg::mpsc_registry>>;

using direct_strategies = ::testing::Types<opreg::mutex_map, opreg::sharded_map, opreg::tbb_map,
                                           opreg::slot_array, opreg::mpsc_registry>;

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
