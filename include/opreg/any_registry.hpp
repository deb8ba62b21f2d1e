// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/any_registry.hpp — choose a registry strategy at run time, by name.
///
/// any_registry owns one strategy behind a virtual interface and itself satisfies the
/// `registry` concept, so code written against the concept takes either a concrete strategy
/// (hot paths: calls inline) or an any_registry (one indirect call per operation; what the
/// sample server and the tools use for --registry NAME). Same contract, same guarantees as
/// the strategy it holds. Moving an any_registry is not thread-safe; its operations are as
/// thread-safe as the strategy's.
#pragma once

#include <opreg/config.hpp>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <opreg/registry.hpp>
#include <opreg/types.hpp>

namespace opreg {

namespace detail {

struct registry_iface {
    virtual ~registry_iface() = default;
    virtual std::string_view name() const noexcept = 0;
    virtual bool hands_off() const noexcept = 0;
    virtual bool bounded_pending() const noexcept = 0;
    virtual const registry_config& config() const noexcept = 0;
    virtual result<fd_token> token_of(int fd) = 0;
    virtual result<op_token> arm(int fd, direction d, callback cb) = 0;
    virtual cancel_status cancel(op_token t, outcome why) = 0;
    virtual std::size_t dispatch(fd_token t, readiness ev) = 0;
    virtual errc close(int fd) = 0;
    virtual std::size_t apply_handed_off() = 0;
    virtual registry_stats stats() const = 0;
};

template <registry R>
class registry_model final : public registry_iface {
public:
    explicit registry_model(registry_config cfg) : r_{cfg} {}
    std::string_view name() const noexcept override { return r_.name(); }
    bool hands_off() const noexcept override { return r_.hands_off(); }
    bool bounded_pending() const noexcept override { return r_.bounded_pending(); }
    const registry_config& config() const noexcept override { return r_.config(); }
    result<fd_token> token_of(int fd) override { return r_.token_of(fd); }
    result<op_token> arm(int fd, direction d, callback cb) override {
        return r_.arm(fd, d, std::move(cb));
    }
    cancel_status cancel(op_token t, outcome why) override { return r_.cancel(t, why); }
    std::size_t dispatch(fd_token t, readiness ev) override { return r_.dispatch(t, ev); }
    errc close(int fd) override { return r_.close(fd); }
    std::size_t apply_handed_off() override { return r_.apply_handed_off(); }
    registry_stats stats() const override { return r_.stats(); }

private:
    R r_;
};

}  // namespace detail

/// A registry whose strategy is chosen at run time (make_registry(name, config)); satisfies the
/// registry concept itself.
class any_registry {
public:
    any_registry() = default;

    /// Builds a registry of strategy R with `cfg`.
    template <registry R>
    any_registry(std::in_place_type_t<R>, registry_config cfg)
        : impl_{std::make_unique<detail::registry_model<R>>(cfg)} {}

    /// False for a default-constructed any_registry, which holds no registry.
    explicit operator bool() const noexcept { return impl_ != nullptr; }

    /// The strategy's name, as make_registry() and the programs' --registry flag spell it.
    [[nodiscard]] std::string_view name() const noexcept { return impl_->name(); }
    /// Whether arms, cancels and closes from other threads are handed to the owner thread
    /// (registry.hpp, THREADS).
    [[nodiscard]] bool hands_off() const noexcept { return impl_->hands_off(); }
    /// Whether pending ops live in bounded storage (registry_config::max_pending).
    [[nodiscard]] bool bounded_pending() const noexcept { return impl_->bounded_pending(); }
    /// The configuration this registry was built with.
    [[nodiscard]] const registry_config& config() const noexcept { return impl_->config(); }
    /// The token of fd's current lifetime, which the kernel carries (registry.hpp, Tokens).
    [[nodiscard]] result<fd_token> token_of(int fd) { return impl_->token_of(fd); }
    /// Arms one op on (fd, d) with its callback; the refusals are registry.hpp's (arm).
    [[nodiscard]] result<op_token> arm(int fd, direction d, callback cb) {
        return impl_->arm(fd, d, std::move(cb));
    }
    /// Ends the op `t` names with `why` unless a completion won (registry.hpp, cancel).
    cancel_status cancel(op_token t, outcome why = outcome::cancelled) {
        return impl_->cancel(t, why);
    }
    /// Owner thread: ends the ops the kernel's readiness `ev` for `t` makes ready (registry.hpp,
    /// dispatch).
    std::size_t dispatch(fd_token t, readiness ev) { return impl_->dispatch(t, ev); }
    /// Ends fd's lifetime and its pending ops as closed (registry.hpp, close).
    errc close(int fd) { return impl_->close(fd); }
    /// Owner thread: applies work handed over by other threads (registry.hpp).
    std::size_t apply_handed_off() { return impl_->apply_handed_off(); }
    /// A snapshot of the counts (registry_stats).
    [[nodiscard]] registry_stats stats() const { return impl_->stats(); }

private:
    std::unique_ptr<detail::registry_iface> impl_;
};

static_assert(registry<any_registry>);

/// The strategy names, in the order tables and benchmarks list them (opreg::strategy_names,
/// for code that does not include every strategy's header through strategies.hpp).
[[nodiscard]] OPREG_API std::span<const std::string_view> registry_names() noexcept;
/// The same names joined by `separator`, for usage and error messages.
[[nodiscard]] OPREG_API std::string joined_registry_names(std::string_view separator = ", ");

/// An any_registry holding the strategy called `name`, or an empty one (operator bool is
/// false) when no strategy has that name: list registry_names() in the error message.
[[nodiscard]] OPREG_API any_registry make_registry(std::string_view name, registry_config cfg = {});

}  // namespace opreg
