// SPDX-License-Identifier: Apache-2.0
// Stand-in for src/linux/backend_epoll.cpp where epoll is not built: the factory says so.
#include <opreg/detail/poller.hpp>

#include <cerrno>

namespace opreg::detail {

result<std::unique_ptr<poller>> make_epoll_poller(std::string& why) {
    why = "epoll backend is not built on this platform (Linux only)";
    return os_failure(ENOSYS);
}

}  // namespace opreg::detail
