/* SPDX-License-Identifier: MIT */
#include "control.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "apicv.h"
#include "json-util.h"
#include "log.h"
#include "memslot-control.h"
#include "nested-control.h"
#include "snapshot.h"
#include "str-util.h"

static int sockaddr_un_set(struct sockaddr_un *sa, const char *path) {
        memset(sa, 0, sizeof *sa);
        sa->sun_family = AF_UNIX;
        if (strlen(path) >= sizeof sa->sun_path)
                return -ENAMETOOLONG;
        strcpy(sa->sun_path, path);
        return 0;
}

int control_listen(const char *path, int *ret_fd) {
        struct sockaddr_un sa;
        _cleanup_close_ int fd = -1;
        int r = sockaddr_un_set(&sa, path);
        if (r < 0)
                return r;

        struct stat st;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                if (probe < 0)
                        return -errno;
                if (connect(probe, (struct sockaddr *) &sa, sizeof sa) == 0)
                        return -EADDRINUSE;
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
        }
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* Bound under a temporary name and renamed into place once listening, so that a client that
         * sees the path can connect: between bind() and listen() a connect() is refused. */
        char tmp[sizeof sa.sun_path];
        struct sockaddr_un tmp_sa;
        bool renamed = snprintf(tmp, sizeof tmp, "%s.%d~", path, (int) getpid()) < (int) sizeof tmp &&
                       sockaddr_un_set(&tmp_sa, tmp) >= 0;
        if (renamed)
                (void) unlink(tmp);
        if (bind(fd, (struct sockaddr *) (renamed ? &tmp_sa : &sa), sizeof sa) < 0)
                return -errno;
        if (listen(fd, 128) < 0 || (renamed && rename(tmp, path) < 0)) {
                r = -errno;
                unlink(renamed ? tmp : path);
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int reply_error(json_object *id, const char *code, const char *fmt, ...) _printf_(3, 4);

static __thread json_object *pending_reply;

static int reply_error(json_object *id, const char *code, const char *fmt, ...) {
        json_object *o = json_object_new_object(), *err = json_object_new_object();
        char message[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(message, sizeof message, fmt, ap);
        va_end(ap);
        if (!o || !err) {
                json_object_put(o);
                json_object_put(err);
                return -ENOMEM;
        }
        json_add(o, "id", id ? json_object_get(id) : NULL);
        json_add(o, "error", err);
        json_add_string(err, "code", code);
        json_add_string(err, "message", message);
        pending_reply = o;
        return 0;
}

/* An error reply whose body (code, message, details) comes ready-made. */
static int reply_error_object(json_object *id, json_object *err) {
        json_object *o = json_object_new_object();
        if (!o) {
                json_object_put(err);
                return -ENOMEM;
        }
        json_add(o, "id", id ? json_object_get(id) : NULL);
        json_add(o, "error", err);
        pending_reply = o;
        return 0;
}

static int reply_result(json_object *id, json_object *result) {
        json_object *o = json_object_new_object();
        if (!o) {
                json_object_put(result);
                return -ENOMEM;
        }
        json_add(o, "id", id ? json_object_get(id) : NULL);
        json_add(o, "result", result);
        pending_reply = o;
        return 0;
}

static int method_console(Vm *vm, json_object *id, json_object *params) {
        static const char *const keys[] = { "offset", "max", NULL };
        uint64_t offset = 0, max = CONTROL_CONSOLE_CHUNK_MAX, start, next;
        _cleanup_free_ uint8_t *data = NULL;
        _cleanup_free_ char *text = NULL;
        JsonError e = {};
        size_t len;
        int r;

        if (params) {
                if (json_check_keys(params, "$.params", keys, &e) < 0 ||
                    json_get_uint64(params, "$.params", "offset", false, 0, UINT64_MAX, &offset, &e) < 0 ||
                    json_get_uint64(params, "$.params", "max", false, 1, CONTROL_CONSOLE_CHUNK_MAX, &max, &e) < 0)
                        return reply_error(id, "invalid_argument", "%s: %s", e.path, e.message);
        }
        r = serial_read_ring(vm->serial, offset, (size_t) max, &data, &len, &start, &next);
        if (r < 0)
                return r;
        text = utf8_escape_invalid((const char *) data, len);
        if (!text)
                return -ENOMEM;
        json_object *res = json_object_new_object();
        if (!res)
                return -ENOMEM;
        if (json_add_uint(res, "offset", start) < 0 || json_add_uint(res, "next_offset", next) < 0 ||
            json_add_string(res, "data", text) < 0) {
                json_object_put(res);
                return -ENOMEM;
        }
        return reply_result(id, res);
}

static int method_status(Vm *vm, json_object *id) {
        json_object *st;
        int r = vm_status_json(vm, &st);
        if (r < 0)
                return r;
        return reply_result(id, st);
}

static int method_snapshot(Vm *vm, json_object *id, json_object *params) {
        static const char *const keys[] = { "dir", NULL };
        const char *dir = NULL;
        JsonError e = {};
        int r;

        if (!params)
                return reply_error(id, "invalid_argument", "$.params.dir: is required");
        if (json_check_keys(params, "$.params", keys, &e) < 0 || json_get_string(params, "$.params", "dir", true, &dir, &e) < 0)
                return reply_error(id, "invalid_argument", "%s: %s", e.path, e.message);
        r = vm_snapshot_save(vm, dir, &e);
        if (r == -EBUSY)
                return reply_error(id, "invalid_state", "%s", e.message);
        if (r == -EOPNOTSUPP)
                return reply_error(id, "unsupported", "%s", e.message);
        if (r < 0 && streq(e.path, "$.dir") && (r == -EINVAL || r == -EEXIST || r == -ENOTDIR))
                return reply_error(id, "invalid_argument", "%s: %s", e.path, e.message);
        if (r < 0)
                return reply_error(id, "snapshot_failed", "%s: %s", e.path, e.message[0] ? e.message : strerror(-r));
        json_object *res = json_object_new_object();
        if (!res || json_add_string(res, "dir", dir) < 0) {
                json_object_put(res);
                return -ENOMEM;
        }
        return reply_result(id, res);
}

static int dispatch(Vm *vm, json_object *req, ControlAction *action) {
        static const char *const keys[] = { "id", "method", "params", NULL };
        json_object *id = NULL, *params = NULL;
        const char *method;
        JsonError e = {};
        int r;

        if (!json_object_is_type(req, json_type_object))
                return reply_error(NULL, "invalid_argument", "request must be a JSON object");
        if (json_object_object_get_ex(req, "id", &id) && !json_object_is_type(id, json_type_int) &&
            !json_object_is_type(id, json_type_string))
                return reply_error(NULL, "invalid_argument", "$.id: must be an integer or a string");
        if (json_check_keys(req, "$", keys, &e) < 0)
                return reply_error(id, "invalid_argument", "%s: %s", e.path, e.message);
        if (json_get_string(req, "$", "method", true, &method, &e) < 0)
                return reply_error(id, "invalid_argument", "%s: %s", e.path, e.message);
        if (json_get_object(req, "$", "params", false, &params, &e) < 0)
                return reply_error(id, "invalid_argument", "%s: %s", e.path, e.message);

        if (streq(method, "status"))
                return method_status(vm, id);
        if (memslot_control_method(method)) {
                json_object *res = NULL, *err = NULL;
                MemslotError me;
                r = memslot_control_call(vm, method, params, &res, &me);
                if (r < 0)
                        return r;
                if (r > 0)
                        return reply_result(id, res);
                r = memslot_error_to_json(&me, &err);
                if (r < 0)
                        return r;
                return reply_error_object(id, err);
        }
        if (apicv_control_method(method)) {
                json_object *res = NULL, *err = NULL;
                r = apicv_control_call(vm, method, params, &res, &err);
                if (r < 0)
                        return r;
                if (r > 0)
                        return reply_result(id, res);
                return reply_error_object(id, err);
        }
        if (nested_control_method(method)) {
                json_object *res = NULL, *err = NULL;
                r = nested_control_call(vm, method, params, &res, &err);
                if (r < 0)
                        return r;
                return r > 0 ? reply_result(id, res) : reply_error_object(id, err);
        }
        if (streq(method, "console"))
                return method_console(vm, id, params);
        if (streq(method, "snapshot"))
                return method_snapshot(vm, id, params);
        if (streq(method, "pause")) {
                r = vm_pause(vm, CONTROL_PAUSE_TIMEOUT_MS);
                if (r == -EBUSY)
                        return reply_error(id, "invalid_state", "cannot pause a VM that is %s",
                                           vm_state_to_string(vm->state));
                if (r == -ETIMEDOUT)
                        return reply_error(id, "internal", "vCPUs did not park within %d ms",
                                           CONTROL_PAUSE_TIMEOUT_MS);
                if (r < 0)
                        return r;
                return method_status(vm, id);
        }
        if (streq(method, "resume")) {
                r = vm_resume(vm);
                if (r == -EBUSY)
                        return reply_error(id, "invalid_state", "cannot resume a VM that is %s",
                                           vm_state_to_string(vm->state));
                if (r < 0)
                        return r;
                return method_status(vm, id);
        }
        if (streq(method, "stop")) {
                *action = CONTROL_ACTION_STOP;
                json_object *res = json_object_new_object();
                if (!res || json_add_string(res, "state", "stopping") < 0) {
                        json_object_put(res);
                        return -ENOMEM;
                }
                return reply_result(id, res);
        }
        if (streq(method, "stats")) {
                static const char *const stats_keys[] = { "schema", NULL };
                json_object *st;
                bool schema = false;
                JsonError se = {};
                if (params && (json_check_keys(params, "$.params", stats_keys, &se) < 0 ||
                               json_get_bool(params, "$.params", "schema", false, &schema, &se) < 0))
                        return reply_error(id, "invalid_argument", "%s: %s", se.path, se.message);
                r = vm_stats_json(vm, schema, &st);
                if (r == -EOPNOTSUPP)
                        return reply_error(id, "unsupported", "KVM_CAP_BINARY_STATS_FD is absent");
                if (r < 0)
                        return reply_error(id, "internal", "reading KVM statistics failed: %s", strerror(-r));
                return reply_result(id, st);
        }
        return reply_error(id, "not_found", "unknown method \"%.64s\"", method);
}

int control_handle(Vm *vm, const char *msg, size_t len, char **ret_reply, ControlAction *ret_action) {
        _cleanup_json_ json_object *req = NULL;
        ControlAction action = CONTROL_ACTION_NONE;
        JsonError e = {};
        int r;

        pending_reply = NULL;
        if (len > CONTROL_MESSAGE_MAX)
                r = reply_error(NULL, "payload_too_large", "request of %zu bytes exceeds %d bytes", len,
                                CONTROL_MESSAGE_MAX);
        else if (!utf8_is_valid(msg, len))
                r = reply_error(NULL, "invalid_argument", "request is not valid UTF-8");
        else if (json_parse(msg, len, 16, &req, &e) < 0)
                r = reply_error(NULL, "invalid_argument", "%s", e.message);
        else
                r = dispatch(vm, req, &action);
        if (r < 0) {
                json_object_put(pending_reply);
                pending_reply = NULL;
                r = reply_error(NULL, "internal", "%s", strerror(-r));
                if (r < 0)
                        return r;
        }
        _cleanup_json_ json_object *reply = pending_reply;
        pending_reply = NULL;
        const char *text = json_to_string(reply);
        if (strlen(text) > CONTROL_REPLY_MAX) {
                size_t size = strlen(text);
                json_object *id = NULL;
                json_object_object_get_ex(reply, "id", &id);
                json_object_get(id);
                json_object_put(TAKE_PTR(reply));
                r = reply_error(id, "payload_too_large", "the reply of %zu bytes exceeds %d bytes", size, CONTROL_REPLY_MAX);
                json_object_put(id);
                if (r < 0)
                        return r;
                reply = pending_reply;
                pending_reply = NULL;
                text = json_to_string(reply);
        }
        char *copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        *ret_reply = copy;
        *ret_action = action;
        return 0;
}

int control_reply_too_large(const char *msg, size_t len, size_t reply_len, char **ret_reply) {
        _cleanup_json_ json_object *req = NULL;
        json_object *id = NULL;
        JsonError e;
        if (len <= CONTROL_MESSAGE_MAX && json_parse(msg, len, 16, &req, &e) >= 0)
                json_object_object_get_ex(req, "id", &id);
        int r = reply_error(id, "payload_too_large", "the reply of %zu bytes does not fit the control socket", reply_len);
        if (r < 0)
                return r;
        _cleanup_json_ json_object *reply = pending_reply;
        pending_reply = NULL;
        char *copy = strdup(json_to_string(reply));
        if (!copy)
                return -ENOMEM;
        *ret_reply = copy;
        return 0;
}

void control_conn_setup(int fd) {
        /* A SOCK_SEQPACKET message must fit the sender's buffer (the default, wmem_default, is about
         * 208 KiB here): make room for the largest reply. SO_SNDBUFFORCE passes the system's
         * limit (net.core.wmem_max) where the VMM may; SO_SNDBUF is capped by it. */
        int size = CONTROL_REPLY_MAX + 64 * 1024;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0 &&
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) < 0)
                log_debug_errno(errno, "Cannot enlarge a control connection's send buffer: %m");
}
