// SPDX-License-Identifier: Apache-2.0
/// @file
/// opreg/opreg.hpp — everything public in one include, but oneTBB's part.
///
/// Registries (one contract, see registry.hpp): mutex_map (the baseline), sharded_map,
/// slot_array, mpsc_queue (hand-off to the owner thread), and any_registry to pick one at run
/// time. The reactor (epoll, io_uring, kqueue) and acceptor they plug into, and the mapping of
/// kernel readiness reports for a loop of one's own (readiness.hpp). Primitives usable on
/// their own: object_pool, intrusive_mpsc_queue, inline_function.
///
/// Not included, so that a program that does not use oneTBB never compiles its headers:
/// tbb_map.hpp (the oneTBB strategy; CMake target opreg::tbb, pkg-config opreg-tbb) and
/// strategies.hpp (the list of every strategy, tbb_map among them when opreg is built with
/// it: for programs that run or compare them all).
#pragma once

#include <opreg/config.hpp>

#include <opreg/acceptor.hpp>
#include <opreg/any_registry.hpp>
#include <opreg/inline_function.hpp>
#include <opreg/intrusive_mpsc_queue.hpp>
#include <opreg/mpsc_queue.hpp>
#include <opreg/mutex_map.hpp>
#include <opreg/object_pool.hpp>
#include <opreg/reactor.hpp>
#include <opreg/readiness.hpp>
#include <opreg/registry.hpp>
#include <opreg/sharded_map.hpp>
#include <opreg/slot_array.hpp>
#include <opreg/token.hpp>
#include <opreg/types.hpp>
#include <opreg/version.hpp>
