// SPDX-License-Identifier: Apache-2.0
// The first use with kqueue (docs/reactor.md): the same as first_use.cpp, with kevent's udata
// carrying the registry's token. Built where the kqueue backend is (BSD, macOS, or the
// kqueue configuration on Linux through libkqueue). docs/reactor.md shows the parts between
// the [kevent-*] markers; docs/snippets.py checks that they are these.
#include <sys/event.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <opreg/opreg.hpp>

int main() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    opreg::slot_array reg;

    // [kevent-register]
    int kq = kqueue();  // the kernel carries the fd's token in udata: once per fd lifetime
    const std::uint64_t token = reg.token_of(sv[0]).value().to_u64();
    struct kevent change;
    EV_SET(&change, sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0,
           reinterpret_cast<void*>(static_cast<std::uintptr_t>(token)));
    if (kevent(kq, &change, 1, nullptr, 0, nullptr) != 0) return 1;
    // [kevent-register]

    int calls = 0;
    auto op = reg.arm(sv[0], opreg::direction::read, [&calls](const opreg::completion& c) {
        std::printf("fd %d: %s\n", c.fd, opreg::to_string(c.result).data());
        ++calls;
    });
    if (!op) return std::printf("arm: %s\n", opreg::to_string(op.error()).data()), 1;
    if (write(sv[1], "x", 1) != 1) return 1;

    // [kevent-dispatch]
    struct kevent got[8];
    const timespec second{1, 0};
    for (int i = 0, n = kevent(kq, nullptr, 0, got, 8, &second); i < n; ++i) {
        const auto udata = reinterpret_cast<std::uintptr_t>(got[i].udata);
        reg.dispatch(opreg::fd_token::from_u64(udata), opreg::readiness::readable);
    }
    // [kevent-dispatch]
    close(kq);
    close(sv[0]);
    close(sv[1]);
    return calls == 1 ? 0 : 1;  // prints "fd 3: ready" once
}
