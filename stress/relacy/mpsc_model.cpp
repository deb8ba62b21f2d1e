// SPDX-License-Identifier: Apache-2.0
// stress/relacy/mpsc_model.cpp — Relacy model of opreg::intrusive_mpsc_queue, run on the
// shipped header.
//
// MODELS include/opreg/intrusive_mpsc_queue.hpp itself: the nodes carry a
// basic_mpsc_hook<model::rl_sync<>> (see rl_sync.hpp), so the queue they are linked into is
// the shipped code on Relacy's atomics: link() (relaxed nullptr store, acq_rel exchange of
// head_, release store of prev->next), try_pop() (the stub skip, the hand-out with a
// successor, the head_ comparison and the stub re-insertion), empty_approx() and owner_of.
// A payload rl::var<int> per node stands for the node's data, so Relacy reports a consumer
// read that the link's release does not order. The model watches every exchange on head_
// (the only read-modify-write on a hook pointer), which gives the exchanges' order.
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
// --weakened runs the header with link_order, the release store of prev->next in link(),
// relaxed (detail::sync_site::queue_link) and passes only if Relacy catches it.
#include <opreg/intrusive_mpsc_queue.hpp>  // first: rl_sync.hpp brings in Relacy's macros

#include <memory>

#include "rl_sync.hpp"
#include "model_driver.hpp"

namespace {

using opreg::detail::sync_site;

// Unlike any node index and the -1 of nothing written: a payload read from the wrong node
// fails the check.
constexpr int payload_of(int node) { return 1000 + node; }

template <class Sync, int Producers, int PerProducer>
struct mpsc_model : rl::test_suite<mpsc_model<Sync, Producers, PerProducer>, Producers + 1> {
    static constexpr int nodes = Producers * PerProducer;
    static constexpr unsigned consumer = Producers;   // thread index
    // Bounded, so that the consumer's script ends; after() pops what it did not get.
    static constexpr int consumer_attempts = 3 * nodes;

    using hook_type = opreg::basic_mpsc_hook<Sync>;
    struct node {
        hook_type hook;
        rl::var<int> payload;  // written before push, read after pop; never initialized
                               // otherwise, so an early read is also reported
    };
    using queue_type = opreg::intrusive_mpsc_queue<node, &node::hook>;

    // On the heap: nodes and queue are over-aligned, and Relacy allocates the test with
    // malloc. Node i is producer i / PerProducer's (i % PerProducer)th.
    std::unique_ptr<node[]> nodes_ = std::make_unique<node[]>(nodes);
    std::unique_ptr<queue_type> queue_ = std::make_unique<queue_type>();
    model::watching<hook_type*> watch_{&mpsc_model::on_hook, this};

    // Bookkeeping for the checks, not part of the algorithm (fibers: no races of their own).
    int exchanged_[nodes] = {};  // each node's place in the exchanges on head_
    int exchanges_ = 0;
    int last_popped_exchange_ = -1;
    int popped_[nodes] = {};
    int popped_total_ = 0;
    int next_seq_[Producers] = {};

    // An exchange on head_ (link()) installed `after`: the stub, or a node.
    static void on_hook(void* self, const model::rl_atomic<hook_type*>&, model::access kind,
                        hook_type*, hook_type* after) {
        auto& m = *static_cast<mpsc_model*>(self);
        if (kind != model::access::rmw) return;
        for (int i = 0; i != nodes; ++i)
            if (after == &m.nodes_[i].hook) m.exchanged_[i] = m.exchanges_++;
    }

    // ---- the scripts ---------------------------------------------------------------

    void take(node* n) {
        const int i = static_cast<int>(n - nodes_.get());
        RL_ASSERT(i >= 0 && i < nodes);  // never the stub, never a stranger
        RL_ASSERT(n->payload($) == payload_of(i));
        RL_ASSERT(++popped_[i] == 1);
        RL_ASSERT(exchanged_[i] > last_popped_exchange_);
        last_popped_exchange_ = exchanged_[i];
        const int producer = i / PerProducer;
        RL_ASSERT(i % PerProducer == next_seq_[producer]);  // in push order, none skipped
        ++next_seq_[producer];
        ++popped_total_;
    }

    void thread(unsigned index) {
        if (index == consumer) {
            for (int attempt = 0; attempt != consumer_attempts && popped_total_ != nodes;
                 ++attempt) {
                if (node* n = queue_->try_pop()) {
                    take(n);
                } else {
                    rl::yield(1, $);  // a producer may be between its exchange and its link
                }
            }
            return;
        }
        for (int k = 0; k != PerProducer; ++k) {
            const int i = static_cast<int>(index) * PerProducer + k;
            nodes_[i].payload($) = payload_of(i);
            queue_->push(&nodes_[i]);
        }
    }

    void after() {
        // Every push has returned: the queue must give up what the consumer did not get.
        for (int i = 0; i != nodes + 1 && popped_total_ != nodes; ++i) {
            if (node* n = queue_->try_pop()) take(n);
        }
        RL_ASSERT(popped_total_ == nodes);
        RL_ASSERT(queue_->try_pop() == nullptr);
        RL_ASSERT(queue_->empty_approx());
    }
};

using shipped = model::rl_sync<>;
using link_relaxed = model::rl_sync<sync_site::queue_link>;

using two_by_two = mpsc_model<shipped, 2, 2>;   // 2 producers x 2 nodes, 1 consumer
using three_by_one = mpsc_model<shipped, 3, 1>; // 3 producers x 1 node, 1 consumer

} // namespace

int main(int argc, char** argv) {
    model::options opt;
    if (!model::parse(argc, argv, opt)) return 2;
    const bool verbose = opt.verbose;

    if (!opt.weakened) {
        bool ok = model::expect_holds<two_by_two>("mpsc 2x2", model::random_search, verbose);
        ok = model::expect_holds<two_by_two>(
                 "mpsc 2x2", {"context bound 2", rl::sched_bound, 0, 2}, verbose) && ok;
        ok = model::expect_holds<three_by_one>("mpsc 3x1", model::random_search, verbose) && ok;
        return ok ? 0 : 1;
    }

    const model::search searches[] = {model::random_search,
                                      {"context bound 1", rl::sched_bound, 0, 1}};
    return model::expect_caught<mpsc_model<link_relaxed, 2, 2>>(
               "mpsc 2x2", "link store relaxed", searches, verbose)
               ? 0
               : 1;
}
