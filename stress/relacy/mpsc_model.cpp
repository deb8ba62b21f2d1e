// stress/relacy/mpsc_model.cpp — Relacy model of opreg::intrusive_mpsc_queue.
//
// MODELS include/opreg/intrusive_mpsc_queue.hpp, step for step and with the same memory
// orders: link() (lines 134-144: relaxed nullptr store, acq_rel exchange of head_, release
// store of prev->next), try_pop() (82-116: the stub skip, the hand-out with a successor, the
// head_ comparison and the stub re-insertion) and empty_approx() (120-125). Hooks live in an
// array, so owner_of is an index; a payload rl::var<int> per node stands for the node's
// data, so Relacy reports a consumer read that the link's release does not order.
//
// PROVES, for P producers pushing K nodes each and one consumer, over every interleaving and
// every value a relaxed load may return that the searches reach:
//  - everything a producer wrote before push is visible to the consumer after the pop that
//    returns the node (no data race, the payload read is the value written);
//  - try_pop never hands out the stub or a node twice; nodes come out in the order of their
//    exchanges on head_ (the header's FIFO claim), so a producer's nodes come out in the
//    order it pushed them, none skipped;
//  - no node is lost: once every push has returned, draining try_pop returns every node
//    not yet popped and then nullptr, and the queue reads empty (stub at both ends).
// DOES NOT PROVE: anything for more producers or nodes; a node pushed again after its pop
// (the header allows it; it is not modelled); the consumer's progress while a producer sits
// between its exchange and its link store (try_pop returns nullptr then, by design, and
// the consumer here just tries again a bounded number of times). Relacy's memory model is
// C++11's as Relacy implements it, and it puts a location's stores in modification order
// in the order they run: it cannot produce a store landing before one that ran earlier, so
// what the acq_rel on head_'s exchange is for (link's nullptr store coming before the
// successor's store into the same hook) is not checked; the model passes with a release
// or an acquire exchange.
//
// --weakened makes the release store of prev->next in link() relaxed and passes only if
// Relacy catches it.
#include <cstdint>

#include "model_driver.hpp"  // last: brings in <relacy/relacy.hpp>

namespace {

bool weak_link = false;  // set in main before any search, read-only after

rl::memory_order link_order() { return weak_link ? rl::mo_relaxed : rl::mo_release; }

struct hook {
    rl::atomic<hook*> next;
};

constexpr int payload_of(int node) { return 1000 + node; }

template <int Producers, int PerProducer>
struct mpsc_model : rl::test_suite<mpsc_model<Producers, PerProducer>, Producers + 1> {
    static constexpr int nodes = Producers * PerProducer;
    static constexpr unsigned consumer = Producers;   // thread index
    static constexpr int consumer_attempts = 3 * nodes;

    rl::atomic<hook*> head_;
    rl::atomic<hook*> tail_;
    hook stub_;
    hook hooks_[nodes];            // node i: producer i / PerProducer, its (i % PerProducer)th
    rl::var<int> payload_[nodes];  // written before push, read after pop; never initialized
                                   // otherwise, so an early read is also reported

    // Bookkeeping for the checks, not part of the algorithm (fibers: no races of their own).
    // Relacy switches threads only at atomic operations, so a note made right after the
    // exchange records the exchanges' order on head_.
    int exchanged_[nodes] = {};
    int exchanges_ = 0;
    int last_popped_exchange_ = -1;
    int popped_[nodes] = {};
    int popped_total_ = 0;
    int next_seq_[Producers] = {};

    void before() {
        head_($).store(&stub_, rl::mo_relaxed);
        tail_($).store(&stub_, rl::mo_relaxed);
        stub_.next($).store(nullptr, rl::mo_relaxed);  // mpsc_hook's initializer
        for (hook& h : hooks_) h.next($).store(nullptr, rl::mo_relaxed);
    }

    // ---- the algorithm: mirrors intrusive_mpsc_queue ----------------------------------

    void link(hook* h) {
        // relaxed: published by the exchange below, to the producer that links after us.
        h->next($).store(nullptr, rl::mo_relaxed);
        // acq_rel: orders our nullptr store before our successor's store into h->next, and
        // our predecessor's before ours into prev->next.
        hook* prev = head_($).exchange(h, rl::mo_acq_rel);
        if (h != &stub_) exchanged_[h - hooks_] = exchanges_++;
        // release: pairs with the acquire loads of `next` in try_pop.
        prev->next($).store(h, link_order());
    }

    hook* try_pop() {
        hook* tail = tail_($).load(rl::mo_relaxed);
        hook* next = tail->next($).load(rl::mo_acquire);
        if (tail == &stub_) {
            if (next == nullptr) return nullptr;
            tail_($).store(next, rl::mo_relaxed);
            tail = next;
            next = tail->next($).load(rl::mo_acquire);
        }
        if (next != nullptr) {
            tail_($).store(next, rl::mo_relaxed);
            return tail;
        }
        if (tail != head_($).load(rl::mo_relaxed)) return nullptr;
        link(&stub_);
        next = tail->next($).load(rl::mo_acquire);
        if (next != nullptr) {
            tail_($).store(next, rl::mo_relaxed);
            return tail;
        }
        return nullptr;
    }

    bool empty_approx() {
        return tail_($).load(rl::mo_relaxed) == &stub_ && head_($).load(rl::mo_relaxed) == &stub_;
    }

    // ---- the scripts ---------------------------------------------------------------

    void take(hook* h) {
        RL_ASSERT(h != &stub_);
        const int node = static_cast<int>(h - hooks_);
        RL_ASSERT(node >= 0 && node < nodes);
        RL_ASSERT(payload_[node]($) == payload_of(node));
        RL_ASSERT(++popped_[node] == 1);
        RL_ASSERT(exchanged_[node] > last_popped_exchange_);
        last_popped_exchange_ = exchanged_[node];
        const int producer = node / PerProducer;
        RL_ASSERT(node % PerProducer == next_seq_[producer]);  // in push order, none skipped
        ++next_seq_[producer];
        ++popped_total_;
    }

    void thread(unsigned index) {
        if (index == consumer) {
            for (int attempt = 0; attempt != consumer_attempts && popped_total_ != nodes;
                 ++attempt) {
                if (hook* h = try_pop()) {
                    take(h);
                } else {
                    rl::yield(1, $);  // a producer may be between its exchange and its link
                }
            }
            return;
        }
        for (int k = 0; k != PerProducer; ++k) {
            const int node = static_cast<int>(index) * PerProducer + k;
            payload_[node]($) = payload_of(node);
            link(&hooks_[node]);
        }
    }

    void after() {
        // Every push has returned: the queue must give up what the consumer did not get.
        for (int i = 0; i != nodes + 1 && popped_total_ != nodes; ++i) {
            if (hook* h = try_pop()) take(h);
        }
        RL_ASSERT(popped_total_ == nodes);
        RL_ASSERT(try_pop() == nullptr);
        RL_ASSERT(empty_approx());
    }
};

using two_by_two = mpsc_model<2, 2>;   // 2 producers x 2 nodes, 1 consumer
using three_by_one = mpsc_model<3, 1>; // 3 producers x 1 node, 1 consumer

} // namespace

int main(int argc, char** argv) {
    model::options opt;
    if (!model::parse(argc, argv, opt)) return 2;
    const bool verbose = opt.verbose;

    if (!opt.weakened) {
        bool ok = model::expect_holds<two_by_two>(
            "mpsc 2x2", {"random", rl::sched_random, 200000, 0}, verbose);
        ok = model::expect_holds<two_by_two>(
                 "mpsc 2x2", {"context bound 2", rl::sched_bound, 0, 2}, verbose) && ok;
        ok = model::expect_holds<three_by_one>(
                 "mpsc 3x1", {"random", rl::sched_random, 200000, 0}, verbose) && ok;
        return ok ? 0 : 1;
    }

    weak_link = true;
    const model::search searches[] = {{"random", rl::sched_random, 200000, 0},
                                      {"context bound 1", rl::sched_bound, 0, 1}};
    return model::expect_caught<two_by_two>("mpsc 2x2", "link store relaxed", searches,
                                            verbose)
               ? 0
               : 1;
}
