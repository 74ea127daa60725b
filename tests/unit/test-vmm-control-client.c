/* SPDX-License-Identifier: MIT */
/* vmm_control_call() against a scripted SOCK_SEQPACKET peer: result, error, timeout, bad replies. */
#include <pthread.h>
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
