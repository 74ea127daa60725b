/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "json-util.h"
#include "macro.h"

#define HTTP_MAX_PATH_PARAMS 4

/* One request as the REST handlers see it: the whole body has been read (and bounded) already. */
typedef struct HttpRequest {
        struct MHD_Connection *connection;
        const char *method;
        const char *path;
        const char *body;
        size_t body_size;
        const char *content_type; /* media type without parameters, lower case; "" if none */
        char actor[160];          /* "uid=0(root) pid=42" on the unix socket, "token@ADDR" on TCP */
        char request_id[37];
        const char *route;        /* the matched route's pattern, set by api_dispatch; NULL if none */
        char *params[HTTP_MAX_PATH_PARAMS]; /* {name} segments of the route, in order */
        unsigned n_params;
        bool via_tcp;
} HttpRequest;

typedef struct HttpResponse {
        unsigned status;
        json_object *json; /* body, or NULL when raw is used */
        char *raw;
        size_t raw_size;
        const char *content_type;
        char allow[96];    /* for 405 */
        /* A streamed body (chunked, content_type applies): libmicrohttpd calls stream until it
         * returns MHD_CONTENT_READER_END_*, then stream_free(stream_cls). */
        MHD_ContentReaderCallback stream;
        MHD_ContentReaderFreeCallback stream_free;
        void *stream_cls;
} HttpResponse;

/* Query parameter, or NULL. */
const char *http_query(const HttpRequest *req, const char *key);
/* Reads an unsigned integer query parameter with bounds; 0 if absent (default kept), 1 if set,
 * or an error response (400) is written and -EINVAL returned. */
int http_query_uint(const HttpRequest *req, HttpResponse *resp, const char *key, uint64_t min, uint64_t max,
                    uint64_t *ret);
bool http_accepts(const HttpRequest *req, const char *media_type);

/* Sets the response; the response takes body's reference. Always return the int these return. */
int http_reply_json(HttpResponse *resp, unsigned status, json_object *body);
/* {"error":{"code","message","details"}}; details may be NULL (the response takes the reference). */
int http_reply_error(HttpResponse *resp, unsigned status, const char *code, json_object *details, const char *fmt, ...)
        _printf_(5, 6);
/* 422 invalid_argument naming the JSON path of the bad field. */
int http_reply_json_error(HttpResponse *resp, unsigned status, const JsonError *e);
/* Parses the request body as a JSON object (400 on malformed JSON, 415 on a non-JSON type). */
int http_body_json(const HttpRequest *req, HttpResponse *resp, json_object **ret);

void http_response_done(HttpResponse *resp);
