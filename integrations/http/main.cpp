// SPDX-License-Identifier: Apache-2.0
// opreg-httpd: the sample HTTP/1.1 server. See --help.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>

#include "server.hpp"

#if defined(__GLIBC__)
#include <malloc.h>  // mallopt
#endif

namespace {

constexpr const char* usage = R"(usage: opreg-httpd [options]

A small HTTP/1.1 server on 127.0.0.1 whose pending-operation registry is chosen by a flag,
to see what each opreg strategy buys under a real client.

routes:  GET /          Hello, World! (text/plain)
         GET /json      {"message":"Hello, World!"}
         GET /users/ID  {"id":"ID"}
         POST /echo     the request body (Content-Length or chunked)
         GET /stats     registry statistics as JSON

options:
  --port N               port on 127.0.0.1 (default 8080; 0 picks a free one)
  --threads N            reactor threads, each with its own listener (default 1)
  --registry NAME        the registry strategy, one of --list (default slot_array)
  --backend NAME         epoll | io_uring | io_uring-completion | kqueue (default: this
                         build's own, epoll on Linux, kqueue on BSD, macOS and the kqueue
                         build; a backend the kernel refuses or the build lacks falls back
                         to it with a note). io_uring waits for readiness and reads and
                         writes itself; io_uring-completion has the kernel do the reads
                         (multishot recv into provided buffers) and the writes (one send
                         per batch of answers), each a registry op
  --model NAME           async (reactor threads) | thread-per-conn (default async);
                         thread-per-conn runs a thread with a 256 KiB stack per connection
                         (about 14 KiB of RSS while idle: 10000 connections, 140 MB)
  --max-conns N          connections at once; more get 503 and are closed (default 10000)
  --idle-timeout S       close a keep-alive connection idle this long (default 60)
  --header-timeout S     close a connection whose request (head and body) is not complete
                         this long after its first byte (default 10)
  --send-timeout S       reset a connection whose peer takes none of its output this long
                         (default 60)
  --grace S              on SIGTERM or SIGINT, stop accepting and give the requests and
                         answers in flight this long to finish; then close what is left
                         (default 5)
  --max-body BYTES       larger bodies get 413 (default 1048576)
  --body-memory BYTES    what all bodies still arriving may hold together; a request that
                         would go over gets 503 and its connection closes (default 67108864)
  --list                 the registry strategies, one per line
  --help                 this text

diagnosis (re-create the original configuration's suspected costs, one at a time):
  --shared-registry      one registry shared by every reactor thread
  --std-function         a heap-allocated std::function per operation
  --rearm-per-op         re-register the fd with the kernel before every operation (epoll
                         and kqueue; refused with --backend io_uring, whose poll removal
                         completes later)
  --nagle                leave Nagle's algorithm on (no TCP_NODELAY)
  --write-per-part       write each response's head and body separately, not all the
                         responses to one read in one write (what Nagle then delays)

Prints "listening on 127.0.0.1:PORT" once it accepts. SIGTERM or SIGINT: stop accepting,
finish the responses in flight (up to 5 s), exit 0.
)";

bool parse_int(const char* s, long lo, long hi, long& out) {
    char* end = nullptr;
    out = std::strtol(s, &end, 10);
    return end != s && *end == '\0' && out >= lo && out <= hi;
}

} // namespace

int main(int argc, char** argv) {
    // Bodies of up to --max-body come and go; with glibc's default the mmap threshold rises
    // to the largest block freed, after which such blocks come from the heap and their memory
    // is not returned when the connections close. A fixed threshold keeps them mmap'd.
#if defined(__GLIBC__)
    (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    opreg::http::server_options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "opreg-httpd: %s needs a value\n", argv[i]);
                std::exit(2);
            }
            return argv[++i];
        };
        long n = 0;
        if (a == "--help" || a == "-h") {
            std::fputs(usage, stdout);
            return 0;
        } else if (a == "--list") {
            for (const std::string_view name : opreg::registry_names())
                std::printf("%.*s\n", int(name.size()), name.data());
            return 0;
        } else if (a == "--port" && parse_int(value(), 0, 65535, n)) {
            opt.port = int(n);
        } else if (a == "--threads" && parse_int(value(), 1, 256, n)) {
            opt.threads = int(n);
        } else if (a == "--registry") {
            opt.registry = value();
            bool known = false;
            for (const auto name : opreg::registry_names()) known = known || name == opt.registry;
            if (!known) {
                std::fprintf(stderr, "opreg-httpd: unknown registry '%s' (%s)\n",
                             opt.registry.c_str(), opreg::joined_registry_names().c_str());
                return 2;
            }
        } else if (a == "--backend") {
            const std::string_view name = value();
            opt.completion = name == "io_uring-completion";
            if (opt.completion) {
                opt.which = opreg::backend::io_uring;
            } else if (!opreg::parse_backend(name, opt.which)) {
                std::fprintf(stderr, "opreg-httpd: unknown backend '%s' (epoll, io_uring, "
                                     "io_uring-completion, kqueue)\n", argv[i]);
                return 2;
            }
        } else if (a == "--model") {
            opt.model = value();
            if (opt.model != "async" && opt.model != "thread-per-conn") {
                std::fprintf(stderr, "opreg-httpd: unknown model '%s' (async, thread-per-conn)\n",
                             opt.model.c_str());
                return 2;
            }
        } else if (a == "--max-conns" && parse_int(value(), 1, 10000000, n)) {
            opt.max_conns = std::size_t(n);
        } else if (a == "--idle-timeout" && parse_int(value(), 1, 86400, n)) {
            opt.idle_timeout_s = int(n);
        } else if (a == "--header-timeout" && parse_int(value(), 1, 86400, n)) {
            opt.header_timeout_s = int(n);
        } else if (a == "--send-timeout" && parse_int(value(), 1, 86400, n)) {
            opt.send_timeout_s = int(n);
        } else if (a == "--grace" && parse_int(value(), 0, 86400, n)) {
            opt.grace_s = int(n);
        } else if (a == "--max-body" && parse_int(value(), 0, 1L << 30, n)) {
            opt.lim.max_body = std::size_t(n);
        } else if (a == "--body-memory" && parse_int(value(), 0, 1L << 40, n)) {
            opt.body_memory = std::size_t(n);
        } else if (a == "--shared-registry") {
            opt.shared_registry = true;
        } else if (a == "--std-function") {
            opt.std_function = true;
        } else if (a == "--rearm-per-op") {
            opt.rearm_per_op = true;
        } else if (a == "--nagle") {
            opt.nagle = true;
        } else if (a == "--write-per-part") {
            opt.write_per_part = true;
        } else {
            std::fprintf(stderr, "opreg-httpd: bad argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (opt.completion && (opt.std_function || opt.rearm_per_op || opt.write_per_part)) {
        std::fprintf(stderr, "opreg-httpd: --std-function, --rearm-per-op and --write-per-part "
                             "diagnose the readiness model; io_uring-completion sends each "
                             "batch of answers in one request\n");
        return 2;
    }
    if (opt.rearm_per_op && opt.which == opreg::backend::io_uring) {
        std::fprintf(stderr,
                     "opreg-httpd: --rearm-per-op needs epoll or kqueue: io_uring removes a "
                     "poll later, and the old poll would outlive the re-registration\n");
        return 2;
    }
    return opt.model == "async" ? opreg::http::run_async(opt) : opreg::http::run_thread_per_conn(opt);
}
