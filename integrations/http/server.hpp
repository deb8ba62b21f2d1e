// SPDX-License-Identifier: Apache-2.0
// opreg-httpd's two models.
//
// async: `threads` workers, each a reactor thread with its own SO_REUSEPORT listener (the
// kernel spreads connections), its own registry (or one registry shared by all, to
// re-create the original configuration), an acceptor, and its connections. A connection
// holds no buffer while idle: reads go into the worker's scratch buffer, and only the
// bytes of an incomplete request or of an unsent response are kept, per connection, until
// they are done. Every response to one read goes out in one write.
//
// thread-per-conn: a blocking accept loop and one thread per connection, the comparison
// row of the original analysis.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <opreg/reactor.hpp>

#include "http_parser.hpp"

namespace opreg::http {

struct server_options {
    std::string registry = "slot_array";
    backend which = native_backend();
    // Completion mode (--backend io_uring-completion): the kernel does the reads and writes
    // (reactor::recv and send on io_uring); readiness on `which` where io_uring is refused.
    bool completion = false;
    std::string model = "async";
    int threads = 1;
    int port = 8080;
    std::size_t max_conns = 10000;  // per server; more are refused with 503 and closed
    int idle_timeout_s = 60;        // keep-alive connection with nothing in progress
    int header_timeout_s = 10;      // a request (head and body) started but not complete
    int send_timeout_s = 60;        // unsent output the peer takes none of
    std::size_t body_memory = 64 << 20;  // all bodies in progress together; over: 503
    int grace_s = 5;                // on SIGTERM: time for responses in flight
    limits lim;
    // Diagnosis: re-create the original configuration's suspected costs one at a time
    // (diagnosis.hpp says where each lives).
    bool shared_registry = false;   // one registry for every reactor thread
    bool std_function = false;      // a heap-allocated std::function per operation
    bool rearm_per_op = false;      // re-register with the kernel before every operation
                                    // (epoll and kqueue only: the caller refuses io_uring)
    bool nagle = false;             // leave Nagle's algorithm on (no TCP_NODELAY)
    bool write_per_part = false;    // a write per response part instead of one per read
};

// Runs until SIGTERM or SIGINT, then stops gracefully. Prints "listening on
// 127.0.0.1:PORT" once it accepts. Returns the process exit status.
int run_async(const server_options& opt);
int run_thread_per_conn(const server_options& opt);

// Shared by both: a listening socket on 127.0.0.1:port (port 0: any; the port chosen is
// written back), SO_REUSEPORT when `reuse_port`. -1 and errno on failure.
int listen_on(int& port, bool reuse_port, bool nonblocking);
void tune_connection(int fd, bool nagle);

} // namespace opreg::http
