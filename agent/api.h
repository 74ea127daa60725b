/* SPDX-License-Identifier: MIT */
#pragma once

#include "http.h"
#include "manager.h"

typedef int (*ApiHandler)(Manager *m, HttpRequest *req, HttpResponse *resp);

/* Routes a complete request to its handler, or answers 404/405/415 itself. */
void api_dispatch(Manager *m, HttpRequest *req, HttpResponse *resp);

int api_host_get(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_host_kvm_get(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_health_get(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_events_get(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_metrics_get(Manager *m, HttpRequest *req, HttpResponse *resp);
