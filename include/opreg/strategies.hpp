// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/strategies.hpp — every registry strategy, listed once.
///
/// `strategies` is the one list of strategy types, in the order tables and benchmarks show
/// them (the baseline first). Everything that chooses a strategy by name or runs over all of
/// them is derived from it: make_registry, the typed test suites, the benchmarks, the stress
/// tool, the sample server and, through each program's --list, the scripts. A new strategy
/// is its header plus one entry here.
///
/// tbb_map is in the list when opreg is built with oneTBB (OPREG_WITH_TBB in config.hpp, the
/// same in every translation unit): a program that includes this header then needs oneTBB's
/// headers and library (link opreg::tbb). The library's run-time table (make_registry,
/// registry_names) is built from the same list.
///
/// @code
///   opreg::visit_strategy(name, [&]<class R>(std::type_identity<R>) { run<R>(); });
///   opreg::for_each_strategy([&]<class R>(std::type_identity<R>) { register_bench<R>(); });
/// @endcode
#pragma once

#include <opreg/config.hpp>

#include <array>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>

#include <opreg/mpsc_queue.hpp>
#include <opreg/mutex_map.hpp>
#include <opreg/registry.hpp>
#include <opreg/sharded_map.hpp>
#include <opreg/slot_array.hpp>
#if OPREG_WITH_TBB
#include <opreg/tbb_map.hpp>
#endif

namespace opreg {

/// A list of types: opreg::strategies is one.
template <class... Ts>
struct type_list {
    /// How many types.
    static constexpr std::size_t size = sizeof...(Ts);
};

// The strategies. mutex_map is the baseline (one global mutex around a map, as the design
// this project answers had it); the others are the contenders.
#if OPREG_WITH_TBB
/// Every strategy, the baseline first: the one list the tests, benchmarks, stress tool and
/// server are derived from.
using strategies = type_list<mutex_map, sharded_map, tbb_map, slot_array, mpsc_queue>;
#else
using strategies = type_list<mutex_map, sharded_map, slot_array, mpsc_queue>;
#endif

namespace detail {
template <class... R>
constexpr std::array<std::string_view, sizeof...(R)> names_of(type_list<R...>) noexcept {
    static_assert((registry<R> && ...), "every entry of opreg::strategies is a registry");
    return {R::name()...};
}
template <class F, class... R>
constexpr void for_each_of(type_list<R...>, F& f) {
    (f(std::type_identity<R>{}), ...);
}
template <class F, class... R>
constexpr bool visit_of(type_list<R...>, std::string_view name, F& f) {
    return ((name == R::name() ? (f(std::type_identity<R>{}), true) : false) || ...);
}
}  // namespace detail

/// The strategies' names, in list order: "mutex_map", "sharded_map", "tbb_map" (with oneTBB),
/// "slot_array", "mpsc_queue".
inline constexpr auto strategy_names = detail::names_of(strategies{});

/// Calls f(std::type_identity<R>{}) for every strategy R, in list order.
template <class F>
constexpr void for_each_strategy(F&& f) {
    detail::for_each_of(strategies{}, f);
}

/// Calls f(std::type_identity<R>{}) for the strategy named `name`; false (f not called) when
/// no strategy has that name: list strategy_names in the error message.
template <class F>
constexpr bool visit_strategy(std::string_view name, F&& f) {
    return detail::visit_of(strategies{}, name, f);
}

}  // namespace opreg
