// SPDX-License-Identifier: Apache-2.0
// The run-time strategy table, derived from opreg::strategies. Strategies are instantiated
// here once, so programs that choose by name do not compile every strategy themselves.
#include <opreg/any_registry.hpp>
#include <opreg/strategies.hpp>

namespace opreg {

std::span<const std::string_view> registry_names() noexcept {
    return strategy_names;
}

std::string joined_registry_names(std::string_view separator) {
    std::string out;
    for (const std::string_view n : strategy_names) {
        if (!out.empty()) out += separator;
        out += n;
    }
    return out;
}

any_registry make_registry(std::string_view name, registry_config cfg) {
    any_registry r;
    (void)visit_strategy(name, [&]<class R>(std::type_identity<R>) {
        r = any_registry{std::in_place_type<R>, cfg};
    });
    return r;
}

}  // namespace opreg
