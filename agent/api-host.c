/* SPDX-License-Identifier: MIT */
/* GET /v1/host, GET /v1/host/kvm */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "api.h"
#include "host-info.h"
#include "host-kvm.h"
#include "json-util.h"

int api_host_get(Manager *m, HttpRequest *req, HttpResponse *resp) {
        json_object *o = NULL;
        int r = host_info_build(&o);
        if (r < 0)
                return r;
        json_add_string(o, "agent_version", KVMFLEET_VERSION);
        json_object *p = NULL;
        if (m->placement.housekeeping_cpus) {
                p = json_object_new_object();
                if (!p) {
                        json_object_put(o);
                        return -ENOMEM;
                }
                json_add_string(p, "housekeeping_cpus", m->placement.housekeeping_cpus);
                json_add_string(p, "guest_cpus", m->placement.guest_cpus);
                json_add_string(p, "mode", m->placement.automatic ? "auto" : "list");
        }
        json_add(o, "cpu_placement", p); /* null without placement: housekeeping_cpus = none, or one CPU */
        return http_reply_json(resp, 200, o);
}

int api_host_kvm_get(Manager *m, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *setup = NULL, *mods = NULL;
        int r;

        if (!o)
                return -ENOMEM;
        json_add_string(o, "report_path", m->config->kvm_setup_report);
        r = store_kvm_setup_latest(m->store, &setup);
        if (r < 0 && r != -ENOENT)
                return r;
        json_add(o, "setup", setup); /* null when kvmfleet-load has not written a report */
        r = host_kvm_modules("", &mods);
        if (r < 0)
                return r;
        json_add(o, "modules", mods);

        _cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int nested = fd >= 0 ? ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE) : 0;
        json_add_int(o, "nested_state_max_size", nested < 0 ? 0 : nested);
        r = host_kvm_policy(m, o);
        if (r < 0)
                return r;
        return http_reply_json(resp, 200, TAKE_PTR(o));
}
