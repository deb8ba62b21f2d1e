// The run-time strategy table. Strategies are instantiated here once, so programs that
// choose by name do not compile every strategy themselves.
#include <array>

#include <opreg/any_registry.hpp>
#include <opreg/mpsc_queue.hpp>
#include <opreg/mutex_map.hpp>
#include <opreg/sharded_map.hpp>
#include <opreg/slot_array.hpp>
#include <opreg/tbb_map.hpp>

namespace opreg {

namespace {

constexpr std::array<std::string_view, 5> names = {
    mutex_map::name(), sharded_map::name(), tbb_map::name(), slot_array::name(),
    mpsc_queue::name(),
};

template <class R>
bool try_make(std::string_view name, registry_config cfg, any_registry& out) {
    if (name != R::name()) return false;
    out = any_registry{std::in_place_type<R>, cfg};
    return true;
}

} // namespace

std::span<const std::string_view> registry_names() noexcept { return names; }

any_registry make_registry(std::string_view name, registry_config cfg) {
    any_registry r;
    (void)(try_make<mutex_map>(name, cfg, r) || try_make<sharded_map>(name, cfg, r) ||
           try_make<tbb_map>(name, cfg, r) || try_make<slot_array>(name, cfg, r) ||
           try_make<mpsc_queue>(name, cfg, r));
    return r;
}

} // namespace opreg
