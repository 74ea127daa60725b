/* SPDX-License-Identifier: MIT */
/* libmicrohttpd glue: listeners, body collection with a size bound, authentication, and the
 * JSON response helpers the REST handlers use. */
#include "http-server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "str-util.h"
#include "time-util.h"

typedef struct Listener {
        Manager *manager;
        bool tcp;
} Listener;

static Listener unix_listener, tcp_listener;

typedef struct ConnCtx {
        char *body;
        size_t size;
        bool too_large;
        bool answered; /* a response was queued before the body was read */
} ConnCtx;

const char *http_query(const HttpRequest *req, const char *key) {
        return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, key);
}

int http_query_uint(const HttpRequest *req, HttpResponse *resp, const char *key, uint64_t min, uint64_t max,
                    uint64_t *ret) {
        const char *v = http_query(req, key);
        uint64_t x;
        if (!v)
                return 0;
        if (safe_atou64(v, &x) < 0 || x < min || x > max) {
                json_object *d = json_object_new_object();
                json_add_string(d, "parameter", key);
                http_reply_error(resp, 400, "invalid_argument", d, "query parameter \"%s\" must be an integer between %llu and %llu",
                                 key, (unsigned long long) min, (unsigned long long) max);
                return -EINVAL;
        }
        *ret = x;
        return 1;
}

bool http_accepts(const HttpRequest *req, const char *media_type) {
        const char *a = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
        return a && strcasestr(a, media_type);
}

int http_reply_json(HttpResponse *resp, unsigned status, json_object *body) {
        json_object_put(resp->json);
        resp->json = body;
        resp->status = status;
        return 0;
}

int http_reply_error(HttpResponse *resp, unsigned status, const char *code, json_object *details, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        json_object *root = json_object_new_object(), *err = json_object_new_object();
        if (!root || !err) {
                json_object_put(root);
                json_object_put(err);
                json_object_put(details);
                return -ENOMEM;
        }
        json_add(root, "error", err);
        json_add_string(err, "code", code);
        json_add_string(err, "message", msg);
        json_add(err, "details", details ? details : json_object_new_object());
        return http_reply_json(resp, status, root);
}

int http_reply_json_error(HttpResponse *resp, unsigned status, const JsonError *e) {
        json_object *d = json_object_new_object();
        json_add_string(d, "path", e->path);
        json_add_string(d, "reason", e->message);
        return http_reply_error(resp, status, "invalid_argument", d, "%s: %s", e->path, e->message);
}

int http_body_json(const HttpRequest *req, HttpResponse *resp, json_object **ret) {
        JsonError e;
        json_object *o = NULL;
        if (req->body_size == 0) {
                http_reply_error(resp, 400, "invalid_argument", NULL, "request body is required (a JSON object)");
                return -EINVAL;
        }
        if (!streq(req->content_type, "application/json")) {
                json_object *d = json_object_new_object();
                json_add_string(d, "content_type", req->content_type);
                http_reply_error(resp, 415, "unsupported_media_type", d, "expected Content-Type: application/json");
                return -EINVAL;
        }
        if (json_parse(req->body, req->body_size, 64, &o, &e) < 0) {
                json_object *d = json_object_new_object();
                json_add_string(d, "path", e.path);
                json_add_string(d, "reason", e.message);
                http_reply_error(resp, 400, "invalid_argument", d, "%s", e.message);
                return -EINVAL;
        }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                e = (JsonError){ "$", "must be an object" };
                http_reply_json_error(resp, 422, &e);
                return -EINVAL;
        }
        *ret = o;
        return 0;
}

void http_response_done(HttpResponse *resp) {
        if (resp->stream_cls && resp->stream_free)
                resp->stream_free(resp->stream_cls);
        json_object_put(resp->json);
        free(resp->raw);
        *resp = (HttpResponse){ 0 };
}

static enum MHD_Result queue(struct MHD_Connection *c, HttpResponse *resp, const char *request_id) {
        struct MHD_Response *r;
        enum MHD_Result ret;

        if (resp->stream) {
                r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, resp->stream, resp->stream_cls,
                                                      resp->stream_free);
                if (r) {
                        resp->stream_cls = NULL; /* libmicrohttpd frees it now */
                        if (resp->content_type)
                                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
                }
        } else if (resp->json) {
                const char *s = json_object_to_json_string_ext(resp->json, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                size_t n = strlen(s);
                /* newline-terminated so shell users see a clean prompt */
                char *buf = malloc(n + 2);
                if (!buf)
                        return MHD_NO;
                memcpy(buf, s, n);
                buf[n] = '\n';
                buf[n + 1] = 0;
                r = MHD_create_response_from_buffer(n + 1, buf, MHD_RESPMEM_MUST_FREE);
                if (!r)
                        free(buf);
                else
                        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        } else {
                r = MHD_create_response_from_buffer(resp->raw_size, resp->raw ? resp->raw : (char *) "", MHD_RESPMEM_MUST_COPY);
                if (r && resp->content_type)
                        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
        }
        if (!r)
                return MHD_NO;
        if (request_id && *request_id)
                MHD_add_response_header(r, "X-Request-Id", request_id);
        if (resp->status == 405 && resp->allow[0])
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
        if (resp->status == 401)
                MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"kvmfleet\"");
        ret = MHD_queue_response(c, resp->status ? resp->status : 500, r);
        MHD_destroy_response(r);
        return ret;
}

/* Constant time, so the token can't be guessed byte by byte from response timing. */
static bool token_equal(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        unsigned char diff = la != lb;
        for (size_t i = 0; i < la; i++)
                diff |= (unsigned char) a[i] ^ (unsigned char) b[i % (lb ? lb : 1)];
        return diff == 0;
}

static bool authorized(Manager *m, struct MHD_Connection *c) {
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        const char *t;
        if (!h || !m->token || !(t = startswith(h, "Bearer ")))
                return false;
        return token_equal(t, m->token);
}

static void describe_peer(const Listener *l, struct MHD_Connection *c, char *buf, size_t n) {
        const union MHD_ConnectionInfo *ci;
        if (l->tcp) {
                char host[NI_MAXHOST] = "?";
                ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
                if (ci && ci->client_addr)
                        getnameinfo(ci->client_addr,
                                    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
                                    host, sizeof host, NULL, 0, NI_NUMERICHOST);
                snprintf(buf, n, "token@%.64s", host);
                return;
        }
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                snprintf(buf, n, "unix:unknown");
                return;
        }
        /* The user name costs a passwd lookup (NSS: open, read and parse /etc/passwd) per request; a
         * client's uid repeats, so each server thread keeps the last answer for a minute. */
        static __thread uid_t cached_uid;
        static __thread uint64_t cached_at;
        static __thread char cached_name[64];
        uint64_t now = now_monotonic_usec();
        if (!cached_at || cached_uid != cred.uid || now - cached_at > 60 * USEC_PER_SEC) {
                char pwbuf[1024];
                struct passwd pw, *pwp = NULL;
                getpwuid_r(cred.uid, &pw, pwbuf, sizeof pwbuf, &pwp);
                snprintf(cached_name, sizeof cached_name, "%s", pwp ? pwp->pw_name : "?");
                cached_uid = cred.uid;
                cached_at = now;
        }
        snprintf(buf, n, "uid=%u(%s) pid=%d", (unsigned) cred.uid, cached_name, (int) cred.pid);
}

static void media_type(const char *header, char *buf, size_t n) {
        size_t i = 0;
        if (!header) {
                buf[0] = 0;
                return;
        }
        while (isspace((unsigned char) *header))
                header++;
        for (; header[i] && header[i] != ';' && !isspace((unsigned char) header[i]) && i < n - 1; i++)
                buf[i] = (char) tolower((unsigned char) header[i]);
        buf[i] = 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
        Listener *l = cls;
        Manager *m = l->manager;
        ConnCtx *ctx = *con_cls;
        HttpResponse resp = { 0 };
        enum MHD_Result ret;

        if (!ctx) {
                ctx = calloc(1, sizeof *ctx);
                if (!ctx)
                        return MHD_NO;
                *con_cls = ctx;
                /* Refuse before reading any body: unauthenticated or oversized requests. */
                if (l->tcp && !authorized(m, c)) {
                        http_reply_error(&resp, 401, "unauthorized", NULL, "a valid \"Authorization: Bearer <token>\" header is required on TCP");
                        ctx->answered = true;
                } else {
                        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                        uint64_t len;
                        if (cl && safe_atou64(cl, &len) >= 0 && len > m->config->max_body) {
                                json_object *d = json_object_new_object();
                                json_add_uint(d, "limit", m->config->max_body);
                                json_add_uint(d, "size", len);
                                http_reply_error(&resp, 413, "payload_too_large", d, "request body of %llu bytes exceeds the limit of %llu bytes",
                                                 (unsigned long long) len, (unsigned long long) m->config->max_body);
                                ctx->answered = true;
                        }
                }
                if (ctx->answered) {
                        metrics_request_observe(method, NULL, resp.status, 0);
                        ret = queue(c, &resp, NULL);
                        http_response_done(&resp);
                        return ret;
                }
                return MHD_YES;
        }
        if (ctx->answered) {
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (ctx->too_large || ctx->size + n > m->config->max_body) {
                        ctx->too_large = true; /* chunked upload without a length: keep reading, drop it */
                        free(ctx->body);
                        ctx->body = NULL;
                        return MHD_YES;
                }
                char *nb = realloc(ctx->body, ctx->size + n + 1);
                if (!nb)
                        return MHD_NO;
                memcpy(nb + ctx->size, upload_data, n);
                ctx->size += n;
                nb[ctx->size] = 0;
                ctx->body = nb;
                return MHD_YES;
        }

        HttpRequest req = {
                .connection = c,
                .method = method,
                .path = url,
                .body = ctx->body ? ctx->body : "",
                .body_size = ctx->size,
                .via_tcp = l->tcp,
        };
        char ct[128];
        media_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE), ct, sizeof ct);
        req.content_type = ct;
        uuid_generate_fast_str(req.request_id);
        const union MHD_ConnectionInfo *sc = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (sc && sc->socket_context)
                snprintf(req.actor, sizeof req.actor, "%s", (const char *) sc->socket_context);
        else
                describe_peer(l, c, req.actor, sizeof req.actor);
        uint64_t start_usec = now_monotonic_usec();

        if (ctx->too_large) {
                json_object *d = json_object_new_object();
                json_add_uint(d, "limit", m->config->max_body);
                http_reply_error(&resp, 413, "payload_too_large", d, "request body exceeds the limit of %llu bytes",
                                 (unsigned long long) m->config->max_body);
        } else {
                /* Every line logged while this request is handled carries its REQUEST_ID. */
                char rid_context[64];
                snprintf(rid_context, sizeof rid_context, "REQUEST_ID=%s", req.request_id);
                int pushed = log_context_push(rid_context);
                api_dispatch(m, &req, &resp);
                if (pushed >= 0)
                        log_context_pop();
        }

        metrics_request_observe(method, req.route, resp.status, now_monotonic_usec() - start_usec);
        char rid_field[64], status_field[32];
        snprintf(rid_field, sizeof rid_field, "REQUEST_ID=%s", req.request_id);
        snprintf(status_field, sizeof status_field, "HTTP_STATUS=%u", resp.status);
        log_struct(LOG_DEBUG, 0, LOG_FIELDS(rid_field, status_field), "%s %s %s -> %u (%s)", method, url, version,
                   resp.status, req.actor);
        ret = queue(c, &resp, req.request_id);
        http_response_done(&resp);
        for (unsigned i = 0; i < req.n_params; i++)
                free(req.params[i]);
        return ret;
}

/* Who is at the other end, found once when a connection opens: a unix peer's credentials are those
 * it had at connect() and do not change, so the requests of a kept connection need not ask again. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        Listener *l = cls;
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                char actor[sizeof(((HttpRequest *) NULL)->actor)];
                describe_peer(l, c, actor, sizeof actor);
                *socket_context = strdup(actor); /* NULL: each request asks itself */
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
                *socket_context = mfree(*socket_context);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        Listener *l = cls;
        ConnCtx *ctx = *con_cls;
        /* The reply is sent: what the handler left for after it (a change's result row and event,
         * store_defer()) is written now, before this connection's next request. */
        store_flush(l->manager->store);
        if (ctx) {
                free(ctx->body);
                free(ctx);
                *con_cls = NULL;
        }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        char buf[512];
        vsnprintf(buf, sizeof buf, fmt, ap);
        buf[strcspn(buf, "\n")] = 0;
        log_debug("libmicrohttpd: %s", buf);
}

static struct MHD_Daemon *start_daemon(Manager *m, Listener *l, int fd) {
        return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                on_request, l, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                                MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE,
                                (unsigned) m->config->threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
                                MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 60, MHD_OPTION_CONNECTION_LIMIT, (unsigned) 1024,
                                MHD_OPTION_END);
}

int http_server_start_unix(Manager *m, int *ret_fd, struct MHD_Daemon **ret) {
        const AgentConfig *cfg = m->config;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        struct MHD_Daemon *d;

        if (strscpy(sa.sun_path, sizeof sa.sun_path, cfg->socket_path) < 0)
                return -ENAMETOOLONG;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* A socket file left by a crashed agent would make bind() fail; nobody listens on it. */
        unlink(cfg->socket_path);
        mode_t old = umask(0777 & ~cfg->socket_mode);
        int r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0)
                return -errno;
        if (chmod(cfg->socket_path, cfg->socket_mode) < 0)
                return -errno;
        if (cfg->socket_group) {
                char buf[1024];
                struct group gr, *grp = NULL;
                if (getgrnam_r(cfg->socket_group, &gr, buf, sizeof buf, &grp) != 0 || !grp)
                        return -ESRCH;
                if (chown(cfg->socket_path, (uid_t) -1, grp->gr_gid) < 0)
                        return -errno;
        }
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        unix_listener = (Listener){ .manager = m, .tcp = false };
        d = start_daemon(m, &unix_listener, fd);
        if (!d)
                return -EIO;
        *ret_fd = TAKE_FD(fd); /* owned by the daemon now; closed by MHD_stop_daemon */
        *ret = d;
        return 0;
}

int http_server_start_tcp(Manager *m, struct MHD_Daemon **ret) {
        const char *listen_addr = m->config->listen_tcp;
        const char *colon = strrchr(listen_addr, ':');
        _cleanup_free_ char *host = strndup(listen_addr, (size_t) (colon - listen_addr));
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE };
        struct addrinfo *ai = NULL;
        _cleanup_close_ int fd = -1;
        int one = 1;

        if (!host)
                return -ENOMEM;
        /* "[::1]:8080" */
        if (host[0] == '[' && host[strlen(host) - 1] == ']') {
                memmove(host, host + 1, strlen(host));
                host[strlen(host) - 1] = 0;
        }
        if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai)
                return -EADDRNOTAVAIL;
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                freeaddrinfo(ai);
                return -errno;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
                int r = -errno;
                freeaddrinfo(ai);
                return r;
        }
        freeaddrinfo(ai);
        tcp_listener = (Listener){ .manager = m, .tcp = true };
        struct MHD_Daemon *d = start_daemon(m, &tcp_listener, fd);
        if (!d)
                return -EIO;
        TAKE_FD(fd);
        *ret = d;
        return 0;
}
