/* The benchmark's "C ceiling": one thread, one epoll loop, the same 12-byte
 * "Hello World!" answer to every request, nothing else.  It shows what the machine
 * (kernel, loopback, wrk) allows a server on one core; it is no HTTP server.
 *
 *   hello --host 127.0.0.1 --port 8000
 *
 * A request ends at the first blank line (bodies are not read: the bench sends none to
 * it).  Keep-alive unless the request says "Connection: close" or is HTTP/1.0; then the
 * answer says so and the connection is closed.  Several requests in one read are all
 * answered, in order.  bench/catalogue.py compiles it with gcc -O2 on first use. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 8192
#define MAXEV 256

static const char KEEP[] = "HTTP/1.1 200 OK\r\nServer: ceiling\r\nContent-Type: text/plain\r\n"
                           "Content-Length: 12\r\n\r\nHello World!";
static const char CLOSE[] = "HTTP/1.1 200 OK\r\nServer: ceiling\r\nContent-Type: text/plain\r\n"
                            "Content-Length: 12\r\nConnection: close\r\n\r\nHello World!";

struct conn { int fd; size_t len; char buf[BUF]; };

/* Does the header block [p, end) ask to close the connection? */
static int wants_close(const char *p, const char *end) {
    const char *eol = memchr(p, '\n', end - p);
    if (eol && eol - p >= 9 && memcmp(eol - 9, "HTTP/1.0", 8) == 0) return 1;
    for (p = eol ? eol + 1 : end; p < end; p = eol + 1) {
        eol = memchr(p, '\n', end - p);
        if (!eol) break;
        if (eol - p > 11 && strncasecmp(p, "connection:", 11) == 0) {
            const char *v = p + 11;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            if (eol - v >= 5 && strncasecmp(v, "close", 5) == 0) return 1;
        }
    }
    return 0;
}

static void drop(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Read what is there, answer every complete request; 0 when the connection is done. */
static int serve(struct conn *c) {
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->len, BUF - c->len);
        if (n == 0) return 0;
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
        c->len += n;
        char *start = c->buf, *end = c->buf + c->len, *hdr;
        while ((hdr = memmem(start, end - start, "\r\n\r\n", 4)) != NULL) {
            int close_it = wants_close(start, hdr + 2);
            const char *resp = close_it ? CLOSE : KEEP;
            size_t rlen = close_it ? sizeof CLOSE - 1 : sizeof KEEP - 1;
            if (write(c->fd, resp, rlen) != (ssize_t)rlen || close_it) return 0;
            start = hdr + 4;
        }
        c->len = end - start;
        if (c->len == BUF) return 0; /* a header block larger than the buffer */
        memmove(c->buf, start, c->len);
        if ((size_t)n < BUF) return 1; /* drained (likely): wait for epoll */
    }
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 8000, one = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0) host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (lfd < 0 || inet_pton(AF_INET, host, &addr.sin_addr) != 1) { perror("socket"); return 1; }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 2048) < 0) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[MAXEV];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    fprintf(stderr, "Listening at: http://%s:%d\n", host, port);
    for (;;) {
        int n = epoll_wait(ep, evs, MAXEV, -1);
        if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) { /* the listening socket: accept all that wait */
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = malloc(sizeof *c);
                    c->fd = fd;
                    c->len = 0;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
            } else if (!serve(c) || (evs[i].events & (EPOLLERR | EPOLLHUP))) {
                drop(ep, c);
            }
        }
    }
}
