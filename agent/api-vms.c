/* SPDX-License-Identifier: MIT */
/* /v1/vms: VM definitions, lifecycle actions, console and stats. The work is in vms.c; this file
 * maps HTTP to it. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "snapshot.h"
#include "json-util.h"
#include "str-util.h"

#define CONSOLE_MAX_DEFAULT (64 * 1024)
#define CONSOLE_MAX (1024 * 1024)

static const char *const vm_states[] = { "defined", "starting", "running", "paused", "stopping", "stopped", "crashed", NULL };

static int reply_vm_error(HttpResponse *resp, VmError *e) {
        json_object *d = e->details;
        e->details = NULL;
        return http_reply_error(resp, e->status, e->code, d, "%s", e->message);
}

static int reply_record(HttpResponse *resp, unsigned status, VmRecord *r) {
        json_object *o;
        int k = store_vm_to_json(r, &o);
        vm_record_free(r);
        if (k < 0)
                return k;
        return http_reply_json(resp, status, o);
}

/* ?name=true|false; 0 absent, 1 set (value in *ret), -EINVAL with a 400 written. */
static int query_bool(const HttpRequest *req, HttpResponse *resp, const char *key, bool *ret) {
        const char *v = http_query(req, key);
        if (!v)
                return 0;
        int b = parse_boolean(v);
        if (b < 0) {
                json_object *d = json_object_new_object();
                json_add_string(d, "parameter", key);
                http_reply_error(resp, 400, "invalid_argument", d, "query parameter \"%s\" must be true or false, not \"%s\"", key, v);
                return -EINVAL;
        }
        *ret = b;
        return 1;
}

int api_vms_create(Manager *m, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_object *body = NULL;
        VmError e = { 0 };
        VmRecord *r;

        if (api_content_type_is_xml(req->content_type))
                return api_vms_create_xml(m, req, resp);
        if (http_body_json(req, resp, &body) < 0)
                return 0;
        if (json_object_is_type(body, json_type_object) && json_object_object_get_ex(body, "restore_from", NULL)) {
                if (vms_restore(m, body, req->actor, &r, &e) < 0)
                        return reply_vm_error(resp, &e);
                return reply_record(resp, 201, r);
        }
        if (vms_create(m, body, req->actor, &r, &e) < 0)
                return reply_vm_error(resp, &e);
        return reply_record(resp, 201, r);
}

/* GET /v1/vms answers are cached per query until the vms table changes: fleet tooling polls
 * this listing, and building it means parsing every row's spec. */
#define LIST_CACHE_SIZE 8
typedef struct ListCacheEntry {
        uint64_t generation;
        char key[256];
        char *body;
        size_t size;
        uint64_t used;
} ListCacheEntry;
static ListCacheEntry list_cache[LIST_CACHE_SIZE];
static uint64_t list_cache_clock;
static pthread_mutex_t list_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static bool list_cache_get(const char *key, uint64_t generation, HttpResponse *resp) {
        bool hit = false;
        pthread_mutex_lock(&list_cache_lock);
        for (size_t i = 0; i < LIST_CACHE_SIZE && !hit; i++) {
                ListCacheEntry *c = &list_cache[i];
                if (c->body && c->generation == generation && streq(c->key, key)) {
                        resp->raw = malloc(c->size);
                        if (resp->raw) {
                                memcpy(resp->raw, c->body, c->size);
                                resp->raw_size = c->size;
                                resp->content_type = "application/json";
                                resp->status = 200;
                                c->used = ++list_cache_clock;
                                hit = true;
                        }
                }
        }
        pthread_mutex_unlock(&list_cache_lock);
        return hit;
}

static void list_cache_put(const char *key, uint64_t generation, const char *body) {
        size_t n = strlen(body);
        char *copy = malloc(n + 1);
        if (!copy)
                return;
        memcpy(copy, body, n);
        copy[n] = '\n';
        pthread_mutex_lock(&list_cache_lock);
        ListCacheEntry *victim = &list_cache[0];
        for (size_t i = 0; i < LIST_CACHE_SIZE; i++) {
                if (!list_cache[i].body || streq(list_cache[i].key, key)) {
                        victim = &list_cache[i];
                        break;
                }
                if (list_cache[i].used < victim->used)
                        victim = &list_cache[i];
        }
        free(victim->body);
        victim->body = copy;
        victim->size = n + 1;
        victim->generation = generation;
        victim->used = ++list_cache_clock;
        strscpy(victim->key, sizeof victim->key, key);
        pthread_mutex_unlock(&list_cache_lock);
}

int api_vms_list(Manager *m, HttpRequest *req, HttpResponse *resp) {
        uint64_t limit = 100, offset = 0;
        const char *state = http_query(req, "state"), *name = http_query(req, "name");
        json_object *vms;
        unsigned total;
        int k;

        if (http_query_uint(req, resp, "limit", 1, 1000, &limit) < 0 || http_query_uint(req, resp, "offset", 0, 1u << 30, &offset) < 0)
                return 0;
        if (state) {
                bool known = false;
                for (size_t i = 0; vm_states[i] && !known; i++)
                        known = streq(state, vm_states[i]);
                if (!known) {
                        json_object *d = json_object_new_object();
                        json_add_string(d, "parameter", "state");
                        return http_reply_error(resp, 400, "invalid_argument", d,
                                                "query parameter \"state\" must be one of defined, starting, running, paused, "
                                                "stopping, stopped, crashed");
                }
        }
        /* the generation before the reads: a change during them makes this entry stale at once */
        uint64_t generation = store_vm_generation(m->store);
        char key[256];
        bool cacheable = snprintf(key, sizeof key, "%s\n%s\n%llu\n%llu", state ?: "", name ?: "", (unsigned long long) offset,
                                  (unsigned long long) limit) < (int) sizeof key;
        if (cacheable && list_cache_get(key, generation, resp))
                return 0;
        if ((k = store_vm_count(m->store, state, name, &total)) < 0 ||
            (k = store_vm_list(m->store, state, name, (unsigned) offset, (unsigned) limit, &vms)) < 0)
                return k;
        json_object *o = json_object_new_object();
        if (!o) {
                json_object_put(vms);
                return -ENOMEM;
        }
        size_t n = json_object_array_length(vms);
        json_add(o, "vms", vms);
        json_add_uint(o, "total", total);
        json_add_uint(o, "offset", offset);
        json_add_uint(o, "limit", limit);
        if (offset + n < total)
                json_add_uint(o, "next_offset", offset + n);
        else
                json_add(o, "next_offset", NULL);
        if (cacheable)
                list_cache_put(key, generation,
                               json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        return http_reply_json(resp, 200, o);
}

int api_vm_get(Manager *m, HttpRequest *req, HttpResponse *resp) {
        VmRecord *r;
        int k = store_vm_get(m->store, req->params[0], &r);
        if (k == -ENOENT) {
                json_object *d = json_object_new_object();
                json_add_string(d, "id", req->params[0]);
                return http_reply_error(resp, 404, "not_found", d, "no VM \"%s\"", req->params[0]);
        }
        if (k < 0)
                return k;
        if (http_accepts(req, "application/xml") || streq_ptr(http_query(req, "format"), "xml"))
                return api_vm_reply_xml(resp, r);
        return reply_record(resp, 200, r);
}

int api_vm_delete(Manager *m, HttpRequest *req, HttpResponse *resp) {
        bool force = false;
        VmError e = { 0 };
        if (query_bool(req, resp, "force", &force) < 0)
                return 0;
        if (vms_delete(m, req->params[0], force, req->actor, &e) < 0)
                return reply_vm_error(resp, &e);
        resp->status = 204;
        return 0;
}

/* POST /v1/vms/{id}/{action} */
int api_vm_action(Manager *m, HttpRequest *req, HttpResponse *resp) {
        const char *id = req->params[0], *action = strrchr(req->path, '/') + 1;
        VmError e = { 0 };
        VmRecord *r = NULL;
        int k;

        if (streq(action, "stop")) {
                _cleanup_json_ json_object *body = NULL;
                JsonError je = { .path = "" };
                int64_t timeout = -1;
                bool force = false;
                static const char *const keys[] = { "timeout_s", "force", NULL };
                if (req->body_size > 0) {
                        if (http_body_json(req, resp, &body) < 0)
                                return 0;
                        if (json_check_keys(body, "$", keys, &je) < 0 ||
                            json_get_int64(body, "$", "timeout_s", false, 0, 3600, &timeout, &je) < 0 ||
                            json_get_bool(body, "$", "force", false, &force, &je) < 0)
                                return http_reply_json_error(resp, 422, &je);
                }
                k = vms_stop(m, id, (int) timeout, force, req->actor, &r, &e);
        } else {
                if (req->body_size > 0) {
                        _cleanup_json_ json_object *body = NULL;
                        if (http_body_json(req, resp, &body) < 0)
                                return 0;
                        if (json_object_object_length(body) > 0) {
                                json_object *d = json_object_new_object();
                                json_add_string(d, "path", "$");
                                return http_reply_error(resp, 422, "invalid_argument", d, "$: %s takes no parameters", action);
                        }
                }
                if (streq(action, "start"))
                        k = vms_start(m, id, req->actor, &r, &e);
                else if (streq(action, "pause"))
                        k = vms_pause(m, id, req->actor, &r, &e);
                else if (streq(action, "resume"))
                        k = vms_resume(m, id, req->actor, &r, &e);
                else if (streq(action, "restart"))
                        k = vms_restart(m, id, req->actor, &r, &e);
                else {
                        json_object *d = json_object_new_object();
                        json_add_string(d, "path", req->path);
                        return http_reply_error(resp, 404, "not_found", d,
                                                "no such action \"%s\" (start, stop, pause, resume, restart)", action);
                }
        }
        if (k < 0)
                return reply_vm_error(resp, &e);
        return reply_record(resp, 200, r);
}

int api_vm_stats(Manager *m, HttpRequest *req, HttpResponse *resp) {
        json_object *stats;
        VmError e = { 0 };
        if (vms_control(m, req->params[0], "stats", NULL, &stats, &e) < 0)
                return reply_vm_error(resp, &e);
        return http_reply_json(resp, 200, stats);
}

/* ---- console ---- */

typedef struct Follow {
        Manager *manager;
        char uuid[37];
        char *path;
        int fd;
        uint64_t offset;
} Follow;

static int follower_count; /* atomic */

static void follow_free(void *cls) {
        Follow *f = cls;
        if (f->fd >= 0)
                close(f->fd);
        free(f->path);
        free(f);
        __atomic_sub_fetch(&follower_count, 1, __ATOMIC_SEQ_CST);
}

static bool vm_active(Manager *m, const char *uuid) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        if (store_vm_get(m->store, uuid, &r) < 0)
                return false;
        return streq(r->state, "starting") || streq(r->state, "running") || streq(r->state, "paused") ||
               streq(r->state, "stopping");
}

/* Blocks up to about a second for new console bytes; ends the stream once the VM is down and
 * everything was sent. */
static ssize_t follow_read(void *cls, uint64_t pos, char *buf, size_t max) {
        Follow *f = cls;
        for (int i = 0; i < 20; i++) {
                if (f->fd < 0)
                        f->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (f->fd >= 0) {
                        struct stat st;
                        if (fstat(f->fd, &st) == 0 && (uint64_t) st.st_size < f->offset)
                                f->offset = 0; /* a new run truncated the log */
                        ssize_t n = pread(f->fd, buf, max, (off_t) f->offset);
                        if (n > 0) {
                                f->offset += (uint64_t) n;
                                return n;
                        }
                }
                if (!vm_active(f->manager, f->uuid))
                        return MHD_CONTENT_READER_END_OF_STREAM;
                struct timespec ts = { 0, 50 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        return 0;
}

int api_vm_console(Manager *m, HttpRequest *req, HttpResponse *resp) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        _cleanup_free_ char *path = NULL, *data = NULL;
        uint64_t offset = 0, max = CONSOLE_MAX_DEFAULT;
        bool follow = false;
        int k;

        if (http_query_uint(req, resp, "offset", 0, INT64_MAX, &offset) < 0 ||
            http_query_uint(req, resp, "max", 1, CONSOLE_MAX, &max) < 0 || query_bool(req, resp, "follow", &follow) < 0)
                return 0;
        k = store_vm_get(m->store, req->params[0], &r);
        if (k == -ENOENT) {
                json_object *d = json_object_new_object();
                json_add_string(d, "id", req->params[0]);
                return http_reply_error(resp, 404, "not_found", d, "no VM \"%s\"", req->params[0]);
        }
        if (k < 0)
                return k;
        if ((k = vms_console_path(m, r, &path)) < 0)
                return k;

        if (follow) {
                /* each follower holds one HTTP thread; keep one free for everything else */
                int limit = m->config->threads > 1 ? (int) m->config->threads - 1 : 1;
                if (__atomic_add_fetch(&follower_count, 1, __ATOMIC_SEQ_CST) > limit) {
                        __atomic_sub_fetch(&follower_count, 1, __ATOMIC_SEQ_CST);
                        json_object *d = json_object_new_object();
                        json_add_int(d, "limit", limit);
                        return http_reply_error(resp, 503, "busy", d,
                                                "%d console followers already (the limit is threads - 1); retry later", limit);
                }
                Follow *f = calloc(1, sizeof *f);
                if (!f || !(f->path = strdup(path))) {
                        free(f);
                        __atomic_sub_fetch(&follower_count, 1, __ATOMIC_SEQ_CST);
                        return -ENOMEM;
                }
                f->manager = m;
                strscpy(f->uuid, sizeof f->uuid, r->uuid);
                f->fd = -1;
                f->offset = offset;
                resp->status = 200;
                resp->content_type = "text/plain; charset=utf-8";
                resp->stream = follow_read;
                resp->stream_free = follow_free;
                resp->stream_cls = f;
                return 0;
        }

        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        uint64_t start = offset, size = 0;
        ssize_t n = 0;
        if (fd >= 0) {
                struct stat st;
                if (fstat(fd, &st) == 0)
                        size = (uint64_t) st.st_size;
                if (start > size)
                        start = size;
                data = malloc(max + 1);
                if (!data)
                        return -ENOMEM;
                n = pread(fd, data, max, (off_t) start);
                if (n < 0)
                        return -errno;
        } else if (errno != ENOENT)
                return -errno;
        _cleanup_free_ char *text = utf8_escape_invalid(data ? data : "", (size_t) n);
        if (!text)
                return -ENOMEM;
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_add_uint(o, "offset", start);
        json_add_uint(o, "next_offset", start + (uint64_t) n);
        json_add_string(o, "data", text);
        json_add_uint(o, "size", size);
        return http_reply_json(resp, 200, o);
}
