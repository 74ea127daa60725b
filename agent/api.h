/* SPDX-License-Identifier: MIT */
#pragma once

#include "http.h"
#include "manager.h"

typedef int (*ApiHandler)(Manager *m, HttpRequest *req, HttpResponse *resp);

/* Routes a complete request to its handler, or answers 404/405/415 itself. */
void api_dispatch(Manager *m, HttpRequest *req, HttpResponse *resp);

int api_host_get(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_host_kvm_get(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_host_kvm_params_put(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_host_kvm_reload(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_health_get(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_events_get(Manager *m, HttpRequest *req, HttpResponse *resp);

int api_vms_list(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_vms_create(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_vm_get(Manager *m, HttpRequest *req, HttpResponse *resp);
/* libvirt domain XML (api-vms-xml.c): POST /v1/vms with an XML body, GET /v1/vms/{id} as XML (takes
 * record). */
bool api_content_type_is_xml(const char *content_type);
int api_vms_create_xml(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_vm_reply_xml(HttpResponse *resp, VmRecord *record);
int api_vm_delete(Manager *m, HttpRequest *req, HttpResponse *resp);
/* POST /v1/vms/{id}/start|stop|pause|resume|restart: the action is the last path segment. */
int api_vm_action(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_vm_console(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_vm_stats(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_vm_snapshot(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_memslots_list(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_memslots_create(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_memslot_get(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_memslot_patch(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_memslot_delete(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_memslot_dirty_log(Manager *m, HttpRequest *req, HttpResponse *resp);
/* APIC virtualization (api-apicv.c). */
int api_vm_apicv_get(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_vm_apicv_patch(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_vm_lapic_get(Manager *m, HttpRequest *req, HttpResponse *resp);
/* /v1/vms/{id}/vcpus/{n}/nested-state (api-nested.c); PUT bodies beyond NESTED_STATE_BODY_MAX are 413. */
#define NESTED_STATE_BODY_MAX (32 * 1024)
int api_nested_state_get(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_nested_state_put(Manager *m, HttpRequest *req, HttpResponse *resp);
int api_metrics_get(Manager *m, HttpRequest *req, HttpResponse *resp);
