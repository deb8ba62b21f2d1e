// The backends the reactor suites run over, the (backend, registry) pairs they are typed on,
// and a reactor opened on exactly the backend asked for.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>

namespace opreg_test {

struct epoll_backend {
    static constexpr opreg::backend value = opreg::backend::epoll;
};
struct io_uring_backend {
    static constexpr opreg::backend value = opreg::backend::io_uring;
};

// One typed-suite parameter: a backend and a registry strategy. Test names carry both:
// Reactor.X<combo<epoll_backend, ...>>.
template <class Backend, class Registry>
struct combo {
    using registry_type = Registry;
    static constexpr opreg::backend which = Backend::value;
};

// Every strategy on every Linux backend, and any_registry (each suite gives it a strategy).
using reactor_combos = ::testing::Types<
    combo<epoll_backend, opreg::mutex_map>, combo<epoll_backend, opreg::sharded_map>,
    combo<epoll_backend, opreg::tbb_map>, combo<epoll_backend, opreg::slot_array>,
    combo<epoll_backend, opreg::mpsc_queue>, combo<epoll_backend, opreg::any_registry>,
    combo<io_uring_backend, opreg::mutex_map>, combo<io_uring_backend, opreg::sharded_map>,
    combo<io_uring_backend, opreg::tbb_map>, combo<io_uring_backend, opreg::slot_array>,
    combo<io_uring_backend, opreg::mpsc_queue>>;

// A reactor on opt.which and nothing else (no fall-back); nullptr, with the reason in `why`,
// when this kernel refuses that backend: the caller reports a skip, never a pass.
template <class R>
std::unique_ptr<opreg::reactor<R>> open_reactor(R& reg, opreg::reactor_options opt,
                                                std::string& why) {
    opt.fall_back = false;
    try {
        return std::make_unique<opreg::reactor<R>>(reg, opt);
    } catch (const std::system_error& e) {
        why = std::string(opreg::to_string(opt.which)) + " is not usable here: " + e.what();
        return nullptr;
    }
}

} // namespace opreg_test
