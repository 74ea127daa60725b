/* SPDX-License-Identifier: MIT */
#include "nested-policy.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fd-util.h"
#include "host-kvm.h"
#include "json-util.h"
#include "str-util.h"

static bool cpu_has_virt(const char *vendor_module) {
        unsigned a, b, c, d;
        if (!vendor_module)
                return false;
        if (streq(vendor_module, "kvm_intel"))
                return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 5));
        return __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 2));
}

void nested_host_facts(NestedHostFacts *ret) {
        NestedHostFacts f = {};
        if (access("/sys/module/kvm_intel", F_OK) == 0)
                f.vendor_module = "kvm_intel";
        else if (access("/sys/module/kvm_amd", F_OK) == 0)
                f.vendor_module = "kvm_amd";
        f.cpu_virt = cpu_has_virt(f.vendor_module);
        if (f.vendor_module) {
                char path[96];
                _cleanup_free_ char *v = NULL;
                snprintf(path, sizeof path, "/sys/module/%s/parameters/nested", f.vendor_module);
                if (read_one_line_file(path, &v) >= 0)
                        strscpy(f.nested_param, sizeof f.nested_param, strstrip(v));
        }
        _cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
                int n = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);
                f.nested_state_max_size = n > 0 ? n : 0;
        }
        *ret = f;
}

static void reason(json_object *reasons, char *msg, size_t n, const char *check, const char *text) {
        json_object *r = json_object_new_object();
        if (r) {
                json_add_string(r, "check", check);
                json_add_string(r, "message", text);
                json_object_array_add(reasons, r);
        }
        size_t l = strlen(msg);
        snprintf(msg + l, n - l, "%s%s", l ? "; " : "", text);
}

int nested_host_check(const NestedHostFacts *f, const char *vm_name, const char *what, VmError *e) {
        char msg[512] = "", text[200];
        json_object *reasons = json_object_new_array();

        if (!f->vendor_module)
                reason(reasons, msg, sizeof msg, "vendor_module",
                       "neither kvm_intel nor kvm_amd is loaded: this KVM has no VMX or SVM to expose");
        else {
                const char *param = streq(f->vendor_module, "kvm_intel") ? "kvm_intel.nested" : "kvm_amd.nested";
                if (!f->cpu_virt) {
                        snprintf(text, sizeof text, "the CPU does not report %s in CPUID",
                                 streq(f->vendor_module, "kvm_intel") ? "VMX" : "SVM");
                        reason(reasons, msg, sizeof msg, "cpu_feature", text);
                }
                if (!f->nested_param[0]) {
                        snprintf(text, sizeof text, "%s does not exist on this kernel", param);
                        reason(reasons, msg, sizeof msg, "nested_parameter", text);
                } else if (!kvm_param_truthy(f->nested_param)) {
                        snprintf(text, sizeof text, "the host's %s parameter is off (%s; PUT /v1/host/kvm/params and reload)",
                                 param, f->nested_param);
                        reason(reasons, msg, sizeof msg, "nested_parameter", text);
                }
        }
        if (f->nested_state_max_size <= 0)
                reason(reasons, msg, sizeof msg, "KVM_CAP_NESTED_STATE",
                       "KVM_CAP_NESTED_STATE is 0: this KVM cannot save or restore nested state");
        if (!reasons || json_object_array_length(reasons) == 0) {
                json_object_put(reasons);
                return 0;
        }
        json_object_put(e->details);
        e->details = json_object_new_object();
        json_add_string(e->details, "path", "$.cpu.nested");
        json_add_string(e->details, "capability", f->nested_state_max_size <= 0 ? "KVM_CAP_NESTED_STATE" : NULL);
        json_add_string(e->details, "vendor_module", f->vendor_module);
        json_add_int(e->details, "nested_state_max_size", f->nested_state_max_size);
        json_add(e->details, "reasons", reasons);
        e->status = 422;
        e->code = "unsupported";
        snprintf(e->message, sizeof e->message, "cannot %s VM \"%s\" with cpu.nested: %s", what, vm_name, msg);
        return -EINVAL;
}

bool nested_spec_wanted(const char *spec_json) {
        _cleanup_json_ json_object *spec = NULL;
        json_object *cpu, *nested;
        if (!spec_json || json_parse(spec_json, strlen(spec_json), 64, &spec, NULL) < 0)
                return false;
        return json_object_object_get_ex(spec, "cpu", &cpu) && json_object_object_get_ex(cpu, "nested", &nested) &&
               json_object_get_boolean(nested);
}
