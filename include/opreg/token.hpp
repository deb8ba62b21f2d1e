// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/token.hpp — the 64-bit value that names a pending operation or an fd lifetime.
///
/// A token is a slot index plus a generation, packed into one std::uint64_t so that it
/// round-trips unchanged through epoll_event.data.u64, kevent.udata and io_uring's
/// user_data. The table behind the token belongs to the registry; the kernel only carries it.
///
///   bits 63..26  generation   which incarnation of the slot the token was issued for (38 bits)
///   bits 25..0   slot index   fd (fd_token) or fd * 2 + direction (op_token)
///
/// Registries accept fds below 2^24 (registry_config::max_fds_limit), so the slots they issue
/// stay below 2^25: a slot from 2^25 up is never issued, and the values with such a slot are
/// free for sentinels. basic_token::invalid() is one (all 64 bits set; a default-constructed
/// token is invalid), the reactor's wake-up token and the io_uring backend's own user_data
/// are others.
///
/// A token whose generation no longer matches its slot is *stale*: every registry resolves
/// it to nothing, never to a newer operation or a newer fd lifetime. Generations wrap within
/// their width; a stale token aliases a newer op or lifetime only if its slot has gone
/// through exactly a multiple of 2^width generations while the token was held.
/// - Op generations are the full 38 bits in every strategy: op tokens are held for as long
///   as a timer or a user keeps them (seconds to minutes), so they get all the width the
///   token has. 2^38 ops on one (fd, direction) take 86 minutes at 53M ops/s, the rate of a
///   single-slot arm/dispatch loop with no kernel in it, and days through a kernel.
/// - fd generations are 38 bits in every strategy but slot_array, whose state word holds 23
///   (see slot_array.hpp): a stale fd token lives in one kernel event batch, and aliasing
///   would need 2^23 closes of that very fd number while the batch is being dispatched.
///
/// Two kinds, kept apart by the type system so that one cannot be passed for the other:
///   fd_token  one lifetime of an fd (generation bumped by registry close). This is what the
///             reactor gives the kernel once per fd; dispatch takes it.
///   op_token  one armed operation (generation unique per (fd, direction) slot). arm returns
///             it; cancel takes it.
#pragma once

#include <opreg/config.hpp>

#include <cassert>
#include <compare>
#include <cstdint>

namespace opreg {

/// Bits of a token that name its slot.
inline constexpr int token_slot_bits = 26;
/// Bits of a token that hold its generation.
inline constexpr int token_generation_bits = 64 - token_slot_bits;
/// The slot bits of a token.
inline constexpr std::uint64_t token_slot_mask = (std::uint64_t{1} << token_slot_bits) - 1;
/// The generation bits, shifted down.
inline constexpr std::uint64_t token_generation_mask =
    (std::uint64_t{1} << token_generation_bits) - 1;
/// Slots from here up are never issued by a registry (sentinels; see above).
inline constexpr std::uint32_t token_reserved_slot = std::uint32_t{1} << (token_slot_bits - 1);

/// The generation after g, wrapping within the token's width.
[[nodiscard]] constexpr std::uint64_t next_generation(std::uint64_t g) noexcept {
    return (g + 1) & token_generation_mask;
}

/// A 64-bit token: a 26-bit slot and a 38-bit generation. `Tag` keeps fd_token and op_token apart.
template <class Tag>
class basic_token {
public:
    // Invalid: names nothing any registry issues (cancel finds it stale, dispatch drops it).
    constexpr basic_token() noexcept = default;
    /// `generation` is reduced to its 38 bits; `slot` must fit its 26.
    constexpr basic_token(std::uint32_t slot, std::uint64_t generation) noexcept
        : bits_{((generation & token_generation_mask) << token_slot_bits) | slot} {
        assert(slot <= token_slot_mask);
    }

    /// The token that names nothing (as default-constructed).
    [[nodiscard]] static constexpr basic_token invalid() noexcept { return basic_token{}; }
    /// The token whose bits the kernel carried back (epoll data.u64, kevent udata, io_uring
    /// user_data).
    [[nodiscard]] static constexpr basic_token from_u64(std::uint64_t bits) noexcept {
        basic_token t;
        t.bits_ = bits;
        return t;
    }
    /// The bits to hand the kernel.
    [[nodiscard]] constexpr std::uint64_t to_u64() const noexcept { return bits_; }
    /// The slot this token names.
    [[nodiscard]] constexpr std::uint32_t slot() const noexcept {
        return static_cast<std::uint32_t>(bits_ & token_slot_mask);
    }
    /// The generation of the slot this token names.
    [[nodiscard]] constexpr std::uint64_t generation() const noexcept {
        return bits_ >> token_slot_bits;
    }
    /// False for invalid() and every other sentinel: the slot was never issued.
    [[nodiscard]] constexpr bool valid() const noexcept { return slot() < token_reserved_slot; }

    /// Tokens compare by their bits.
    friend constexpr auto operator<=>(basic_token, basic_token) noexcept = default;

private:
    std::uint64_t bits_ = ~std::uint64_t{0};
};

/// One lifetime of an fd: what the kernel carries; dispatch() takes it.
using fd_token = basic_token<struct fd_token_tag>;
/// One armed operation: what arm() returns and cancel() takes.
using op_token = basic_token<struct op_token_tag>;

static_assert(sizeof(fd_token) == sizeof(std::uint64_t));
static_assert(sizeof(op_token) == sizeof(std::uint64_t));
static_assert(!op_token{}.valid() && op_token{}.slot() >= token_reserved_slot);

}  // namespace opreg
