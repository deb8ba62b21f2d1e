// SPDX-License-Identifier: Apache-2.0
// Stand-in for src/kqueue/backend_kqueue.cpp where kqueue is not built: the factory says so.
#include <opreg/detail/poller.hpp>

#include <cerrno>

namespace opreg::detail {

result<std::unique_ptr<poller>> make_kqueue_poller(std::string& why) {
    why = "kqueue backend is not built on this platform (BSD and macOS only)";
    return os_failure(ENOSYS);
}

}  // namespace opreg::detail
