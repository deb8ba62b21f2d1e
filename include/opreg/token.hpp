// opreg/token.hpp — the 64-bit value that names a pending operation or an fd lifetime.
//
// A token is a slot index plus a generation, packed into one std::uint64_t so that it
// round-trips unchanged through epoll_event.data.u64, kevent.udata and io_uring's
// user_data. The table behind the token belongs to the registry; the kernel only carries it.
//
//   bits 63..32  generation   which incarnation of the slot the token was issued for
//   bits 31..0   slot index   fd (fd_token) or fd * 2 + direction (op_token)
//
// A token whose generation no longer matches its slot is *stale*: every registry resolves
// it to nothing, never to a newer operation or a newer fd lifetime. Op generations are 32
// bits wide in every strategy: a stale op token could only alias after 2^32 ops on its
// (fd, direction) while it is held. fd generations are 32 bits except in slot_array, which
// keeps 29 in its state word: a stale fd token lives in one kernel event batch, and would
// alias only after 2^29 closes of its fd number within that batch.
//
// Two kinds, kept apart by the type system so that one cannot be passed for the other:
//   fd_token  one lifetime of an fd (generation bumped by registry close). This is what the
//             reactor gives the kernel once per fd; dispatch takes it.
//   op_token  one armed operation (generation unique per (fd, direction) slot). arm returns
//             it; cancel takes it.
#pragma once

#include <compare>
#include <cstdint>

namespace opreg {

template <class Tag>
class basic_token {
public:
    constexpr basic_token() noexcept = default;
    constexpr basic_token(std::uint32_t slot, std::uint32_t generation) noexcept
        : bits_{(std::uint64_t{generation} << 32) | slot} {}

    [[nodiscard]] static constexpr basic_token from_u64(std::uint64_t bits) noexcept {
        basic_token t;
        t.bits_ = bits;
        return t;
    }
    [[nodiscard]] constexpr std::uint64_t to_u64() const noexcept { return bits_; }
    [[nodiscard]] constexpr std::uint32_t slot() const noexcept {
        return static_cast<std::uint32_t>(bits_);
    }
    [[nodiscard]] constexpr std::uint32_t generation() const noexcept {
        return static_cast<std::uint32_t>(bits_ >> 32);
    }

    friend constexpr auto operator<=>(basic_token, basic_token) noexcept = default;

private:
    std::uint64_t bits_ = 0;
};

using fd_token = basic_token<struct fd_token_tag>;
using op_token = basic_token<struct op_token_tag>;

static_assert(sizeof(fd_token) == sizeof(std::uint64_t));
static_assert(sizeof(op_token) == sizeof(std::uint64_t));

} // namespace opreg
