/* SPDX-License-Identifier: MIT */
/* The baseline for the agent's HTTP benchmarks: libmicrohttpd configured as kvmfleetd configures it
 * answering every request with the same fixed body.
 * Usage: bare-http PORT|SOCKET_PATH BODY_FILE [MODE]
 *   a PORT listens on TCP, a path (starting with '/') on a unix socket, as kvmfleetd's API socket;
 *   MODE is the threading: "pool" (default: internal polling, epoll, a pool of 4 threads) or
 *   "per-connection" (a thread per connection, poll) */
#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char *body;
static size_t body_size;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
        static int seen;
        /* answer on the second call, as kvmfleetd does for requests with a body: answering on the first
         * makes libmicrohttpd close the connection (it can't know the request had no body) */
        if (!*con_cls) {
                *con_cls = &seen;
                return MHD_YES;
        }
        if (*upload_size) { /* a body, taken and dropped: the answer comes on the call after it */
                *upload_size = 0;
                return MHD_YES;
        }
        struct MHD_Response *r = MHD_create_response_from_buffer(body_size, body, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        *con_cls = NULL;
}

static int listen_unix(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return -1;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -1;
        unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

int main(int argc, char **argv) {
        if (argc != 3 && argc != 4) {
                fprintf(stderr, "usage: bare-http PORT|SOCKET_PATH BODY_FILE [pool|per-connection]\n");
                return 2;
        }
        FILE *f = fopen(argv[2], "re");
        if (!f)
                return perror("open"), 1;
        fseek(f, 0, SEEK_END);
        body_size = (size_t) ftell(f);
        rewind(f);
        body = malloc(body_size + 1);
        if (!body || fread(body, 1, body_size, f) != body_size)
                return perror("read"), 1;
        fclose(f);
        bool per_connection = argc == 4 && strcmp(argv[3], "per-connection") == 0;
        if (argc == 4 && !per_connection && strcmp(argv[3], "pool") != 0)
                return fprintf(stderr, "unknown mode %s\n", argv[3]), 2;
        int listen_fd = -1;
        uint16_t port = 0;
        if (argv[1][0] == '/') {
                listen_fd = listen_unix(argv[1]);
                if (listen_fd < 0)
                        return perror(argv[1]), 1;
        } else
                port = (uint16_t) atoi(argv[1]);
        struct MHD_Daemon *d;
        if (per_connection)
                d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, port, NULL,
                                     NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, listen_fd,
                                     MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
        else
                d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, port, NULL, NULL, on_request, NULL,
                                     MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_THREAD_POOL_SIZE, 4u,
                                     MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
        if (!d)
                return fprintf(stderr, "cannot listen on %s\n", argv[1]), 1;
        sigset_t set;
        int sig;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigprocmask(SIG_BLOCK, &set, NULL);
        sigwait(&set, &sig);
        MHD_stop_daemon(d);
        free(body);
        return 0;
}
