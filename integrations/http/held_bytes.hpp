// SPDX-License-Identifier: Apache-2.0
// held_bytes: bytes a connection keeps between events (an incomplete request, or response
// bytes the socket has not taken yet). It owns an allocation only while it holds bytes, of
// exactly their size, so a connection idle on keep-alive holds no buffer at all.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace opreg::http {

class held_bytes {
public:
    [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
    [[nodiscard]] std::size_t size() const noexcept { return end_ - begin_; }
    [[nodiscard]] std::string_view view() const noexcept {
        return empty() ? std::string_view{} : std::string_view(data_.get() + begin_, size());
    }

    // Holds a copy of `bytes` instead of what it held (nothing allocated when empty).
    void assign(std::string_view bytes) {
        reset();
        if (bytes.empty()) return;
        data_ = std::make_unique_for_overwrite<char[]>(bytes.size());
        std::memcpy(data_.get(), bytes.data(), bytes.size());
        end_ = bytes.size();
    }

    // Holds a copy of `bytes` in `block`, an allocation of at least bytes.size() the caller
    // lends (take_block() hands it back), instead of what it held.
    void assign_into(std::unique_ptr<char[]> block, std::string_view bytes) noexcept {
        reset();
        data_ = std::move(block);
        std::memcpy(data_.get(), bytes.data(), bytes.size());
        end_ = bytes.size();
    }

    // The allocation, handed back whatever it still holds; empty after.
    [[nodiscard]] std::unique_ptr<char[]> take_block() noexcept {
        begin_ = end_ = 0;
        return std::move(data_);
    }

    // Drops the first n bytes (n <= size(): written out); frees the allocation with the last.
    void consume(std::size_t n) noexcept {
        begin_ += n;
        if (empty()) reset();
    }

    void reset() noexcept {
        data_.reset();
        begin_ = end_ = 0;
    }

private:
    std::unique_ptr<char[]> data_;
    std::size_t begin_ = 0;  // the bytes still held are data_[begin_, end_)
    std::size_t end_ = 0;
};

}  // namespace opreg::http
