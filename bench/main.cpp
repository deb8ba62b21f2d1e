// SPDX-License-Identifier: Apache-2.0
// opreg-bench: Google Benchmark over the registry strategies, the reactor backends and the
// hand-off queues. Every number is a comparison: the mutex_map baseline runs beside each
// contender in the same process (the intrusive queue beside other queues and a mutex around
// a deque). Benchmarks are named registry/<strategy>/<scenario>,
// reactor/<backend>/<strategy>/<scenario> and queue/<queue>/producers:<n>; see --help for Google Benchmark's flags
// (--benchmark_filter, --benchmark_format=json, --benchmark_repetitions, ...).
// --list prints the strategy names, one per line, for scripts.
#include <cstdio>
#include <cstring>

#include <benchmark/benchmark.h>

#include <opreg/strategies.hpp>

void register_registry_benchmarks();
void register_reactor_benchmarks();
void register_queue_benchmarks();

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            std::puts(
                "usage: opreg-bench [--list] [google benchmark flags]\n\n"
                "Benchmarks of opreg's registry strategies (registry/<strategy>/<scenario>,\n"
                "scenarios arm_fire, arm_cancel, mixed, cross_thread, memory) and reactor\n"
                "backends (reactor/<backend>/<strategy>/ping_pong), and of hand-off queues\n"
                "(queue/<queue>/producers:<n>, 56-byte tasks to one consumer; filter '^queue/').\n"
                "Throughput is reported as items_per_second; memory as bytes_per_pending_op.\n\n"
                "Useful flags:\n"
                "  --list                          the registry strategies, one per line\n"
                "  --benchmark_filter=REGEX        run only matching benchmarks\n"
                "  --benchmark_format=json         machine-readable output\n"
                "  --benchmark_out=FILE            also write results to FILE\n"
                "  --benchmark_repetitions=N       repeat, and report mean/median/stddev\n"
                "  --benchmark_min_time=SECONDS    time per benchmark (default 0.5)\n");
            return 0;
        }
        if (std::strcmp(argv[i], "--list") == 0) {
            for (const auto name : opreg::strategy_names)
                std::printf("%.*s\n", int(name.size()), name.data());
            return 0;
        }
    }
    register_registry_benchmarks();
    register_reactor_benchmarks();
    register_queue_benchmarks();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
