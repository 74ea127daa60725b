/* SPDX-License-Identifier: MIT */
#include "control-client.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
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
        int fd;         /* -1: free entry */
        int timeout_ms; /* the SO_RCVTIMEO set on fd; 0: none yet */
        uint64_t last_used;
} PooledConn;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static PooledConn pool[POOL_SIZE] = { [0 ... POOL_SIZE - 1] = { .fd = -1 } };
static uint64_t pool_clock;

/* A kept connection is taken without looking at it first: one whose VMM went away fails the send
 * (EPIPE), and the call then connects afresh; a call that did not complete never puts its
 * connection back, so a kept one has nothing unread. */
static int pool_take(const char *path, int *ret_timeout_ms) {
        int fd = -1;
        pthread_mutex_lock(&pool_lock);
        for (size_t i = 0; i < POOL_SIZE && fd < 0; i++) {
                if (pool[i].fd < 0 || !streq(pool[i].path, path))
                        continue;
                fd = pool[i].fd;
                *ret_timeout_ms = pool[i].timeout_ms;
                pool[i].fd = -1;
        }
        pthread_mutex_unlock(&pool_lock);
        return fd;
}

static void pool_put(const char *path, int fd, int timeout_ms) {
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
        pool[victim].timeout_ms = timeout_ms;
        pool[victim].last_used = ++pool_clock;
        pthread_mutex_unlock(&pool_lock);
}

/* Each thread receives replies into a buffer of its own that holds the largest reply, so that a
 * reply is one recv() (SOCK_SEQPACKET drops what does not fit). Its pages are only touched as far
 * as replies reach, and given back after a large one. */
#define REPLY_BUFFER_SIZE (CLIENT_REPLY_MAX + 4096)
#define REPLY_BUFFER_KEEP (64 * 1024)
_Static_assert(REPLY_BUFFER_SIZE > CLIENT_REPLY_MAX, "a reply must fit whole");

static pthread_key_t reply_buffer_key;
static pthread_once_t reply_buffer_once = PTHREAD_ONCE_INIT;

static void reply_buffer_free(void *p) {
        munmap(p, REPLY_BUFFER_SIZE);
}

static void reply_buffer_key_init(void) {
        if (pthread_key_create(&reply_buffer_key, reply_buffer_free) != 0)
                abort();
}

static char *reply_buffer(void) {
        pthread_once(&reply_buffer_once, reply_buffer_key_init);
        char *p = pthread_getspecific(reply_buffer_key);
        if (p)
                return p;
        p = mmap(NULL, REPLY_BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
                return NULL;
        if (pthread_setspecific(reply_buffer_key, p) != 0) {
                munmap(p, REPLY_BUFFER_SIZE);
                return NULL;
        }
        return p;
}

/* One reply within timeout_ms (SO_RCVTIMEO, set only when it differs from *fd_timeout_ms). */
static ssize_t recv_reply(int fd, char *buf, int timeout_ms, int *fd_timeout_ms) {
        int64_t deadline = now_ms() + timeout_ms;
        for (;;) {
                if (timeout_ms != *fd_timeout_ms) {
                        struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
                        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
                                return -errno;
                        *fd_timeout_ms = timeout_ms;
                }
                ssize_t n = recv(fd, buf, REPLY_BUFFER_SIZE, MSG_TRUNC);
                if (n >= 0)
                        return n;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return -ETIMEDOUT;
                if (errno != EINTR)
                        return -errno;
                timeout_ms = (int) (deadline - now_ms());
                if (timeout_ms <= 0)
                        return -ETIMEDOUT;
        }
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
        char *buf;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        unsigned id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
        int fd_timeout_ms = 0, r;
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

        if (timeout_ms <= 0)
                return -ETIMEDOUT;
        buf = reply_buffer();
        if (!buf)
                return -ENOMEM;
        fd = pool_take(socket_path, &fd_timeout_ms);
        if (fd >= 0 && send(fd, text, strlen(text), MSG_NOSIGNAL) < 0) {
                /* The kept connection broke before the VMM saw the request (the VMM exited, or one
                 * restarted on the same path): nothing was done, so a fresh connection may try again. */
                close(TAKE_FD(fd));
        } else if (fd >= 0)
                goto sent;
        fd_timeout_ms = 0;
        fd = connect_to(&sa);
        if (fd < 0)
                return fd;
        if (send(fd, text, strlen(text), MSG_NOSIGNAL) < 0)
                return -errno;
sent:
        n = recv_reply(fd, buf, timeout_ms, &fd_timeout_ms);
        if (n < 0)
                return (int) n;
        if (n == 0)
                return -ECONNRESET;
        r = n > CLIENT_REPLY_MAX ? -EMSGSIZE : json_parse(buf, (size_t) n, 64, &reply, &e);
        if (n > REPLY_BUFFER_KEEP)
                (void) madvise(buf + REPLY_BUFFER_KEEP, REPLY_BUFFER_SIZE - REPLY_BUFFER_KEEP, MADV_DONTNEED);
        if (r == -EMSGSIZE)
                return r;
        if (r < 0 || !json_object_is_type(reply, json_type_object))
                return -EBADMSG;

        json_object *result, *error, *rid;
        if (!json_object_object_get_ex(reply, "id", &rid) || !json_object_is_type(rid, json_type_int) ||
            json_object_get_int64(rid) != id)
                return -EBADMSG;
        /* A complete exchange: the connection is in a known state and can serve the next call. */
        pool_put(socket_path, TAKE_FD(fd), fd_timeout_ms);
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
