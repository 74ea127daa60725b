/* SPDX-License-Identifier: MIT */
#include "control-client.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "json-util.h"
#include "str-util.h"

#define CLIENT_REPLY_MAX (1024 * 1024)

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Idle connections kept per socket path: a call on a kept connection costs the VMM one wake-up
 * instead of three (accept, request, hang-up), which is most of a small call's latency on a busy
 * host. Each connection is used by one call at a time; a connection that saw any error is closed,
 * never kept. */
#define POOL_SIZE 32

typedef struct PooledConn {
        char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
        int fd; /* -1: free entry */
        uint64_t last_used;
} PooledConn;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static PooledConn pool[POOL_SIZE] = { [0 ... POOL_SIZE - 1] = { .fd = -1 } };
static uint64_t pool_clock;

/* A kept connection whose peer hung up (the VMM exited) or has unread data is useless. */
static bool conn_idle_and_alive(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, 0) == 0;
}

static int pool_take(const char *path) {
        int fd = -1;
        pthread_mutex_lock(&pool_lock);
        for (size_t i = 0; i < POOL_SIZE && fd < 0; i++) {
                if (pool[i].fd < 0 || !streq(pool[i].path, path))
                        continue;
                int candidate = pool[i].fd;
                pool[i].fd = -1;
                if (conn_idle_and_alive(candidate))
                        fd = candidate;
                else
                        close(candidate);
        }
        pthread_mutex_unlock(&pool_lock);
        return fd;
}

static void pool_put(const char *path, int fd) {
        size_t victim = 0;
        pthread_mutex_lock(&pool_lock);
        for (size_t i = 0; i < POOL_SIZE; i++) {
                if (pool[i].fd < 0) {
                        victim = i;
                        break;
                }
                if (pool[i].last_used < pool[victim].last_used)
                        victim = i;
        }
        if (pool[victim].fd >= 0)
                close(pool[victim].fd);
        strcpy(pool[victim].path, path);
        pool[victim].fd = fd;
        pool[victim].last_used = ++pool_clock;
        pthread_mutex_unlock(&pool_lock);
}

void vmm_control_forget(const char *socket_path) {
        pthread_mutex_lock(&pool_lock);
        for (size_t i = 0; i < POOL_SIZE; i++)
                if (pool[i].fd >= 0 && (!socket_path || streq(pool[i].path, socket_path))) {
                        close(pool[i].fd);
                        pool[i].fd = -1;
                }
        pthread_mutex_unlock(&pool_lock);
}

static int connect_to(const struct sockaddr_un *sa) {
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) sa, sizeof *sa) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static int control_call(const char *socket_path, const char *method, json_object *params, int timeout_ms,
                        json_object **ret_result, char **ret_error_code, char **ret_error_message,
                        json_object **ret_error) {
        static unsigned next_id = 1;
        _cleanup_close_ int fd = -1;
        _cleanup_json_ json_object *req = NULL, *reply = NULL;
        _cleanup_free_ char *buf = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        unsigned id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
        int64_t deadline = now_ms() + timeout_ms;
        JsonError e;
        ssize_t n;

        if (strlen(socket_path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, socket_path);

        req = json_object_new_object();
        if (!req || json_add_uint(req, "id", id) < 0 || json_add_string(req, "method", method) < 0)
                return -ENOMEM;
        if (params && json_add(req, "params", json_object_get(params)) < 0)
                return -ENOMEM;
        const char *text = json_to_string(req);

        fd = pool_take(socket_path);
        if (fd >= 0 && send(fd, text, strlen(text), MSG_NOSIGNAL) < 0) {
                /* The kept connection broke before the VMM saw the request (a VMM restarted on
                 * the same path, say): nothing was done, so a fresh connection may try again. */
                close(TAKE_FD(fd));
        } else if (fd >= 0)
                goto sent;
        fd = connect_to(&sa);
        if (fd < 0)
                return fd;
        if (send(fd, text, strlen(text), MSG_NOSIGNAL) < 0)
                return -errno;
sent:
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left = deadline - now_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                int k = poll(&p, 1, (int) left);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -ETIMEDOUT;
                break;
        }
        /* SOCK_SEQPACKET: a peek with MSG_TRUNC gives the whole message's length. */
        n = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0)
                return -errno;
        if (n == 0)
                return -ECONNRESET;
        if (n > CLIENT_REPLY_MAX)
                return -EMSGSIZE;
        buf = malloc((size_t) n + 1);
        if (!buf)
                return -ENOMEM;
        n = recv(fd, buf, (size_t) n + 1, MSG_TRUNC);
        if (n < 0)
                return -errno;
        if (n == 0)
                return -ECONNRESET;
        if (n > CLIENT_REPLY_MAX)
                return -EMSGSIZE;
        if (json_parse(buf, (size_t) n, 64, &reply, &e) < 0 || !json_object_is_type(reply, json_type_object))
                return -EBADMSG;

        json_object *result, *error, *rid;
        if (!json_object_object_get_ex(reply, "id", &rid) || !json_object_is_type(rid, json_type_int) ||
            json_object_get_int64(rid) != id)
                return -EBADMSG;
        /* A complete exchange: the connection is in a known state and can serve the next call. */
        pool_put(socket_path, TAKE_FD(fd));
        if (json_object_object_get_ex(reply, "result", &result)) {
                if (ret_result)
                        *ret_result = json_object_get(result);
                return 0;
        }
        if (!json_object_object_get_ex(reply, "error", &error) || !json_object_is_type(error, json_type_object))
                return -EBADMSG;
        const char *code = NULL, *message = NULL;
        if (json_get_string(error, "$.error", "code", true, &code, &e) < 0 ||
            json_get_string(error, "$.error", "message", false, &message, &e) < 0)
                return -EBADMSG;
        _cleanup_free_ char *c = strdup(code), *m = strdup(message ? message : "");
        if (!c || !m)
                return -ENOMEM;
        if (ret_error_code)
                *ret_error_code = TAKE_PTR(c);
        if (ret_error_message)
                *ret_error_message = TAKE_PTR(m);
        if (ret_error)
                *ret_error = json_object_get(error);
        return 1;
}

int vmm_control_call(const char *socket_path, const char *method, json_object *params, int timeout_ms,
                     json_object **ret_result, char **ret_error_code, char **ret_error_message) {
        return control_call(socket_path, method, params, timeout_ms, ret_result, ret_error_code, ret_error_message, NULL);
}

int vmm_control_call_full(const char *socket_path, const char *method, json_object *params, int timeout_ms,
                          json_object **ret_result, json_object **ret_error) {
        return control_call(socket_path, method, params, timeout_ms, ret_result, NULL, NULL, ret_error);
}
