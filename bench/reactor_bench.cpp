// SPDX-License-Identifier: Apache-2.0
// Reactor benchmarks: reactor/<backend>/<strategy>/ping_pong. One byte bounces between
// the two ends of a socketpair on one reactor thread; each end's read callback reads it,
// writes it back and re-arms. items_per_second counts messages, so it measures the whole
// path a request takes through a loop: kernel wait, token, registry dispatch, callback,
// re-arm, syscalls. cpu_ns_per_round_trip is what one round trip (a ping and its pong: two
// messages) costs in CPU time: the process's clock, not the benchmark thread's, so that
// work on the process's other threads (io_uring's io-wq workers) is counted too. A backend
// this machine cannot open is reported as skipped.
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>

#include <benchmark/benchmark.h>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

namespace {

using namespace opreg;

template <class R>
struct ping_pong_end {
    reactor<R>* loop = nullptr;
    int fd = -1;
    std::uint64_t* messages = nullptr;

    void arm() {
        ping_pong_end* self = this;
        (void)loop->arm(fd, direction::read, [self](const completion& c) { self->on_read(c); });
    }
    void on_read(const completion& c) {
        if (c.result != outcome::ready) return;
        char byte;
        if (::read(fd, &byte, 1) == 1) {
            ++*messages;
            (void)!::write(fd, &byte, 1);
        }
        arm();
    }
};

// Above every fd number this process opens: the socketpair, the poller's own, the wake-up.
constexpr std::uint32_t max_fds = 1024;
// A message is always in flight, so a wait ends at once; this only bounds a lost one.
constexpr int wait_ms = 100;

std::int64_t process_cpu_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

template <class R>
void ping_pong(benchmark::State& state, backend which) {
    R reg{registry_config{.max_fds = max_fds}};
    std::unique_ptr<reactor<R>> loop;
    try {
        loop = std::make_unique<reactor<R>>(reg, reactor_options{.which = which, .fall_back = false});
    } catch (const std::system_error& e) {
        state.SkipWithError(e.what());
        for (auto _ : state) {
        }
        return;
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        state.SkipWithError("socketpair failed");
        for (auto _ : state) {
        }
        return;
    }
    std::uint64_t messages = 0;
    ping_pong_end<R> ends[2] = {{loop.get(), sv[0], &messages}, {loop.get(), sv[1], &messages}};
    for (auto& e : ends) {
        (void)loop->watch(e.fd);
        e.arm();
    }
    (void)!::write(sv[0], "p", 1);
    const std::int64_t cpu_start = process_cpu_ns();
    for (auto _ : state) loop->run_once(wait_ms);
    const std::int64_t cpu_ns = process_cpu_ns() - cpu_start;
    state.SetItemsProcessed(std::int64_t(messages));
    if (messages >= 2) state.counters["cpu_ns_per_round_trip"] = double(cpu_ns) / (double(messages) / 2);
    loop->close(sv[0]);
    loop->close(sv[1]);
}

template <class R>
void register_for(backend which) {
    const std::string n = "reactor/" + std::string(to_string(which)) + "/" +
                          std::string(R::name()) + "/ping_pong";
    benchmark::RegisterBenchmark(n.c_str(), [which](benchmark::State& s) { ping_pong<R>(s, which); });
}

} // namespace

void register_reactor_benchmarks() {
    for (const backend b : {backend::epoll, backend::io_uring})
        for_each_strategy([b]<class R>(std::type_identity<R>) { register_for<R>(b); });
}
