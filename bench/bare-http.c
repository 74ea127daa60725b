/* SPDX-License-Identifier: MIT */
/* The baseline for the agent's HTTP benchmark: libmicrohttpd configured as kvmfleetd configures it
 * (internal polling, epoll, a pool of 4 threads) answering every request with the same fixed body.
 * Usage: bare-http PORT BODY_FILE */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *body;
static size_t body_size;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
        static int seen;
        /* answer on the second call, as kvmfleetd does: answering on the first makes libmicrohttpd
         * close the connection (it can't know the request had no body) */
        if (!*con_cls) {
                *con_cls = &seen;
                return MHD_YES;
        }
        *upload_size = 0;
        struct MHD_Response *r = MHD_create_response_from_buffer(body_size, body, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
}

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: bare-http PORT BODY_FILE\n");
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
        struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t) atoi(argv[1]),
                                                NULL, NULL, on_request, NULL, MHD_OPTION_THREAD_POOL_SIZE, 4u,
                                                MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_END);
        if (!d)
                return fprintf(stderr, "cannot listen on port %s\n", argv[1]), 1;
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
