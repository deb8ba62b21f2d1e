// SPDX-License-Identifier: Apache-2.0
// opreg-stress: contention and race programs with exact-count oracles.
//
// For every selected registry strategy it runs the registry scenarios (reactor shape,
// cancel racing dispatch, cancel racing a completion by token, close and reuse, generation
// wrap); then the primitives' scenarios
// (pool churn, MPSC with many producers). Each prints one line in the format scripts read:
//   strategy=NAME armed=.. completed=.. cancelled=.. closed=.. stale_dropped=.. lost=0 duplicated=0 scenario=..
// and the run ends with "N passed, N failed"; the exit status is non-zero on any failure.
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

#include "primitives.hpp"
#include "scenarios.hpp"

namespace {

using namespace opreg_stress;

struct named_scenario {
    std::string_view name;
    tally (*run)(const options&);
};

// The registry scenarios, instantiated for strategy R, in the order they run.
template <class R>
constexpr std::array<named_scenario, 5> registry_scenarios = {{
    {"reactor", &reactor_shape<R>},
    {"cancel_race", &cancel_race<R>},
    {"completion_race", &completion_race<R>},
    {"close_reuse", &close_reuse<R>},
    {"generation_wrap", &generation_wrap<R>},
}};

// The primitives' scenarios, run after the strategies'.
constexpr std::array<named_scenario, 2> primitive_scenarios = {{
    {"pool_churn", &pool_churn},
    {"mpsc_producers", &mpsc_producers},
}};

// Every scenario name, in the order they run. (The registry scenarios' names are the same
// for every strategy: any one of them gives the list.)
std::vector<std::string_view> scenario_names() {
    std::vector<std::string_view> out;
    for (const auto& sc : registry_scenarios<opreg::mpsc_queue>) out.push_back(sc.name);
    for (const auto& sc : primitive_scenarios) out.push_back(sc.name);
    return out;
}

bool known_scenario(std::string_view name) {
    bool known = name == "all";
    for (const auto n : scenario_names()) known = known || name == n;
    return known;
}

// Names joined by ", ", wrapped after `width` columns onto lines that start with `indent`.
template <class Names>
std::string joined(const Names& names, std::string_view indent = {}, std::size_t width = 0) {
    std::string out;
    std::size_t line = 0;  // where the current line starts in `out`
    for (const std::string_view name : names) {
        if (!out.empty()) out += ',';
        if (width != 0 && !out.empty() && out.size() - line + 1 + name.size() > width) {
            out.append("\n").append(indent);
            line = out.size();
        } else if (!out.empty()) {
            out += ' ';
        }
        out.append(name);
    }
    return out;
}

// Bounds of the numeric options. The reactor scenario's registry has threads x in_flight
// fds, and each arming thread keeps a token per pending op.
constexpr int max_threads = 256;
constexpr int max_in_flight = 100000;

std::string usage() {
    constexpr std::string_view indent = "                        ";  // the descriptions' column
    constexpr std::size_t width = 90 - indent.size();
    const std::string strategies = joined(opreg::strategy_names, indent, width);
    const std::string scenarios = joined(scenario_names(), indent, width);
    // clang-format off
    return R"(usage: opreg-stress [options]

Runs contention and race scenarios against opreg's registry strategies and primitives,
checking with a per-operation oracle that every armed operation ends exactly once.

options:
  --registry NAME|all   a strategy, a comma-separated list, or all (default: all):
                        )" + strategies + R"(
  --scenario NAME|all   a scenario, a comma-separated list, or all (default: all):
                        )" + scenarios + R"(
  --threads N           arming/producer threads; the owner thread is one more (default: 4)
  --seconds S           run time of each timed scenario, per strategy (default: 2)
  --in-flight N         ops each thread keeps pending in the reactor scenario (default: 1000)
  --seed X              seed of every thread's random choices (default: from the clock;
                        always printed, so a run's choices can be repeated)
  --progress            print progress to stderr once a second (default: on when S >= 5)
  --list                print the strategy names, one per line, and exit
  --help                this text

output: one line per strategy and scenario,
  strategy=NAME armed=.. completed=.. cancelled=.. closed=.. stale_dropped=.. lost=0 duplicated=0 scenario=..
then "N passed, N failed". Exit status 0 only if every check passed.
)";
    // clang-format on
}

std::vector<std::string> split(std::string_view s) {
    std::vector<std::string> out;
    while (!s.empty()) {
        const auto comma = s.find(',');
        out.emplace_back(s.substr(0, comma));
        s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
    }
    return out;
}

bool wanted(const std::vector<std::string>& list, std::string_view name) {
    for (const auto& n : list)
        if (n == "all" || n == name) return true;
    return false;
}

void print(const tally& t) {
    const auto& s = t.stats;
    std::printf("strategy=%s armed=%llu completed=%llu cancelled=%llu closed=%llu "
                "stale_dropped=%llu lost=%llu duplicated=%llu scenario=%s timed_out=%llu "
                "errors=%llu refused=%llu\n",
                t.strategy.c_str(), (unsigned long long)s.armed, (unsigned long long)s.completed,
                (unsigned long long)s.cancelled, (unsigned long long)s.closed,
                (unsigned long long)s.stale_dropped, (unsigned long long)t.lost,
                (unsigned long long)t.duplicated, t.scenario.c_str(),
                (unsigned long long)s.timed_out, (unsigned long long)s.errors,
                (unsigned long long)s.failures);
    for (const auto& p : t.problems) std::printf("  FAIL %s/%s: %s\n", t.strategy.c_str(), t.scenario.c_str(), p.c_str());
    std::fflush(stdout);
}

bool parse_number(const char* text, double& out) {
    char* end = nullptr;
    out = std::strtod(text, &end);
    return end != text && *end == '\0' && out >= 0;
}

} // namespace

int main(int argc, char** argv) {
    options o;
    // A seed from the clock, kept to nine digits so that it is easy to pass back to --seed.
    o.seed = std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) % 1000000007u;
    std::vector<std::string> registries{"all"}, scenarios{"all"};
    bool progress_set = false;

    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "opreg-stress: %s needs a value\n\n%s", argv[i],
                             usage().c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        double n = 0;
        if (arg == "--help" || arg == "-h") {
            std::fputs(usage().c_str(), stdout);
            return 0;
        } else if (arg == "--list") {
            for (const std::string_view name : opreg::strategy_names)
                std::printf("%.*s\n", int(name.size()), name.data());
            return 0;
        } else if (arg == "--registry") {
            registries = split(value());
        } else if (arg == "--scenario") {
            scenarios = split(value());
        } else if (arg == "--threads" && parse_number(value(), n) && n >= 1 && n <= max_threads) {
            o.threads = int(n);
        } else if (arg == "--seconds" && parse_number(value(), n) && n > 0) {
            o.seconds = n;
        } else if (arg == "--in-flight" && parse_number(value(), n) && n >= 1 &&
                   n <= max_in_flight) {
            o.in_flight = int(n);
        } else if (arg == "--seed" && parse_number(value(), n)) {
            o.seed = std::uint64_t(n);
        } else if (arg == "--progress") {
            o.progress = progress_set = true;
        } else {
            std::fprintf(stderr, "opreg-stress: bad argument '%s'\n\n%s", argv[i], usage().c_str());
            return 2;
        }
    }
    if (!progress_set) o.progress = o.seconds >= 5;
    for (const auto& r : registries) {
        if (r != "all" && !opreg::visit_strategy(r, []<class R>(std::type_identity<R>) {})) {
            std::fprintf(stderr, "opreg-stress: unknown registry '%s' (known: %s, all)\n",
                         r.c_str(), opreg::joined_registry_names(", ").c_str());
            return 2;
        }
    }
    for (const auto& s : scenarios) {
        if (!known_scenario(s)) {
            std::fprintf(stderr, "opreg-stress: unknown scenario '%s' (known: %s, all)\n",
                         s.c_str(), joined(scenario_names()).c_str());
            return 2;
        }
    }

    std::printf("opreg-stress: seed=%llu threads=%d seconds=%g in_flight=%d\n",
                (unsigned long long)o.seed, o.threads, o.seconds, o.in_flight);
    std::fflush(stdout);
    int passed = 0, failed = 0;
    auto record = [&](const tally& t) {
        print(t);
        (t.ok() ? passed : failed) += 1;
    };
    opreg::for_each_strategy([&]<class R>(std::type_identity<R>) {
        if (!wanted(registries, R::name())) return;
        for (const auto& sc : registry_scenarios<R>)
            if (wanted(scenarios, sc.name)) record(sc.run(o));
    });
    // The primitives mpsc_queue is built from: run with it, or when named.
    for (const auto& sc : primitive_scenarios) {
        bool named = false;
        for (const auto& s : scenarios) named = named || s == sc.name;
        if (named || (wanted(scenarios, sc.name) && wanted(registries, opreg::mpsc_queue::name())))
            record(sc.run(o));
    }

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
