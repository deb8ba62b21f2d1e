// SPDX-License-Identifier: Apache-2.0
// guard_page.hpp — test memory whose bytes end right before a PROT_NONE page, so that a
// parser reading even one byte past its input faults at once (with or without ASan, which
// does not see over-reads of a larger valid allocation). A PROT_NONE page sits before the
// usable pages too, for reads before the start.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace opreg::http::test_fixtures {

class guard_page_buffer {
public:
    explicit guard_page_buffer(std::size_t capacity) {
        page_ = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        usable_ = (capacity + page_ - 1) / page_ * page_;
        if (usable_ == 0) usable_ = page_;
        void* m = ::mmap(nullptr, usable_ + 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) throw std::runtime_error("mmap failed");
        base_ = static_cast<char*>(m);
        if (::mprotect(base_, page_, PROT_NONE) != 0 || ::mprotect(base_ + page_ + usable_, page_, PROT_NONE) != 0)
            throw std::runtime_error("mprotect failed");
    }
    guard_page_buffer(const guard_page_buffer&) = delete;
    guard_page_buffer& operator=(const guard_page_buffer&) = delete;
    ~guard_page_buffer() { ::munmap(base_, usable_ + 2 * page_); }

    // Copies `bytes` so that their last byte is the last readable one; returns the copy.
    std::string_view place(std::string_view bytes) {
        if (bytes.size() > usable_) throw std::length_error("input larger than the guarded buffer");
        char* end = base_ + page_ + usable_;
        if (!bytes.empty()) std::memmove(end - bytes.size(), bytes.data(), bytes.size());
        return {end - bytes.size(), bytes.size()};
    }

private:
    std::size_t page_ = 0;
    std::size_t usable_ = 0;
    char* base_ = nullptr;
};

}  // namespace opreg::http::test_fixtures
