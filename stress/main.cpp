// opreg-stress: contention and race programs with exact-count oracles.
//
// For every selected registry strategy it runs the registry scenarios (reactor shape,
// cancel racing dispatch, close and reuse, generation wrap); then the primitives' scenarios
// (pool churn, MPSC with many producers). Each prints one line in the format scripts read:
//   strategy=NAME armed=.. completed=.. cancelled=.. closed=.. stale_dropped=.. lost=0 duplicated=0 scenario=..
// and the run ends with "N passed, N failed"; the exit status is non-zero on any failure.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <opreg/opreg.hpp>

#include "primitives.hpp"
#include "scenarios.hpp"

namespace {

using namespace opreg_stress;

constexpr const char* usage = R"(usage: opreg-stress [options]

Runs contention and race scenarios against opreg's registry strategies and primitives,
checking with a per-operation oracle that every armed operation ends exactly once.

options:
  --registry NAME|all   strategy to stress (mutex_map, sharded_map, tbb_map, slot_array,
                        mpsc_queue), a comma-separated list, or all (default: all)
  --scenario NAME|all   reactor, cancel_race, close_reuse, generation_wrap, pool_churn,
                        mpsc_producers, a comma-separated list, or all (default: all)
  --threads N           arming/producer threads; the owner thread is one more (default: 4)
  --seconds S           run time of each timed scenario, per strategy (default: 2)
  --in-flight N         ops each thread keeps pending in the reactor scenario (default: 1000)
  --seed X              seed of every thread's random choices (default: from the clock;
                        always printed, so a run's choices can be repeated)
  --progress            print progress to stderr once a second (default: on when S >= 5)
  --help                this text

output: one line per strategy and scenario,
  strategy=NAME armed=.. completed=.. cancelled=.. closed=.. stale_dropped=.. lost=0 duplicated=0 scenario=..
then "N passed, N failed". Exit status 0 only if every check passed.
)";

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

template <class R>
using scenario_fn = tally (*)(const options&);

struct registry_scenario {
    const char* name;
    std::function<tally(const options&)> run[5];  // indexed like opreg::registry_names()
};

template <template <class> class F>
std::function<tally(const options&)> for_strategy(std::string_view name) {
    if (name == "mutex_map") return F<opreg::mutex_map>::run;
    if (name == "sharded_map") return F<opreg::sharded_map>::run;
    if (name == "tbb_map") return F<opreg::tbb_map>::run;
    if (name == "slot_array") return F<opreg::slot_array>::run;
    return F<opreg::mpsc_queue>::run;
}

template <class R> struct reactor_f { static tally run(const options& o) { return reactor_shape<R>(o); } };
template <class R> struct cancel_f { static tally run(const options& o) { return cancel_race<R>(o); } };
template <class R> struct close_f { static tally run(const options& o) { return close_reuse<R>(o); } };
template <class R> struct wrap_f { static tally run(const options& o) { return generation_wrap<R>(o); } };

struct named_scenario {
    const char* name;
    std::function<tally(const options&)> (*pick)(std::string_view);
};
constexpr named_scenario registry_scenarios[] = {
    {"reactor", &for_strategy<reactor_f>},
    {"cancel_race", &for_strategy<cancel_f>},
    {"close_reuse", &for_strategy<close_f>},
    {"generation_wrap", &for_strategy<wrap_f>},
};

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
    o.seed = std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) % 1000000007u;
    std::vector<std::string> registries{"all"}, scenarios{"all"};
    bool progress_set = false;

    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "opreg-stress: %s needs a value\n\n%s", argv[i], usage);
                std::exit(2);
            }
            return argv[++i];
        };
        double n = 0;
        if (arg == "--help" || arg == "-h") {
            std::fputs(usage, stdout);
            return 0;
        } else if (arg == "--registry") {
            registries = split(value());
        } else if (arg == "--scenario") {
            scenarios = split(value());
        } else if (arg == "--threads" && parse_number(value(), n) && n >= 1 && n <= 256) {
            o.threads = int(n);
        } else if (arg == "--seconds" && parse_number(value(), n) && n > 0) {
            o.seconds = n;
        } else if (arg == "--in-flight" && parse_number(value(), n) && n >= 1 && n <= 100000) {
            o.in_flight = int(n);
        } else if (arg == "--seed" && parse_number(value(), n)) {
            o.seed = std::uint64_t(n);
        } else if (arg == "--progress") {
            o.progress = progress_set = true;
        } else {
            std::fprintf(stderr, "opreg-stress: bad argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!progress_set) o.progress = o.seconds >= 5;
    for (const auto& r : registries) {
        bool known = r == "all";
        for (const auto n : opreg::registry_names()) known = known || r == n;
        if (!known) {
            std::fprintf(stderr, "opreg-stress: unknown registry '%s' (known: mutex_map, "
                                 "sharded_map, tbb_map, slot_array, mpsc_queue, all)\n", r.c_str());
            return 2;
        }
    }
    for (const auto& s : scenarios) {
        bool known = s == "all" || s == "pool_churn" || s == "mpsc_producers";
        for (const auto& rs : registry_scenarios) known = known || s == rs.name;
        if (!known) {
            std::fprintf(stderr, "opreg-stress: unknown scenario '%s' (see --help)\n", s.c_str());
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
    for (const std::string_view name : opreg::registry_names()) {
        if (!wanted(registries, name)) continue;
        for (const auto& sc : registry_scenarios)
            if (wanted(scenarios, sc.name)) record(sc.pick(name)(o));
    }
    // The primitives mpsc_queue is built from: run with it, or when named.
    auto primitive_wanted = [&](std::string_view scenario) {
        for (const auto& s : scenarios)
            if (s == scenario) return true;
        return wanted(scenarios, scenario) && wanted(registries, "mpsc_queue");
    };
    if (primitive_wanted("pool_churn")) record(pool_churn(o));
    if (primitive_wanted("mpsc_producers")) record(mpsc_producers(o));

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
