/* SPDX-License-Identifier: MIT */
#include "client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"

typedef struct Buffer {
        char *data;
        size_t size;
} Buffer;

#define CLIENT_MAX_RESPONSE (64u << 20)

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Buffer *b = userdata;
        size_t n = size * nmemb;
        if (b->size + n > CLIENT_MAX_RESPONSE)
                return 0;
        char *d = realloc(b->data, b->size + n + 1);
        if (!d)
                return 0;
        memcpy(d + b->size, ptr, n);
        b->size += n;
        d[b->size] = 0;
        b->data = d;
        return n;
}

void client_response_done(ClientResponse *r) {
        json_object_put(r->body);
        free(r->raw);
        *r = (ClientResponse){ 0 };
}

int client_request(Client *c, const char *method, const char *path, const char *content_type, const char *body,
                   size_t body_size, ClientResponse *resp) {
        CURL *curl = curl_easy_init();
        struct curl_slist *headers = NULL;
        Buffer buf = { 0 };
        char url[4096], errbuf[CURL_ERROR_SIZE] = "";
        CURLcode rc;

        if (!curl)
                return -ENOMEM;
        if (c->url)
                snprintf(url, sizeof url, "%s%s", c->url, path);
        else {
                snprintf(url, sizeof url, "http://localhost%s", path);
                curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
        }
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, c->timeout_s > 0 ? c->timeout_s : 120L);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
        headers = curl_slist_append(headers, "Accept: application/json");
        if (c->url && c->token) {
                char auth[512];
                snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
                headers = curl_slist_append(headers, auth);
                explicit_bzero(auth, sizeof auth);
        }
        if (body) {
                char ct[160];
                snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
                headers = curl_slist_append(headers, ct);
                headers = curl_slist_append(headers, "Expect:");
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_size);
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

        rc = curl_easy_perform(curl);
        if (rc != CURLE_OK) {
                fprintf(stderr, "kvmfleetctl: cannot reach kvmfleetd at %s%s: %s%s\n", c->url ? "" : "unix:",
                        c->url ? c->url : c->socket_path, errbuf[0] ? errbuf : curl_easy_strerror(rc),
                        rc == CURLE_COULDNT_CONNECT ? " (is kvmfleetd running? see --socket/--url)" : "");
                curl_slist_free_all(headers);
                curl_easy_cleanup(curl);
                free(buf.data);
                return -ECONNREFUSED;
        }
        *resp = (ClientResponse){ 0 };
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        resp->raw = buf.data;
        resp->raw_size = buf.size;
        if (buf.data && buf.size > 0)
                json_parse(buf.data, buf.size, 128, &resp->body, NULL);
        return 0;
}

int client_report_error(const ClientResponse *resp) {
        json_object *err, *code, *msg, *details;
        if (resp->body && json_object_object_get_ex(resp->body, "error", &err) &&
            json_object_object_get_ex(err, "code", &code) && json_object_object_get_ex(err, "message", &msg)) {
                fprintf(stderr, "kvmfleetctl: %s (%s, HTTP %ld)\n", json_object_get_string(msg),
                        json_object_get_string(code), resp->status);
                if (json_object_object_get_ex(err, "details", &details) && json_object_object_length(details) > 0)
                        fprintf(stderr, "  details: %s\n", json_to_string(details));
        } else
                fprintf(stderr, "kvmfleetctl: HTTP %ld: %.200s\n", resp->status, resp->raw ? resp->raw : "");
        return EXIT_FAILED;
}

int client_get_json(Client *c, const char *path, json_object **ret) {
        ClientResponse resp;
        if (client_request(c, "GET", path, NULL, NULL, 0, &resp) < 0)
                return EXIT_UNREACHABLE;
        if (resp.status < 200 || resp.status >= 300 || !resp.body) {
                int e = client_report_error(&resp);
                client_response_done(&resp);
                return e;
        }
        *ret = TAKE_PTR(resp.body);
        client_response_done(&resp);
        return EXIT_OK;
}

typedef struct Stream {
        CURL *curl;
        FILE *out;
        Buffer error; /* the body of a non-2xx answer */
} Stream;

static size_t on_stream(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Stream *s = userdata;
        long code = 0;
        size_t n = size * nmemb;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code < 200 || code >= 300)
                return on_data(ptr, size, nmemb, &s->error);
        if (fwrite(ptr, 1, n, s->out) != n)
                return 0;
        fflush(s->out);
        return n;
}

int client_stream(Client *c, const char *path, FILE *out) {
        CURL *curl = curl_easy_init();
        struct curl_slist *headers = NULL;
        Stream s = { .curl = curl, .out = out };
        char url[4096], errbuf[CURL_ERROR_SIZE] = "";
        CURLcode rc;
        int r = EXIT_OK;

        if (!curl)
                return EXIT_FAILED;
        if (c->url)
                snprintf(url, sizeof url, "%s%s", c->url, path);
        else {
                snprintf(url, sizeof url, "http://localhost%s", path);
                curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
        }
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_stream);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
        if (c->url && c->token) {
                char auth[512];
                snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
                headers = curl_slist_append(headers, auth);
                explicit_bzero(auth, sizeof auth);
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        rc = curl_easy_perform(curl);
        if (rc != CURLE_OK && rc != CURLE_WRITE_ERROR) {
                fprintf(stderr, "kvmfleetctl: %s%s: %s\n", c->url ? "" : "unix:", c->url ? c->url : c->socket_path,
                        errbuf[0] ? errbuf : curl_easy_strerror(rc));
                r = rc == CURLE_COULDNT_CONNECT ? EXIT_UNREACHABLE : EXIT_FAILED;
        } else if (s.error.data) {
                ClientResponse resp = { 0 };
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
                resp.raw = s.error.data;
                resp.raw_size = s.error.size;
                json_parse(resp.raw, resp.raw_size, 128, &resp.body, NULL);
                r = client_report_error(&resp);
                s.error.data = NULL;
                client_response_done(&resp);
        }
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        free(s.error.data);
        return r;
}
