// SPDX-License-Identifier: Apache-2.0
#include "router.hpp"

#include <algorithm>

namespace opreg::http {

namespace {

// Next '/'-separated segment of `path` starting at `pos` (which is just past a '/').
std::string_view next_segment(std::string_view path, std::size_t& pos) noexcept {
    const std::size_t end = path.find('/', pos);
    const std::string_view seg =
        path.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? path.size() + 1 : end + 1;
    return seg;
}

} // namespace

void router::add(std::string_view method, std::string_view pattern, int handler) {
    route r{std::string(method), {}, handler};
    std::size_t pos = 1;
    while (pattern.size() > 1 && pos <= pattern.size()) {
        const std::string_view seg = next_segment(pattern, pos);
        if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}')
            r.segments.push_back({std::string(seg.substr(1, seg.size() - 2)), true});
        else
            r.segments.push_back({std::string(seg), false});
    }
    const std::size_t index = routes_.size();
    if (!r.segments.empty() && r.segments.front().param) {
        param_first_.push_back(index);
    } else {
        const std::string first = r.segments.empty() ? std::string() : r.segments.front().text;
        auto it = std::lower_bound(by_first_.begin(), by_first_.end(), first,
                                   [](const auto& e, const std::string& k) { return e.first < k; });
        if (it == by_first_.end() || it->first != first) it = by_first_.insert(it, {first, {}});
        it->second.push_back(index);
    }
    routes_.push_back(std::move(r));
}

template <class F>
void router::for_candidates(std::string_view path, F&& f) const {
    std::string_view first;
    if (path.size() > 1) {
        const std::size_t end = path.find('/', 1);
        first = path.substr(1, end == std::string_view::npos ? std::string_view::npos : end - 1);
    }
    auto it = std::lower_bound(by_first_.begin(), by_first_.end(), first,
                               [](const auto& e, std::string_view k) { return e.first < k; });
    if (it != by_first_.end() && it->first == first)
        for (const std::size_t i : it->second)
            if (f(routes_[i])) return;
    for (const std::size_t i : param_first_)
        if (f(routes_[i])) return;
}

bool router::match_path(const route& r, std::string_view path, route_match& m) noexcept {
    if (path.empty() || path.front() != '/') return false;
    m.param_count = 0;
    std::size_t pos = 1;
    std::size_t i = 0;
    if (path.size() == 1) return r.segments.empty();  // "/"
    while (pos <= path.size()) {
        if (i == r.segments.size()) return false;
        const std::string_view seg = next_segment(path, pos);
        const segment& want = r.segments[i++];
        if (want.param) {
            if (seg.empty() || m.param_count == 4) return false;
            m.params[m.param_count++] = {want.text, seg};
        } else if (seg != want.text) {
            return false;
        }
    }
    return i == r.segments.size();
}

route_match router::match(std::string_view method, std::string_view path) const {
    route_match m;
    bool path_known = false;
    for_candidates(path, [&](const route& r) {
        if (!match_path(r, path, m)) return false;
        if (r.method == method || (method == "HEAD" && r.method == "GET")) {
            m.result = route_match::kind::found;
            m.handler = r.handler;
            return true;
        }
        path_known = true;
        return false;
    });
    if (m.result == route_match::kind::found) return m;
    if (!path_known) return route_match{};
    route_match not_allowed;
    not_allowed.result = route_match::kind::method_not_allowed;
    for_candidates(path, [&](const route& r) {
        route_match probe;
        if (!match_path(r, path, probe)) return false;
        if (!not_allowed.allowed.empty()) not_allowed.allowed += ", ";
        not_allowed.allowed += r.method;
        if (r.method == "GET") not_allowed.allowed += ", HEAD";
        return false;
    });
    return not_allowed;
}

} // namespace opreg::http
