// SPDX-License-Identifier: Apache-2.0
// opreg-floor: the practical ceiling for opreg-httpd on this machine. One thread, no
// registry, no parser: it counts request heads by their empty line and answers each with
// the same canned "Hello, World!" response, all answers to one read in one write. Anything
// a real server does costs time on top of this.
//   --backend epoll     readiness: edge-triggered epoll, read() until a short read, write()
//   --backend io_uring  completion: multishot accept into direct descriptors, multishot recv
//                       into a provided-buffer ring, one send per connection per batch of
//                       completions, each wait asking for the sends in flight + 1
//                       completions (the floor for opreg-httpd's completion mode). A bench
//                       floor, not a server: a peer that stops reading holds a send, and
//                       with it every wait, for the 200 ms a wait may last.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef OPREG_FLOOR_IO_URING
#define OPREG_FLOOR_IO_URING 0
#endif
#if OPREG_FLOOR_IO_URING
#include <liburing.h>
#include <sys/mman.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::string_view canned =
    "HTTP/1.1 200 OK\r\nServer: opreg-floor\r\nContent-Type: text/plain\r\n"
    "Content-Length: 13\r\n\r\nHello, World!";

// The end of a request head.
constexpr std::string_view head_end = "\r\n\r\n";

// Counts the request heads that end in `data`. `matched`: how much of head_end the bytes
// before `data` ended with, updated to how much `data` ends with (a head end split across
// reads counts once, in the read that completes it).
std::size_t count_heads(std::string_view data, unsigned char& matched) {
    std::size_t heads = 0, pos = 0;
    while (matched != 0 && pos < data.size()) {  // a head end begun in the previous bytes
        if (data[pos] != head_end[matched]) {
            matched = 0;  // no byte of it can begin another: head_end has no inner "\r\n\r"
            break;
        }
        ++pos;
        if (++matched == head_end.size()) {
            ++heads;
            matched = 0;
        }
    }
    if (pos == data.size()) return heads;
    std::size_t from = pos;
    while ((pos = data.find(head_end, from)) != std::string_view::npos) {
        ++heads;
        from = pos + head_end.size();
    }
    for (std::size_t k = std::min(head_end.size() - 1, data.size() - from); k > 0; --k) {
        if (data.substr(data.size() - k) == head_end.substr(0, k)) {
            matched = static_cast<unsigned char>(k);
            break;
        }
    }
    return heads;
}

// Per-connection state, indexed by fd modulo conn_slots (epoll) or by direct descriptor
// (io_uring): one entry per connection while fd numbers stay below it, as they do under
// this machine's open-files limit (20000).
constexpr std::size_t conn_slots = 1 << 16;
// Far above what one connection has pending under the demo's loads (16 pipelined heads of
// about 40 bytes); a fuller socket is read again.
constexpr std::size_t read_buffer_bytes = 64 * 1024;
// Events taken per epoll_wait; the next wait takes any more that are ready.
constexpr int max_events = 256;
// How long one wait may last: SIGTERM interrupts a wait, this bounds a signal missed between
// the check of `stop` and the wait.
constexpr int stop_check_ms = 200;
// listen()'s backlog: the demo's 1000 connections arrive at once (the kernel caps it at
// net.core.somaxconn, 4096 by default).
constexpr int backlog = 4096;

volatile sig_atomic_t stop = 0;

// Prints the line the demo and the tests wait for, once the server is ready.
void announce(int lfd) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
    std::printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    std::fflush(stdout);
}

// The answers to `heads` requests, appended to out.
void answer(std::string& out, std::size_t heads) {
    for (std::size_t h = 0; h < heads; ++h) out.append(canned);
}

int run_epoll(int lfd) {
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{EPOLLIN, {.fd = lfd}};
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    std::vector<unsigned char> matched(conn_slots);
    std::vector<char> in(read_buffer_bytes);
    std::string out;
    epoll_event events[max_events];
    const int one = 1;
    announce(lfd);
    while (!stop) {
        const int n = ::epoll_wait(ep, events, max_events, stop_check_ms);
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    epoll_event cev{EPOLLIN | EPOLLRDHUP | EPOLLET, {.fd = c}};
                    ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                    matched[std::size_t(c) % conn_slots] = 0;
                }
                continue;
            }
            // Edge-triggered: read until a short read (all there was), answering each batch.
            for (;;) {
                const ssize_t got = ::read(fd, in.data(), in.size());
                if (got <= 0) {
                    if (got < 0 && errno == EAGAIN) break;
                    ::close(fd);
                    break;
                }
                out.clear();
                answer(out, count_heads({in.data(), std::size_t(got)},
                                        matched[std::size_t(fd) % conn_slots]));
                if (!out.empty() && ::write(fd, out.data(), out.size()) < 0 && errno != EAGAIN) {
                    ::close(fd);
                    break;
                }
                if (std::size_t(got) < in.size()) break;  // short read: drained
            }
        }
    }
    return 0;
}

#if OPREG_FLOOR_IO_URING

// user_data: the operation in the top byte, the connection's direct descriptor below.
enum op : std::uint64_t { accept_op = 1, recv_op = 2, send_op = 3, close_op = 4 };
constexpr std::uint64_t encode(op o, std::uint32_t slot) { return (std::uint64_t{o} << 56) | slot; }
constexpr op op_of(std::uint64_t data) { return op(data >> 56); }
constexpr std::uint32_t slot_of(std::uint64_t data) { return std::uint32_t(data); }

// The exit status when the kernel refuses io_uring (a test reports a skip for it).
constexpr int exit_refused = 3;

constexpr unsigned ring_entries = 4096;
// Provided buffers for the recvs: a power of two of them.
constexpr unsigned buffer_count = 1024;
constexpr unsigned buffer_bytes = 4096;
constexpr int buffer_group = 0;

struct uring_conn {
    std::string pending;   // answers not handed to the kernel yet
    std::string sending;   // the answers of the send in flight
    std::size_t sent = 0;  // of `sending`, taken by the kernel so far
    unsigned char matched = 0;
    bool in_send = false;
    bool recv_ended = false;  // its multishot recv has ended for good (end of stream, error)
    bool closing = false;
    bool dirty = false;  // has pending answers and is in `dirty`
};

class uring_floor {
public:
    uring_floor(int lfd, unsigned slots) : lfd_{lfd}, conns_(slots) {}

    int run() {
        if (!setup()) return refused_ ? exit_refused : 1;
        arm_accept();
        announce(lfd_);
        __kernel_timespec wait_limit{.tv_sec = 0, .tv_nsec = stop_check_ms * 1'000'000LL};
        while (!stop) {
            for (const std::uint32_t slot : dirty_) {
                conns_[slot].dirty = false;
                if (!conns_[slot].in_send) start_send(slot);
            }
            dirty_.clear();
            io_uring_cqe* cqe = nullptr;
            const int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, sends_in_flight_ + 1,
                                                            &wait_limit, nullptr);
            if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
                std::fprintf(stderr, "opreg-floor: io_uring wait: %s\n", std::strerror(-rc));
                return 1;
            }
            unsigned head = 0, seen = 0;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                handle(*cqe);
                ++seen;
            }
            io_uring_cq_advance(&ring_, seen);
            if (recycled_ != 0) {
                io_uring_buf_ring_advance(bufs_, int(recycled_));
                recycled_ = 0;
            }
        }
        return 0;
    }

private:
    bool setup() {
        io_uring_params p{};
        p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE |
                  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        p.cq_entries = 4 * ring_entries;
        int rc = io_uring_queue_init_params(ring_entries, &ring_, &p);
        if (rc == -EINVAL) {  // a kernel before 6.1: no single issuer, no deferred task work
            p = {};
            p.flags = IORING_SETUP_CQSIZE;
            p.cq_entries = 4 * ring_entries;
            rc = io_uring_queue_init_params(ring_entries, &ring_, &p);
        }
        if (rc < 0) {
            refused_ = true;  // no io_uring here (an old kernel, a seccomp filter)
            return fail("io_uring_queue_init", rc);
        }
        if (rc = io_uring_register_files_sparse(&ring_, unsigned(conns_.size())); rc < 0)
            return fail("register_files_sparse", rc);
        const std::size_t ring_bytes = buffer_count * sizeof(io_uring_buf);
        void* mem = ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE,
                           MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (mem == MAP_FAILED) return fail("mmap", -errno);
        bufs_ = static_cast<io_uring_buf_ring*>(mem);
        io_uring_buf_ring_init(bufs_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(bufs_);
        reg.ring_entries = buffer_count;
        reg.bgid = buffer_group;
        if (rc = io_uring_register_buf_ring(&ring_, &reg, 0); rc < 0)
            return fail("register_buf_ring", rc);
        buffers_.resize(std::size_t{buffer_count} * buffer_bytes);
        for (unsigned i = 0; i < buffer_count; ++i)
            io_uring_buf_ring_add(bufs_, buffer(i), buffer_bytes, std::uint16_t(i), mask(), int(i));
        io_uring_buf_ring_advance(bufs_, int(buffer_count));
        return true;
    }

    static bool fail(const char* what, int rc) {
        std::fprintf(stderr, "opreg-floor: %s: %s\n", what, std::strerror(-rc));
        return false;
    }

    char* buffer(unsigned id) { return buffers_.data() + std::size_t{id} * buffer_bytes; }
    static int mask() { return io_uring_buf_ring_mask(buffer_count); }

    io_uring_sqe* sqe() {
        io_uring_sqe* s = io_uring_get_sqe(&ring_);
        while (s == nullptr) {  // the queue is full: hand it to the kernel first
            io_uring_submit(&ring_);
            s = io_uring_get_sqe(&ring_);
        }
        return s;
    }

    void arm_accept() {
        io_uring_sqe* s = sqe();
        io_uring_prep_multishot_accept_direct(s, lfd_, nullptr, nullptr, 0);
        io_uring_sqe_set_data64(s, encode(accept_op, 0));
    }

    void arm_recv(std::uint32_t slot) {
        io_uring_sqe* s = sqe();
        io_uring_prep_recv_multishot(s, int(slot), nullptr, 0, 0);
        s->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
        s->buf_group = buffer_group;
        io_uring_sqe_set_data64(s, encode(recv_op, slot));
    }

    // One send of everything the connection has pending.
    void start_send(std::uint32_t slot) {
        uring_conn& c = conns_[slot];
        if (c.pending.empty() || c.closing) return;
        c.sending.swap(c.pending);
        c.sent = 0;
        send_rest(slot);
    }
    void send_rest(std::uint32_t slot) {
        uring_conn& c = conns_[slot];
        io_uring_sqe* s = sqe();
        io_uring_prep_send(s, int(slot), c.sending.data() + c.sent, c.sending.size() - c.sent,
                           MSG_NOSIGNAL);
        s->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(s, encode(send_op, slot));
        c.in_send = true;
        ++sends_in_flight_;
    }

    // Closed once its recv has ended and its answers have gone out (a closed direct
    // descriptor would leave a pending request holding the socket): a request that came
    // with the peer's FIN is still answered.
    void close_when_idle(std::uint32_t slot) {
        uring_conn& c = conns_[slot];
        if (!c.recv_ended || c.in_send || c.closing || !c.pending.empty()) return;
        c.closing = true;
        io_uring_sqe* s = sqe();
        io_uring_prep_close_direct(s, slot);
        io_uring_sqe_set_data64(s, encode(close_op, slot));
    }

    void handle(const io_uring_cqe& cqe) {
        const std::uint32_t slot = slot_of(cqe.user_data);
        const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
        switch (op_of(cqe.user_data)) {
        case accept_op:
            if (cqe.res >= 0 && std::size_t(cqe.res) < conns_.size()) {
                uring_conn& c = conns_[std::size_t(cqe.res)];
                c.pending.clear();
                c.sending.clear();
                c.matched = 0;
                c.in_send = c.recv_ended = c.closing = c.dirty = false;
                arm_recv(std::uint32_t(cqe.res));
            }
            if (!more && !stop) arm_accept();
            break;
        case recv_op: {
            uring_conn& c = conns_[slot];
            if (cqe.flags & IORING_CQE_F_BUFFER) {
                const unsigned id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
                if (cqe.res > 0) {
                    answer(c.pending, count_heads({buffer(id), std::size_t(cqe.res)}, c.matched));
                    if (!c.dirty && !c.pending.empty()) {
                        c.dirty = true;
                        dirty_.push_back(slot);
                    }
                }
                io_uring_buf_ring_add(bufs_, buffer(id), buffer_bytes, std::uint16_t(id), mask(),
                                      int(recycled_++));
            }
            if (!more) {
                if (cqe.res > 0 || cqe.res == -ENOBUFS) {
                    arm_recv(slot);  // ended with its last buffer, or none was free: go on
                } else {
                    c.recv_ended = true;
                    close_when_idle(slot);
                }
            }
            break;
        }
        case send_op: {
            uring_conn& c = conns_[slot];
            c.in_send = false;
            --sends_in_flight_;
            if (cqe.res < 0) {  // the peer is gone: its recv ends too, and its answers go
                c.pending.clear();
            } else if (c.sent += std::size_t(cqe.res); c.sent < c.sending.size()) {
                send_rest(slot);
                break;
            }
            c.sending.clear();
            if (!c.dirty) start_send(slot);  // answers that came while this one was out
            close_when_idle(slot);
            break;
        }
        case close_op:
        default:  // liburing's own timeout, on a kernel that cannot bound a wait itself
            break;
        }
    }

    int lfd_;
    io_uring ring_{};
    io_uring_buf_ring* bufs_ = nullptr;
    std::vector<char> buffers_;
    std::vector<uring_conn> conns_;
    std::vector<std::uint32_t> dirty_;
    unsigned recycled_ = 0;         // buffers given back since the last advance
    bool refused_ = false;          // the kernel would not make a ring
    unsigned sends_in_flight_ = 0;
};

int run_io_uring(int lfd) {
    // Direct descriptors count against the open-files limit: as many as it allows.
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
    const auto slots = unsigned(std::min<rlim_t>(lim.rlim_cur, conn_slots));
    // Accepted sockets inherit TCP_NODELAY from the listener; a direct descriptor has no fd
    // for setsockopt.
    const int one = 1;
    ::setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // The kernel waits for connections itself; a non-blocking listener is for epoll.
    ::fcntl(lfd, F_SETFL, ::fcntl(lfd, F_GETFL) & ~O_NONBLOCK);
    return uring_floor{lfd, slots}.run();
}

#endif

}  // namespace

int main(int argc, char** argv) {
    int port = 8080;
    std::string backend = "epoll";
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0) {
            std::puts(
                "usage: opreg-floor [--port N] [--backend epoll|io_uring]\n\n"
                "A bare responder on 127.0.0.1: answers every request head with a canned\n"
                "\"Hello, World!\", the ceiling opreg-httpd is compared with. SIGTERM stops it.\n\n"
                "  --port N          port (default 8080; 0 picks a free one)\n"
                "  --list            the backends this build has, one per line\n"
                "  --backend epoll   edge-triggered epoll, read and write (default)\n"
                "  --backend io_uring\n"
                "                    multishot accept into direct descriptors, multishot recv\n"
                "                    into provided buffers, one send per connection per batch");
            return 0;
        }
        if (std::strcmp(argv[i], "--list") == 0) {  // the backends this build has
            std::puts(OPREG_FLOOR_IO_URING ? "epoll\nio_uring" : "epoll");
            return 0;
        }
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = std::atoi(argv[++i]);
        } else if (std::strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            backend = argv[++i];
        } else {
            std::fprintf(stderr, "opreg-floor: unknown argument %s (--help)\n", argv[i]);
            return 2;
        }
    }
    if (backend != "epoll" && backend != "io_uring") {
        std::fprintf(stderr, "opreg-floor: --backend epoll or io_uring, not %s\n", backend.c_str());
        return 2;
    }
#if !OPREG_FLOOR_IO_URING
    if (backend == "io_uring") {
        std::fprintf(stderr, "opreg-floor: built without io_uring\n");
        return 2;
    }
#endif
    signal(SIGTERM, [](int) { stop = 1; });
    signal(SIGINT, [](int) { stop = 1; });
    signal(SIGPIPE, SIG_IGN);
    const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(std::uint16_t(port));
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(lfd, backlog) != 0) {
        std::perror("opreg-floor: listen");
        return 1;
    }
#if OPREG_FLOOR_IO_URING
    if (backend == "io_uring") return run_io_uring(lfd);
#endif
    return run_epoll(lfd);
}
