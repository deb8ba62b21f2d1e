// SPDX-License-Identifier: Apache-2.0
// Stand-in for src/linux/backend_io_uring.cpp where it is not built (not Linux, or no liburing):
// the factory says so.
#include <opreg/detail/poller.hpp>

#include <cerrno>

namespace opreg::detail {

result<std::unique_ptr<poller>> make_io_uring_poller(std::string& why, const poller_config&) {
    why = "io_uring backend is not built on this platform (Linux with liburing only)";
    return os_failure(ENOSYS);
}

}  // namespace opreg::detail
