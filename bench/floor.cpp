// SPDX-License-Identifier: Apache-2.0
// opreg-floor: the practical ceiling for opreg-httpd on this machine. One thread, epoll,
// no registry, no parser: it counts request heads by their empty line and answers each
// with the same canned "Hello, World!" response, all answers to one read in one write.
// Anything a real server does costs time on top of this.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
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

// Per connection: the last bytes of the previous read that could begin a head_end split
// across reads (one fewer than head_end has).
struct conn {
    static constexpr std::size_t tail_cap = head_end.size() - 1;
    char tail[tail_cap];
    unsigned char tail_len;
};

// Per-connection state, indexed by fd modulo conn_slots: one entry per connection while fd
// numbers stay below it, as they do under this machine's open-files limit (20000).
constexpr std::size_t conn_slots = 1 << 16;
// Far above what one connection has pending under the demo's loads (16 pipelined heads of
// about 40 bytes); a fuller socket is read again.
constexpr std::size_t read_buffer_bytes = 64 * 1024;
// Events taken per epoll_wait; the next wait takes any more that are ready.
constexpr int max_events = 256;
// epoll_wait's timeout: SIGTERM interrupts the wait, this bounds a signal missed between
// the check of `stop` and the wait.
constexpr int stop_check_ms = 200;
// listen()'s backlog: the demo's 1000 connections arrive at once (the kernel caps it at
// net.core.somaxconn, 4096 by default).
constexpr int backlog = 4096;

volatile sig_atomic_t stop = 0;

} // namespace

int main(int argc, char** argv) {
    int port = 8080;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0) {
            std::puts("usage: opreg-floor [--port N]\n\nA bare epoll responder on 127.0.0.1: "
                      "answers every request head with a canned\n\"Hello, World!\", the "
                      "ceiling opreg-httpd is compared with. SIGTERM stops it.");
            return 0;
        }
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = std::atoi(argv[++i]);
    }
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
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, backlog) != 0) {
        std::perror("opreg-floor: listen");
        return 1;
    }
    socklen_t len = sizeof addr;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{EPOLLIN, {.fd = lfd}};
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    std::printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    std::fflush(stdout);

    std::vector<conn> conns(conn_slots);
    std::vector<char> in(read_buffer_bytes);
    std::string out;
    epoll_event events[max_events];
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
                    conns[std::size_t(c) % conns.size()].tail_len = 0;
                }
                continue;
            }
            // Edge-triggered: read until a short read (all there was), answering each batch.
            conn& st = conns[std::size_t(fd) % conns.size()];
            for (;;) {
                std::memcpy(in.data(), st.tail, st.tail_len);
                const ssize_t got = ::read(fd, in.data() + st.tail_len, in.size() - st.tail_len);
                if (got <= 0) {
                    if (got < 0 && errno == EAGAIN) break;
                    ::close(fd);
                    break;
                }
                const std::size_t len = st.tail_len + std::size_t(got);
                const std::string_view data(in.data(), len);
                std::size_t heads = 0, pos = 0, last_end = 0;
                while ((pos = data.find(head_end, pos)) != std::string_view::npos) {
                    ++heads;
                    pos += head_end.size();
                    last_end = pos;
                }
                const std::size_t keep_from =
                    std::max(last_end, len > conn::tail_cap ? len - conn::tail_cap : 0);
                st.tail_len = static_cast<unsigned char>(len - keep_from);
                std::memcpy(st.tail, data.data() + keep_from, st.tail_len);
                out.clear();
                for (std::size_t h = 0; h < heads; ++h) out.append(canned);
                if (!out.empty() && ::write(fd, out.data(), out.size()) < 0 && errno != EAGAIN) {
                    ::close(fd);
                    break;
                }
                if (std::size_t(got) < in.size() - st.tail_len) break;  // short read: drained
            }
        }
    }
    return 0;
}
