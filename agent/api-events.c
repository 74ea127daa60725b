/* SPDX-License-Identifier: MIT */
/* GET /v1/events?after=ID&limit=N&object=X: the audit log, oldest first, paginated by id. */
#include <errno.h>

#include "api.h"
#include "json-util.h"

int api_events_get(Manager *m, HttpRequest *req, HttpResponse *resp) {
        uint64_t after = 0, limit = 100;
        json_object *events = NULL;
        int r;

        if (http_query_uint(req, resp, "after", 0, INT64_MAX, &after) < 0 ||
            http_query_uint(req, resp, "limit", 1, 1000, &limit) < 0)
                return 0;
        r = store_events_list(m->store, (int64_t) after, (unsigned) limit, http_query(req, "object"), &events);
        if (r < 0)
                return r;
        size_t n = json_object_array_length(events);
        int64_t next = (int64_t) after;
        if (n > 0) {
                json_object *id;
                json_object_object_get_ex(json_object_array_get_idx(events, n - 1), "id", &id);
                next = json_object_get_int64(id);
        }
        json_object *o = json_object_new_object();
        if (!o) {
                json_object_put(events);
                return -ENOMEM;
        }
        json_add(o, "events", events);
        json_add_int(o, "next_after", next);
        json_add_bool(o, "more", n == limit);
        return http_reply_json(resp, 200, o);
}
