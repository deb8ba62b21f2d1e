// SPDX-License-Identifier: Apache-2.0
// response_buffer: where the responses to one read are written, in order, so that they go
// out in one write. The application appends a response's head, then its body, and marks
// the end of each part; the marks are kept only when asked for (--write-per-part, the
// diagnosis that writes each part on its own), so the server's normal path keeps no list.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace opreg::http {

class response_buffer {
public:
    response_buffer() = default;
    // record_parts: keep where each part ends (see part_ends()).
    explicit response_buffer(bool record_parts) : record_parts_{record_parts} {}

    // What the application appends to. A part ends only where end_part() says so.
    [[nodiscard]] std::string& bytes() noexcept { return bytes_; }
    [[nodiscard]] std::string_view view() const noexcept { return bytes_; }
    [[nodiscard]] bool empty() const noexcept { return bytes_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return bytes_.size(); }

    // The bytes appended since the last mark are one part (a response's head, or its body).
    // An empty part (a HEAD response's body) is not a part.
    void end_part() {
        if (!record_parts_) return;
        if (bytes_.size() > (part_ends_.empty() ? 0 : part_ends_.back()))
            part_ends_.push_back(bytes_.size());
    }

    // Offsets one past each part's last byte, ascending; empty unless parts are recorded.
    // Bytes after the last mark (none, when every append was marked) are one more part.
    [[nodiscard]] std::span<const std::size_t> part_ends() const noexcept { return part_ends_; }

    void reserve(std::size_t n) { bytes_.reserve(n); }
    void clear() noexcept {
        bytes_.clear();
        part_ends_.clear();
    }

private:
    std::string bytes_;
    std::vector<std::size_t> part_ends_;
    bool record_parts_ = false;
};

}  // namespace opreg::http
