// SPDX-License-Identifier: Apache-2.0
// The backends the reactor suites run over, the (backend, registry) pairs they are typed on,
// and a reactor opened on exactly the backend asked for.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

namespace opreg_test {

struct epoll_backend {
    static constexpr opreg::backend value = opreg::backend::epoll;
};
struct io_uring_backend {
    static constexpr opreg::backend value = opreg::backend::io_uring;
};
struct kqueue_backend {
    static constexpr opreg::backend value = opreg::backend::kqueue;
};

// One typed-suite parameter: a backend and a registry strategy. Test names carry both:
// Reactor.X<combo<epoll_backend, ...>>.
template <class Backend, class Registry>
struct combo {
    using registry_type = Registry;
    static constexpr opreg::backend which = Backend::value;
};

template <class Backend, class List>
struct combos_of;
template <class Backend, class... R>
struct combos_of<Backend, opreg::type_list<R...>> {
    using type = opreg::type_list<combo<Backend, R>...>;
};
// Three type lists, one after the other, as a typed suite's parameter list.
template <class... Lists>
struct concat;
template <class... A, class... B, class... C>
struct concat<opreg::type_list<A...>, opreg::type_list<B...>, opreg::type_list<C...>> {
    using type = ::testing::Types<A..., B..., C...>;
};

// The strategy that ends ops directly and the one that hands them off: the two shapes the
// reactor drives differently.
using direct_and_handoff = opreg::type_list<opreg::slot_array, opreg::mpsc_queue>;

#if OPREG_TEST_KQUEUE_BUILD && OPREG_TEST_REACTOR_QUICK
// A kqueue build, quick matrix (make test): the direct and the hand-off strategy. The full
// matrix (make check) runs every one.
using reactor_combos = concat<combos_of<kqueue_backend, direct_and_handoff>::type,
                              opreg::type_list<>, opreg::type_list<>>::type;
#elif OPREG_TEST_KQUEUE_BUILD
// A kqueue build: every strategy on kqueue, and any_registry (each suite gives it a strategy).
using reactor_combos = concat<combos_of<kqueue_backend, opreg::strategies>::type,
                              opreg::type_list<combo<kqueue_backend, opreg::any_registry>>,
                              opreg::type_list<>>::type;
#elif OPREG_TEST_REACTOR_QUICK
// Quick matrix (make test): every strategy and any_registry on epoll (the registry's part of
// the reactor), the direct and the hand-off strategy on io_uring (the backend's part). The
// full matrix (make check) runs the whole product.
using reactor_combos = concat<combos_of<epoll_backend, opreg::strategies>::type,
                              opreg::type_list<combo<epoll_backend, opreg::any_registry>>,
                              combos_of<io_uring_backend, direct_and_handoff>::type>::type;
#else
// Every strategy on every Linux backend, and any_registry on epoll (each suite gives it a
// strategy).
using reactor_combos = concat<combos_of<epoll_backend, opreg::strategies>::type,
                              opreg::type_list<combo<epoll_backend, opreg::any_registry>>,
                              combos_of<io_uring_backend, opreg::strategies>::type>::type;
#endif

// The backends this build has: a test over them reports a backend this kernel refuses (say
// io_uring) as a skip of its own, never folded into a pass.
#if OPREG_TEST_KQUEUE_BUILD
inline const auto built_backends = ::testing::Values(opreg::backend::kqueue);
#else
inline const auto built_backends =
    ::testing::Values(opreg::backend::epoll, opreg::backend::io_uring);
#endif
// Test names carry the backend: Suite/Test/epoll.
inline std::string backend_name(const ::testing::TestParamInfo<opreg::backend>& info) {
    return std::string(opreg::to_string(info.param));
}

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

}  // namespace opreg_test
