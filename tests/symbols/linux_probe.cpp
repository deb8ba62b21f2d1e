// SPDX-License-Identifier: Apache-2.0
// Calls what only Linux has, so that the symbol check is seen to fail on an object that
// does (its test is expected to fail).
#include <sys/epoll.h>
#include <sys/eventfd.h>

int opreg_symbol_probe() {
    epoll_event ev{};
    return ::epoll_wait(::epoll_create1(0), &ev, 1, 0) + ::eventfd(0, 0);
}
