// SPDX-License-Identifier: Apache-2.0
// opreg-httpd's router: method + path -> handler, with {name} path parameters.
//
// Routes are split into segments once, when added, and indexed by their first segment;
// matching looks at the routes that share the request path's first segment (plus those
// that start with a parameter), walking segments without allocating (parameters are views
// into the path). A path that matches some route under another method is 405 (with the
// methods allowed), one that matches none is 404.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace opreg::http {

struct route_param {
    std::string_view name;
    std::string_view value;
};

struct route_match {
    enum class kind : std::uint8_t { found, not_found, method_not_allowed } result = kind::not_found;
    int handler = -1;               // the id given to add()
    route_param params[4];          // path parameters, in order
    std::size_t param_count = 0;
    std::string allowed;            // for 405: "GET, HEAD"

    [[nodiscard]] std::string_view param(std::string_view name) const noexcept {
        for (std::size_t i = 0; i < param_count; ++i)
            if (params[i].name == name) return params[i].value;
        return {};
    }
};

class router {
public:
    // pattern: "/", "/json", "/users/{id}"; at most 4 parameters, each a whole segment.
    void add(std::string_view method, std::string_view pattern, int handler);

    // path: the request-target without its query string.
    [[nodiscard]] route_match match(std::string_view method, std::string_view path) const;

    [[nodiscard]] std::size_t size() const noexcept { return routes_.size(); }

private:
    struct segment {
        std::string text;  // literal, or the parameter's name
        bool param = false;
    };
    struct route {
        std::string method;
        std::vector<segment> segments;
        int handler;
    };
    static bool match_path(const route& r, std::string_view path, route_match& m) noexcept;
    // The routes a path may match: those under its first segment, then parameter-first ones.
    template <class F>
    void for_candidates(std::string_view path, F&& f) const;

    std::vector<route> routes_;
    // First literal segment ("" for "/") -> indices into routes_, sorted by segment.
    std::vector<std::pair<std::string, std::vector<std::size_t>>> by_first_;
    std::vector<std::size_t> param_first_;
};

} // namespace opreg::http
