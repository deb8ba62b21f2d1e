// opreg/opreg.hpp — everything public in one include.
//
// Registries (one contract, see registry.hpp): mutex_map (the baseline), sharded_map,
// tbb_map, slot_array, mpsc_queue (hand-off to the owner thread), and any_registry to pick
// one at run time. The reactor (epoll, io_uring, kqueue) and acceptor they plug into.
// Primitives usable on their own: object_pool, intrusive_mpsc_queue, inline_function.
#pragma once

#include <opreg/acceptor.hpp>
#include <opreg/any_registry.hpp>
#include <opreg/inline_function.hpp>
#include <opreg/intrusive_mpsc_queue.hpp>
#include <opreg/mpsc_queue.hpp>
#include <opreg/mutex_map.hpp>
#include <opreg/object_pool.hpp>
#include <opreg/reactor.hpp>
#include <opreg/registry.hpp>
#include <opreg/sharded_map.hpp>
#include <opreg/slot_array.hpp>
#include <opreg/strategies.hpp>
#include <opreg/tbb_map.hpp>
#include <opreg/token.hpp>
#include <opreg/types.hpp>
