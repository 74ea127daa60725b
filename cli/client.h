/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>

#define CLIENT_DEFAULT_SOCKET "/run/kvmfleet/api.sock"

/* How kvmfleetctl reaches kvmfleetd: a unix socket, or a URL with a bearer token. */
typedef struct Client {
        const char *socket_path;
        const char *url;
        char *token;
        bool json_output;
        long timeout_s;
} Client;

/* Exit codes shared by every command. */
enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,      /* the API refused or the checked thing is failing */
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3, /* could not talk to kvmfleetd at all */
};

typedef struct ClientResponse {
        long status;
        json_object *body; /* parsed JSON, or NULL */
        char *raw;
        size_t raw_size;
} ClientResponse;

void client_response_done(ClientResponse *r);

/* Performs one request. Returns 0 with *resp filled for any HTTP status, or -errno when no HTTP
 * exchange happened (the message, naming the socket or URL, is already printed). */
int client_request(Client *c, const char *method, const char *path, const char *content_type, const char *body,
                   size_t body_size, ClientResponse *resp);

/* Prints {"error":{...}} of a non-2xx response as "kvmfleetctl: message (code, HTTP n)" and
 * returns EXIT_FAILED. */
int client_report_error(const ClientResponse *resp);

/* GET path and copy the (streamed) body to out as it arrives, with no timeout; an exit code. */
int client_stream(Client *c, const char *path, FILE *out);

/* GET path; on 2xx prints JSON when --json and returns 0 with *ret (caller puts); else an exit code. */
int client_get_json(Client *c, const char *path, json_object **ret);
