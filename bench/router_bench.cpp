// SPDX-License-Identifier: Apache-2.0
// router/match: opreg-httpd's router finding /users/123 among 50 routes (the original
// analysis quoted 16 ns for its router on this request). Registered statically: this file
// is compiled in when the sample server is built.
#include <string>

#include <benchmark/benchmark.h>

#include "router.hpp"

namespace {

opreg::http::router fifty_routes() {
    opreg::http::router r;
    const char* resources[] = {"accounts", "orders", "items", "carts", "reviews", "tags",
                               "teams", "projects", "invoices", "sessions", "files", "events"};
    int id = 0;
    for (const char* res : resources) {
        const std::string base = std::string("/") + res;
        r.add("GET", base, id++);
        r.add("POST", base, id++);
        r.add("GET", base + "/{id}", id++);
        r.add("DELETE", base + "/{id}", id++);
    }
    r.add("GET", "/users/{id}", 1000);  // after 48 others: the worst case of a linear table
    r.add("GET", "/users/{id}/posts", id++);
    return r;
}

void router_match_users_123(benchmark::State& state) {
    const opreg::http::router r = fifty_routes();
    for (auto _ : state) {
        auto m = r.match("GET", "/users/123");
        benchmark::DoNotOptimize(m);
    }
    state.counters["routes"] = double(r.size());
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(router_match_users_123)->Name("router/match/users_123_of_50");

} // namespace
