// SPDX-License-Identifier: Apache-2.0
// stress/relacy/model_driver.hpp — runs a Relacy test under the schedulers a model asks for
// and turns the results into a report and an exit status.
//
// A model program runs in one of two modes:
//   normal      every search must end without an error: the model holds.
//   --weakened  the header with one named site weakened (a release made relaxed, or one of
//               the bugs detail/sync.hpp names); every such variant must be caught, as a
//               data race or as the failed assertion the model names. A model that cannot
//               fail proves nothing, so this mode passes only when Relacy finds the bug it
//               was given.
// Include it after every other header: <relacy/relacy.hpp> redefines new, delete and assert.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include <relacy/relacy.hpp>

namespace model {

struct search {
    const char* name;              // printed: "random", "context bound 2", ...
    rl::scheduler_type_e scheduler;
    rl::iteration_t iterations;    // random scheduler only; tree searches run to exhaustion
    unsigned context_bound;        // sched_bound only
};

struct outcome {
    rl::test_result_e result = rl::test_result_success;
    rl::iteration_t iterations = 0;  // run, or the one that failed
    double seconds = 0;
    std::string report;              // Relacy's own output: the failing history, if any
};

// Schedules one random search tries: under a second for each model, while every weakened
// variant is caught within its first few dozen.
constexpr rl::iteration_t random_schedules = 200000;
constexpr search random_search{"random", rl::sched_random, random_schedules, 0};

// The command line of a model: [--weakened] [--deep] [--verbose]. --deep runs a deeper
// bounded search where a model has one (too slow for every CI run). false, with the usage
// printed, on anything else.
struct options {
    bool weakened = false;
    bool deep = false;
    bool verbose = false;
};

inline bool parse(int argc, char** argv, options& o) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--weakened") == 0) {
            o.weakened = true;
        } else if (std::strcmp(argv[i], "--deep") == 0) {
            o.deep = true;
        } else if (std::strcmp(argv[i], "--verbose") == 0) {
            o.verbose = true;
        } else {
            std::fprintf(stderr, "usage: %s [--weakened] [--deep] [--verbose]\n", argv[0]);
            return false;
        }
    }
    return true;
}

template <class Test>
outcome run(const search& s) {
    rl::test_params p;
    // Relacy's string stream: Relacy replaces the global operator new and delete, and a
    // std::ostringstream growing inside a simulation would free memory it did not allocate.
    rl::ostringstream out;
    p.search_type = s.scheduler;
    p.iteration_count = s.iterations;
    p.context_bound = s.context_bound;
    p.output_stream = &out;
    p.progress_stream = &out;
    const auto start = std::chrono::steady_clock::now();
    rl::simulate<Test>(p);
    outcome o;
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    o.result = p.test_result;
    o.iterations = p.stop_iteration;
    const auto report = out.str();
    o.report.assign(report.data(), report.size());
    return o;
}

// The last lines of a failing run's interleaving (Relacy prints it first, in time order,
// then once more per thread): the access that failed and what led to it.
inline std::string failure_excerpt(const std::string& report, int lines) {
    const std::size_t history = report.find("execution history");
    if (history == std::string::npos) return report;
    const std::size_t end = report.find("\n\n", history);
    std::string text = report.substr(history, end == std::string::npos ? end : end - history);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    std::size_t pos = text.size();
    while (lines-- > 0 && pos > 0) {
        pos = text.rfind('\n', pos - 1);
        if (pos == std::string::npos) return text;
    }
    return text.substr(pos + 1);
}

// Normal mode: true when every search ends without an error.
template <class Test>
bool expect_holds(const char* model_name, const search& s, bool verbose) {
    const outcome o = run<Test>(s);
    const bool ok = o.result == rl::test_result_success;
    std::printf("%s %-18s %9llu iterations %7.2f s  %s\n", model_name, s.name,
                static_cast<unsigned long long>(o.iterations), o.seconds,
                ok ? "no error" : rl::test_result_str(o.result));
    if (!ok || verbose) std::printf("%s\n", o.report.c_str());
    return ok;
}

// Weakened mode: true when one of the searches reports `expected`: by default a data race,
// the failure a missing release causes on the data it publishes; a model whose weakening
// breaks a state it asserts names rl::test_result_user_assert_failed. Any other failure (a
// livelock, another kind) is not counted as caught: it says the harness is wrong. Searches
// run in order and stop at the first failure.
template <class Test, std::size_t N>
bool expect_caught(const char* model_name, const char* variant, const search (&searches)[N],
                   bool verbose, rl::test_result_e expected = rl::test_result_data_race) {
    for (const search& s : searches) {
        const outcome o = run<Test>(s);
        if (o.result != rl::test_result_success) {
            const bool caught = o.result == expected;
            std::printf("%s [%s] %-18s %s: %s at iteration %llu (%.2f s)\n", model_name,
                        variant, s.name, caught ? "caught" : "UNEXPECTED FAILURE",
                        rl::test_result_str(o.result),
                        static_cast<unsigned long long>(o.iterations), o.seconds);
            std::printf("%s\n", verbose ? o.report.c_str() : failure_excerpt(o.report, 6).c_str());
            return caught;
        }
        std::printf("%s [%s] %-18s %llu iterations, not caught\n", model_name, variant, s.name,
                    static_cast<unsigned long long>(o.iterations));
    }
    std::printf("%s [%s] NOT CAUGHT: the model cannot see this bug\n", model_name, variant);
    return false;
}

} // namespace model
