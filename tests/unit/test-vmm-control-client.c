/* SPDX-License-Identifier: MIT */
/* vmm_control_call() against a scripted SOCK_SEQPACKET peer: result, error, timeout, bad replies. */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control-client.h"
#include "json-util.h"
#include "test.h"

typedef struct Peer {
        int listen_fd;
        const char *reply_fmt; /* "@ID@" is replaced by the request id; NULL: never answer */
        char request[4096];
} Peer;

static void *peer_thread(void *userdata) {
        Peer *p = userdata;
        int fd = accept(p->listen_fd, NULL, NULL);
        if (fd < 0)
                return NULL;
        ssize_t n = recv(fd, p->request, sizeof p->request - 1, 0);
        if (n > 0 && p->reply_fmt) {
                unsigned id = 0;
                char reply[1024];
                const char *at = strstr(p->reply_fmt, "@ID@"), *idp;
                p->request[n] = 0;
                idp = strstr(p->request, "\"id\":");
                if (idp)
                        sscanf(idp + 5, "%u", &id);
                if (at)
                        snprintf(reply, sizeof reply, "%.*s%u%s", (int) (at - p->reply_fmt), p->reply_fmt, id, at + 4);
                else
                        snprintf(reply, sizeof reply, "%s", p->reply_fmt);
                send(fd, reply, strlen(reply), 0);
        } else if (n > 0)
                usleep(300 * 1000);
        close(fd);
        return NULL;
}

static int call_with_peer(const char *reply_fmt, json_object **result, char **code, char **message, Peer *peer) {
        static int seq;
        char path[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        pthread_t t;

        if (snprintf(path, sizeof path, "%s/ctl%d.sock", test_tmpdir(), seq++) >= (int) sizeof path)
                return -998;
        memcpy(sa.sun_path, path, sizeof path);
        *peer = (Peer){ .reply_fmt = reply_fmt };
        peer->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (peer->listen_fd < 0 || bind(peer->listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            listen(peer->listen_fd, 1) < 0)
                return -999;
        pthread_create(&t, NULL, peer_thread, peer);
        json_object *params = json_object_new_object();
        json_add_uint(params, "offset", 5);
        int r = vmm_control_call(path, "console", params, 100, result, code, message);
        json_object_put(params);
        pthread_join(t, NULL);
        close(peer->listen_fd);
        unlink(path);
        return r;
}

TEST(result_reply) {
        json_object *result = NULL;
        Peer peer;
        int r = call_with_peer("{\"id\":@ID@,\"result\":{\"next_offset\":9}}", &result, NULL, NULL, &peer);
        ASSERT_EQ_INT(r, 0);
        CHECK_CONTAINS(peer.request, "\"method\":\"console\"");
        CHECK_CONTAINS(peer.request, "\"params\":{\"offset\":5}");
        json_object *v;
        ASSERT(json_object_object_get_ex(result, "next_offset", &v));
        CHECK_EQ_INT(json_object_get_int(v), 9);
        json_object_put(result);
}

TEST(error_reply) {
        json_object *result = NULL;
        char *code = NULL, *message = NULL;
        Peer peer;
        int r = call_with_peer("{\"id\":@ID@,\"error\":{\"code\":\"invalid_state\",\"message\":\"stopped\"}}", &result,
                               &code, &message, &peer);
        ASSERT_EQ_INT(r, 1);
        CHECK(!result);
        CHECK_STREQ(code, "invalid_state");
        CHECK_STREQ(message, "stopped");
        free(code);
        free(message);
}

TEST(bad_replies_and_no_reply) {
        json_object *result = NULL;
        Peer peer;
        CHECK_EQ_INT(call_with_peer("{\"id\":@ID@,\"result\"", &result, NULL, NULL, &peer), -EBADMSG);
        CHECK_EQ_INT(call_with_peer("{\"id\":12345@ID@,\"result\":{}}", &result, NULL, NULL, &peer), -EBADMSG);
        CHECK_EQ_INT(call_with_peer("{\"id\":@ID@}", &result, NULL, NULL, &peer), -EBADMSG);
        CHECK_EQ_INT(call_with_peer(NULL, &result, NULL, NULL, &peer), -ETIMEDOUT);
        CHECK(!result);
        char path[256];
        snprintf(path, sizeof path, "%s/absent.sock", test_tmpdir());
        CHECK_EQ_INT(vmm_control_call(path, "status", NULL, 100, &result, NULL, NULL), -ENOENT);
}

/* A peer that answers scripted replies on the connections it accepts, one step per request:
 * "R" answers {"id", "result": {"n": STEP}}, "B" answers a result holding a string of big_size
 * bytes, "S" reads the request and sends nothing, "C" closes the connection after its reply (the
 * next request then needs a new connection). */
typedef struct Script {
        int listen_fd;
        const char *steps;
        size_t big_size;
        int accepts;
} Script;

static void *script_thread(void *userdata) {
        Script *sc = userdata;
        int fd = -1;
        char req[4096];
        for (size_t i = 0; sc->steps[i]; i++) {
                char step = sc->steps[i];
                if (step == 'C')
                        continue;
                if (fd < 0) {
                        fd = accept(sc->listen_fd, NULL, NULL);
                        if (fd < 0)
                                return NULL;
                        int size = 4 << 20;
                        setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
                        sc->accepts++;
                }
                ssize_t n = recv(fd, req, sizeof req - 1, 0);
                if (n <= 0)
                        break;
                req[n] = 0;
                unsigned id = 0;
                const char *idp = strstr(req, "\"id\":");
                if (idp)
                        sscanf(idp + 5, "%u", &id);
                if (step == 'R') {
                        char reply[128];
                        snprintf(reply, sizeof reply, "{\"id\":%u,\"result\":{\"n\":%zu}}", id, i);
                        send(fd, reply, strlen(reply), 0);
                } else if (step == 'B') {
                        char *reply = malloc(sc->big_size + 64);
                        int k = snprintf(reply, 64, "{\"id\":%u,\"result\":{\"s\":\"", id);
                        memset(reply + k, 'x', sc->big_size);
                        strcpy(reply + k + sc->big_size, "\"}}");
                        send(fd, reply, strlen(reply), 0);
                        free(reply);
                } else if (step == 'S')
                        usleep(400 * 1000);
                if (sc->steps[i + 1] == 'C') {
                        close(fd);
                        fd = -1;
                }
        }
        if (fd >= 0)
                close(fd);
        return NULL;
}

static int script_start(Script *sc, const char *steps, char *path, size_t path_size, pthread_t *t) {
        static int seq;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(path, path_size, "%s/script%d.sock", test_tmpdir(), seq++);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        *sc = (Script){ .steps = steps, .big_size = sc->big_size };
        sc->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (sc->listen_fd < 0 || bind(sc->listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(sc->listen_fd, 4) < 0)
                return -1;
        return pthread_create(t, NULL, script_thread, sc) == 0 ? 0 : -1;
}

static void script_end(Script *sc, const char *path, pthread_t t) {
        vmm_control_forget(path);
        pthread_join(t, NULL);
        close(sc->listen_fd);
        unlink(path);
}

static int64_t result_n(const char *path, int timeout_ms, int *ret) {
        json_object *result = NULL, *v;
        *ret = vmm_control_call(path, "status", NULL, timeout_ms, &result, NULL, NULL);
        int64_t n = result && json_object_object_get_ex(result, "n", &v) ? json_object_get_int64(v) : -1;
        json_object_put(result);
        return n;
}

TEST(a_kept_connection_serves_the_next_calls) {
        Script sc = {};
        char path[108];
        pthread_t t;
        int r;
        ASSERT(script_start(&sc, "RRR", path, sizeof path, &t) == 0);
        for (int i = 0; i < 3; i++) {
                CHECK_EQ_INT(result_n(path, 5000, &r), i);
                CHECK_EQ_INT(r, 0);
        }
        script_end(&sc, path, t);
        CHECK_EQ_INT(sc.accepts, 1);
}

TEST(a_kept_connection_whose_peer_went_away_is_replaced) {
        Script sc = {};
        char path[108];
        pthread_t t;
        int r;
        ASSERT(script_start(&sc, "RCR", path, sizeof path, &t) == 0);
        CHECK_EQ_INT(result_n(path, 5000, &r), 0);
        CHECK_EQ_INT(r, 0);
        usleep(50 * 1000); /* the peer has closed its end by now */
        CHECK_EQ_INT(result_n(path, 5000, &r), 2);
        CHECK_EQ_INT(r, 0);
        script_end(&sc, path, t);
        CHECK_EQ_INT(sc.accepts, 2);
}

TEST(each_call_on_a_kept_connection_has_its_own_timeout) {
        Script sc = {};
        char path[108];
        pthread_t t;
        struct timespec a, b;
        int r;
        ASSERT(script_start(&sc, "RS", path, sizeof path, &t) == 0);
        CHECK_EQ_INT(result_n(path, 30000, &r), 0);
        clock_gettime(CLOCK_MONOTONIC, &a);
        result_n(path, 100, &r);
        clock_gettime(CLOCK_MONOTONIC, &b);
        CHECK_EQ_INT(r, -ETIMEDOUT);
        /* 100 ms asked for; the 30 s of the call before must not carry over */
        CHECK((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 5000);
        script_end(&sc, path, t);
}

TEST(replies_up_to_one_mib_arrive_whole_and_larger_ones_are_refused) {
        static const size_t sizes[] = { 100, 300 * 1024, 1000 * 1024, 1100 * 1024 };
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                Script sc = { .big_size = sizes[i] };
                char path[108];
                pthread_t t;
                json_object *result = NULL, *v;
                ASSERT(script_start(&sc, "B", path, sizeof path, &t) == 0);
                int r = vmm_control_call(path, "status", NULL, 5000, &result, NULL, NULL);
                if (sizes[i] + 40 <= 1024 * 1024) {
                        CHECK_EQ_INT(r, 0);
                        CHECK(result && json_object_object_get_ex(result, "s", &v) &&
                              (size_t) json_object_get_string_len(v) == sizes[i]);
                } else {
                        CHECK_EQ_INT(r, -EMSGSIZE);
                        CHECK(!result);
                }
                json_object_put(result);
                script_end(&sc, path, t);
        }
}
