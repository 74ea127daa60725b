/* SPDX-License-Identifier: MIT */
#include "control-client.h"

#include <errno.h>
#include <poll.h>
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
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;

        req = json_object_new_object();
        if (!req || json_add_uint(req, "id", id) < 0 || json_add_string(req, "method", method) < 0)
                return -ENOMEM;
        if (params && json_add(req, "params", json_object_get(params)) < 0)
                return -ENOMEM;
        const char *text = json_to_string(req);
        if (send(fd, text, strlen(text), MSG_NOSIGNAL) < 0)
                return -errno;

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
        buf = malloc(CLIENT_REPLY_MAX + 1);
        if (!buf)
                return -ENOMEM;
        n = recv(fd, buf, CLIENT_REPLY_MAX + 1, MSG_TRUNC);
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
