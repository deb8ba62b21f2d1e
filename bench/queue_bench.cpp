// SPDX-License-Identifier: Apache-2.0
// Queue benchmarks: queue/<queue>/producers:<n>. n producer threads hand 56-byte tasks (the
// size of reactor<R>::task, which OPREG_TASK_CAPACITY changes) to one consumer, which is the benchmark's own thread, as a
// reactor's post queue takes tasks from other threads. The queues, behind one surface:
//
//   intrusive_pool   opreg::object_pool<node> + opreg::intrusive_mpsc_queue, a node being a
//                    hook and a task (one 64-byte line), as the reactor's post() uses them
//   moodycamel       moodycamel::ConcurrentQueue<task>, try_enqueue with a ProducerToken per
//                    producer, try_dequeue with a ConsumerToken
//   moodycamel_implicit  the same, try_enqueue without a token (an implicit producer per
//                    thread), as post(), called from any thread, would have to
//   moodycamel_pool  the same queue carrying pointers into opreg::object_pool<task>: what
//                    the registry's hand-off could use (its command outlives the queue)
//   boost_lockfree   boost::lockfree::queue<task>, nodes preallocated, bounded_push (built
//                    only where Boost is found)
//   mutex_deque      std::deque<task> under one std::mutex, the baseline
//
// Every queue does the same work. An iteration is one round: each producer pushes
// items_per_round / n tasks, and the consumer pops until it has all items_per_round of
// them, so the queue is empty between rounds and the shape does not depend on timing.
// Each queue holds `capacity` tasks without allocating (the reactor's default max_posts);
// a round fits, so a producer only meets a full queue if a queue holds less than it says
// (counted: full_retries). The consumer checks every task: its producer, its sequence
// number (per producer, strictly in order: every queue here is FIFO per producer) and both
// ends of its payload, so a queue that loses, repeats, reorders or tears a task fails the
// run. Throughput is items_per_second in real time: tasks the consumer popped.
//
// The consumer is pinned to one CPU and the producers to the others (see placement), so a
// row measures tasks crossing cores; under `taskset -c 0` everything shares one core and a
// row measures the instructions alone. Producers and the consumer wait alike: a few pause
// instructions, then yield. With more producers than the other cores (producers:2 and :4
// on a 2-core machine) producers take turns on a core, as posting threads would.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <concurrentqueue/concurrentqueue.h>
#if OPREG_BENCH_BOOST_LOCKFREE
#include <boost/lockfree/queue.hpp>
#endif

#include <opreg/intrusive_mpsc_queue.hpp>
#include <opreg/object_pool.hpp>
#include <opreg/reactor.hpp>
#include <opreg/slot_array.hpp>

namespace {

// Tasks one round passes, whatever the producer count (divisible by each of them).
constexpr std::uint32_t items_per_round = 4096;
// Tasks a queue holds at once without allocating: reactor_options::max_posts's default.
constexpr std::size_t capacity = 4096;
constexpr int producer_counts[] = {1, 2, 4};
// A round that has not ended after this long has lost a task: the run fails, not hangs.
constexpr std::chrono::seconds round_limit{10};

// The size of the reactor's posted task: 56 bytes at the default OPREG_TASK_CAPACITY.
constexpr std::size_t task_bytes = sizeof(opreg::reactor<opreg::slot_array>::task);
static_assert(task_bytes % sizeof(std::uint64_t) == 0 && task_bytes >= 3 * sizeof(std::uint64_t));

// Trivially copyable: the producer, a sequence number, and a payload that repeats the
// sequence number so that the consumer can see a torn copy.
struct task {
    static constexpr std::size_t payload_words = task_bytes / sizeof(std::uint64_t) - 2;
    std::uint64_t producer = 0;
    std::uint64_t seq = 0;
    std::uint64_t payload[payload_words] = {};
};
static_assert(sizeof(task) == task_bytes, "a task is the size of the reactor's posted task");

[[nodiscard]] task make_task(std::uint64_t producer, std::uint64_t seq) noexcept {
    task t{producer, seq, {}};
    for (std::uint64_t& w : t.payload) w = seq;
    return t;
}

// Waiting for room (producers) or for a task (the consumer): spin briefly, then let the
// thread that would end the wait run, which it must on an oversubscribed machine.
class backoff {
public:
    void wait() noexcept {
        if (spins_ < spin_limit) {
            ++spins_;
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            std::this_thread::yield();
        }
    }
    void reset() noexcept { spins_ = 0; }

private:
    static constexpr int spin_limit = 64;
    int spins_ = 0;
};

// The queues, one surface each: a per-producer and a consumer handle (a token, or nothing),
// try_push and try_pop. try_push copies the task in; try_pop copies it out.

class intrusive_pool {
public:
    static constexpr const char* name = "intrusive_pool";
    struct producer {};
    struct consumer {};

    explicit intrusive_pool(int /*producers*/) : pool_{capacity} {}
    ~intrusive_pool() {
        while (node* n = queue_.try_pop()) pool_.destroy(n);
    }

    producer make_producer() { return {}; }
    consumer make_consumer() { return {}; }

    [[nodiscard]] bool try_push(producer&, const task& t) noexcept {
        node* n = pool_.try_create(t);
        if (n == nullptr) return false;
        queue_.push(n);
        return true;
    }
    [[nodiscard]] bool try_pop(consumer&, task& out) noexcept {
        node* n = queue_.try_pop();
        if (n == nullptr) return false;
        out = n->t;
        pool_.destroy(n);
        return true;
    }

private:
    struct node {
        explicit node(const task& v) noexcept : t{v} {}
        opreg::mpsc_hook hook;
        task t;
    };
    static_assert(sizeof(node) == opreg::detail::cache_line || task_bytes != 56,
                  "a node is one line at the default capacity, as post's");

    opreg::object_pool<node> pool_;
    opreg::intrusive_mpsc_queue<node, &node::hook> queue_;
};

class moodycamel_queue {
    using queue_type = moodycamel::ConcurrentQueue<task>;

public:
    static constexpr const char* name = "moodycamel";
    using producer = moodycamel::ProducerToken;
    using consumer = moodycamel::ConsumerToken;

    // Sized for `capacity` per explicit producer: the constructor the library documents for
    // try_enqueue with tokens (its blocks are preallocated; try_enqueue never allocates).
    explicit moodycamel_queue(int producers) : queue_{capacity, std::size_t(producers), 0} {}

    producer make_producer() { return producer{queue_}; }
    consumer make_consumer() { return consumer{queue_}; }

    [[nodiscard]] bool try_push(producer& p, const task& t) noexcept {
        return queue_.try_enqueue(p, t);
    }
    [[nodiscard]] bool try_pop(consumer& c, task& out) noexcept {
        return queue_.try_dequeue(c, out);
    }

private:
    queue_type queue_;
};

// moodycamel as post() could call it: posting threads are anyone's, so they hold no token;
// each is an implicit producer, found by thread id. The consumer, the reactor thread, keeps
// a token.
class moodycamel_implicit {
    // An implicit producer's block index starts at 32 blocks (1024 tasks), and try_enqueue
    // may not grow it: it fails beyond that, whatever the constructor preallocated. Sized
    // here so that one producer can hold `capacity` too.
    struct traits : moodycamel::ConcurrentQueueDefaultTraits {
        static constexpr std::size_t IMPLICIT_INITIAL_INDEX_SIZE = capacity / BLOCK_SIZE;
    };
    static_assert(std::has_single_bit(traits::IMPLICIT_INITIAL_INDEX_SIZE), "a power of 2");

public:
    static constexpr const char* name = "moodycamel_implicit";
    struct producer {};
    using consumer = moodycamel::ConsumerToken;

    explicit moodycamel_implicit(int producers) : queue_{capacity, 0, std::size_t(producers)} {}

    producer make_producer() { return {}; }
    consumer make_consumer() { return consumer{queue_}; }

    [[nodiscard]] bool try_push(producer&, const task& t) noexcept {
        return queue_.try_enqueue(t);
    }
    [[nodiscard]] bool try_pop(consumer& c, task& out) noexcept {
        return queue_.try_dequeue(c, out);
    }

private:
    moodycamel::ConcurrentQueue<task, traits> queue_;
};

// moodycamel carrying pointers into the project's pool: the shape mpsc_queue's hand-off would
// need, since its arm command stays on as the pending op's record. Tells the queue's share
// of a difference from the pool's.
class moodycamel_pool {
public:
    static constexpr const char* name = "moodycamel_pool";
    using producer = moodycamel::ProducerToken;
    using consumer = moodycamel::ConsumerToken;

    explicit moodycamel_pool(int producers)
        : pool_{capacity}, queue_{capacity, std::size_t(producers), 0} {}
    ~moodycamel_pool() {
        task* t;
        while (queue_.try_dequeue(t)) pool_.destroy(t);
    }

    producer make_producer() { return producer{queue_}; }
    consumer make_consumer() { return consumer{queue_}; }

    [[nodiscard]] bool try_push(producer& p, const task& t) noexcept {
        task* n = pool_.try_create(t);
        if (n == nullptr) return false;
        if (queue_.try_enqueue(p, n)) return true;
        pool_.destroy(n);
        return false;
    }
    [[nodiscard]] bool try_pop(consumer& c, task& out) noexcept {
        task* n;
        if (!queue_.try_dequeue(c, n)) return false;
        out = *n;
        pool_.destroy(n);
        return true;
    }

private:
    opreg::object_pool<task> pool_;
    moodycamel::ConcurrentQueue<task*> queue_;
};

#if OPREG_BENCH_BOOST_LOCKFREE
class boost_lockfree {
public:
    static constexpr const char* name = "boost_lockfree";
    struct producer {};
    struct consumer {};

    // `capacity` nodes up front; bounded_push takes only those, never the heap.
    explicit boost_lockfree(int /*producers*/) : queue_{capacity} {}

    producer make_producer() { return {}; }
    consumer make_consumer() { return {}; }

    [[nodiscard]] bool try_push(producer&, const task& t) noexcept {
        return queue_.bounded_push(t);
    }
    [[nodiscard]] bool try_pop(consumer&, task& out) noexcept { return queue_.pop(out); }

private:
    boost::lockfree::queue<task> queue_;
};
#endif

class mutex_deque {
public:
    static constexpr const char* name = "mutex_deque";
    struct producer {};
    struct consumer {};

    explicit mutex_deque(int /*producers*/) {}

    producer make_producer() { return {}; }
    consumer make_consumer() { return {}; }

    // Bounded like the others, so that none can hold more than another.
    [[nodiscard]] bool try_push(producer&, const task& t) {
        const std::lock_guard lock{mutex_};
        if (tasks_.size() == capacity) return false;
        tasks_.push_back(t);
        return true;
    }
    [[nodiscard]] bool try_pop(consumer&, task& out) {
        const std::lock_guard lock{mutex_};
        if (tasks_.empty()) return false;
        out = tasks_.front();
        tasks_.pop_front();
        return true;
    }

private:
    std::mutex mutex_;
    std::deque<task> tasks_;
};

// Where the threads run: the consumer on the first CPU this thread may use, producers on the
// others in turn, or all on that one when there is no other (`taskset -c 0 opreg-bench`
// runs a row on one core). Pinned so that a row keeps one schedule: unpinned, a producer
// and the consumer sometimes shared a core and a row swung between ~6 and ~70 M/s here.
class placement {
public:
    placement() {
        CPU_ZERO(&allowed_);
        if (::sched_getaffinity(0, sizeof allowed_, &allowed_) != 0) return;  // then unpinned
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
            if (CPU_ISSET(cpu, &allowed_)) cpus_.push_back(cpu);
    }
    // The calling thread's mask as it was: the consumer is the benchmark's own thread, which
    // runs the other benchmarks afterwards.
    ~placement() {
        if (pinned_consumer_) ::pthread_setaffinity_np(::pthread_self(), sizeof allowed_, &allowed_);
    }
    placement(const placement&) = delete;
    placement& operator=(const placement&) = delete;

    void pin_consumer() {
        if (cpus_.empty()) return;
        pinned_consumer_ = pin(cpus_[0]);
    }
    // On the producer's own thread.
    void pin_producer(int p) const {
        if (cpus_.empty()) return;
        (void)pin(cpus_.size() == 1 ? cpus_[0] : cpus_[1 + std::size_t(p) % (cpus_.size() - 1)]);
    }
    [[nodiscard]] std::string describe(int producers) const {
        if (cpus_.empty()) return "unpinned";
        if (cpus_.size() == 1) return "all on cpu " + std::to_string(cpus_[0]);
        const std::size_t others = std::min(cpus_.size() - 1, std::size_t(producers));
        return "consumer on cpu " + std::to_string(cpus_[0]) + ", producers on " +
               std::to_string(others) + " other cpu(s)";
    }

private:
    static bool pin(int cpu) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        return ::pthread_setaffinity_np(::pthread_self(), sizeof one, &one) == 0;
    }

    cpu_set_t allowed_;
    std::vector<int> cpus_;
    bool pinned_consumer_ = false;
};

// What the consumer tells the producers: a round has begun, or the run is over.
struct rounds {
    // Rounds begun. release on the bump (the consumer's), acquire on the read (a
    // producer's): nothing else is handed over through it, the queue orders the tasks.
    std::atomic<std::uint64_t> begun{0};
    // Set before the last bump: the producers return instead of pushing.
    std::atomic<bool> over{false};
    std::atomic<std::uint64_t> full_retries{0};
};

template <class Q>
void produce(Q& q, rounds& r, std::uint64_t id, std::uint32_t share) {
    typename Q::producer handle = q.make_producer();
    std::uint64_t seen = 0, seq = 0, retries = 0;
    for (;;) {
        // Spun for, not slept on (atomic::wait): waking a sleeping thread took ~50 us here,
        // a third of a round of the fastest queue.
        backoff idle;
        // acquire: pairs with the consumer's release bump.
        while (r.begun.load(std::memory_order_acquire) == seen) idle.wait();
        seen = r.begun.load(std::memory_order_acquire);  // acquire: as above
        // relaxed: written before the bump we just read, whose acquire made it visible.
        if (r.over.load(std::memory_order_relaxed)) break;
        for (std::uint32_t i = 0; i < share; ++i, ++seq) {
            const task t = make_task(id, seq);
            backoff b;
            while (!q.try_push(handle, t)) {
                ++retries;
                // relaxed: a flag to give up on, set before the bump that follows it.
                if (r.over.load(std::memory_order_relaxed)) break;
                b.wait();
            }
        }
    }
    r.full_retries.fetch_add(retries, std::memory_order_relaxed);  // read after join
}

// The consumer's check of each task: from a producer that exists, next in its order, whole.
class checker {
public:
    explicit checker(int producers) : next_(std::size_t(producers), 0) {}

    void take(const task& t) noexcept {
        if (t.producer >= next_.size() || t.seq != next_[t.producer] ||
            t.payload[0] != t.seq || t.payload[task::payload_words - 1] != t.seq) {
            ++bad_;
            return;
        }
        ++next_[t.producer];
    }
    [[nodiscard]] std::uint64_t bad() const noexcept { return bad_; }
    [[nodiscard]] std::uint64_t good() const noexcept {
        std::uint64_t n = 0;
        for (const std::uint64_t k : next_) n += k;
        return n;
    }

private:
    std::vector<std::uint64_t> next_;  // per producer: the sequence number expected next
    std::uint64_t bad_ = 0;
};

template <class Q>
void hand_off(benchmark::State& state) {
    const int producers = int(state.range(0));
    const std::uint32_t share = items_per_round / std::uint32_t(producers);
    Q q{producers};
    rounds r;
    placement where;
    where.pin_consumer();
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back([&q, &r, &where, p, share] {
            where.pin_producer(p);
            produce(q, r, std::uint64_t(p), share);
        });
    typename Q::consumer handle = q.make_consumer();
    checker check{producers};
    bool lost = false;
    for (auto _ : state) {
        r.begun.fetch_add(1, std::memory_order_release);  // release: pairs with produce()
        const auto deadline = std::chrono::steady_clock::now() + round_limit;
        backoff b;
        task t;
        std::uint32_t empty = 0;  // polls that found nothing; the clock is read every 1024
        for (std::uint32_t got = 0; got < items_per_round && !lost;) {
            if (q.try_pop(handle, t)) {
                check.take(t);
                ++got;
                b.reset();
                continue;
            }
            b.wait();
            lost = ++empty % 1024 == 0 && std::chrono::steady_clock::now() > deadline;
        }
        if (lost) {
            state.SkipWithError("a round did not end: a task was lost");
            break;
        }
    }
    r.over.store(true, std::memory_order_relaxed);  // published by the release bump below
    r.begun.fetch_add(1, std::memory_order_release);
    for (std::thread& t : threads) t.join();

    const std::uint64_t expected = std::uint64_t(state.iterations()) * items_per_round;
    if (!lost && (check.bad() != 0 || check.good() != expected)) {
        state.SkipWithError("a task came out lost, repeated, reordered or torn");
    }
    state.SetItemsProcessed(std::int64_t(check.good()));
    state.SetLabel(where.describe(producers));
    state.counters["full_retries"] = double(r.full_retries.load(std::memory_order_relaxed));
}

template <class Q>
void register_queue() {
    const std::string n = std::string("queue/") + Q::name;
    auto* b = benchmark::RegisterBenchmark(n.c_str(), hand_off<Q>);
    for (const int p : producer_counts) b->Arg(p);
    b->ArgName("producers")->UseRealTime();
}

}  // namespace

void register_queue_benchmarks() {
    register_queue<intrusive_pool>();
    register_queue<moodycamel_queue>();
    register_queue<moodycamel_implicit>();
    register_queue<moodycamel_pool>();
#if OPREG_BENCH_BOOST_LOCKFREE
    register_queue<boost_lockfree>();
#endif
    register_queue<mutex_deque>();
}
