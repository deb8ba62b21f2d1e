// SPDX-License-Identifier: Apache-2.0
// The README's first use: arm a read on a socketpair, write to the other end, let epoll
// carry the registry's token back, dispatch, and see the callback run once. The README
// shows the part between the [first-use] markers; docs/snippets.py checks that it is this.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cstdio>
#include <opreg/opreg.hpp>

int main() {
    // [first-use]
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) return 1;
    opreg::slot_array reg;  // or opreg::make_registry("mpsc_queue"), etc.

    int ep = epoll_create1(0);  // the kernel carries the fd's token: once per fd lifetime
    epoll_event ev{.events = EPOLLIN | EPOLLET,
                   .data = {.u64 = reg.token_of(sv[0]).value().to_u64()}};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev) != 0) return 1;

    int calls = 0;
    auto op = reg.arm(sv[0], opreg::direction::read, [&calls](const opreg::completion& c) {
        std::printf("fd %d: %s\n", c.fd, opreg::to_string(c.result).data());
        ++calls;
    });
    if (!op) return std::printf("arm: %s\n", opreg::to_string(op.error()).data()), 1;
    if (write(sv[1], "x", 1) != 1) return 1;

    epoll_event got[8];
    for (int i = 0, n = epoll_wait(ep, got, 8, 1000); i < n; ++i)
        reg.dispatch(opreg::fd_token::from_u64(got[i].data.u64), opreg::readiness::readable);
    // prints "fd 3: ready" once
    // [first-use]
    return calls == 1 ? 0 : 1;
}
