/* SPDX-License-Identifier: MIT */
#include "host-info.h"

#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "fd-util.h"
#include "json-util.h"
#include "str-util.h"
#include "vmm/kvm-compat.h" /* capabilities newer than the 6.1 headers */

#define CAP(x) { #x, KVM_CAP_##x }
static const struct {
        const char *name;
        int cap;
} kvm_caps[] = {
        CAP(IRQCHIP), CAP(HLT), CAP(USER_MEMORY), CAP(SET_TSS_ADDR), CAP(EXT_CPUID), CAP(NR_VCPUS),
        CAP(MAX_VCPUS), CAP(MAX_VCPU_ID), CAP(NR_MEMSLOTS), CAP(MULTI_ADDRESS_SPACE), CAP(READONLY_MEM),
        CAP(SYNC_MMU), CAP(COALESCED_MMIO), CAP(COALESCED_PIO), CAP(IOEVENTFD), CAP(IOEVENTFD_NO_LENGTH),
        CAP(IRQFD), CAP(IRQFD_RESAMPLE), CAP(IRQ_ROUTING), CAP(IRQ_INJECT_STATUS), CAP(SIGNAL_MSI),
        CAP(PIT), CAP(PIT2), CAP(PIT_STATE2), CAP(REINJECT_CONTROL), CAP(SPLIT_IRQCHIP), CAP(X2APIC_API),
        CAP(MP_STATE), CAP(VCPU_EVENTS), CAP(DEBUGREGS), CAP(XSAVE), CAP(XSAVE2), CAP(XCRS),
        CAP(TSC_CONTROL), CAP(TSC_DEADLINE_TIMER), CAP(ADJUST_CLOCK), CAP(KVMCLOCK_CTRL),
        CAP(IMMEDIATE_EXIT), CAP(NESTED_STATE), CAP(EXCEPTION_PAYLOAD), CAP(X86_SMM),
        CAP(MANUAL_DIRTY_LOG_PROTECT2), CAP(DIRTY_LOG_RING), CAP(DIRTY_LOG_RING_ACQ_REL),
        CAP(HALT_POLL), CAP(X86_USER_SPACE_MSR), CAP(X86_MSR_FILTER), CAP(X86_DISABLE_EXITS),
        CAP(BINARY_STATS_FD), CAP(CHECK_EXTENSION_VM), CAP(ENABLE_CAP), CAP(SET_GUEST_DEBUG),
        CAP(GET_MSR_FEATURES), CAP(SYS_ATTRIBUTES), CAP(VM_DISABLE_NX_HUGE_PAGES), CAP(PMU_CAPABILITY),
        CAP(X86_NOTIFY_VMEXIT), CAP(EXIT_HYPERCALL), CAP(HYPERV_CPUID), CAP(SET_IDENTITY_MAP_ADDR),
        CAP(USER_MEMORY2), CAP(MEMORY_ATTRIBUTES), CAP(GUEST_MEMFD), CAP(VM_TYPES),
};
#undef CAP

int host_kvm_capabilities(int kvm_fd, json_object **ret) {
        _cleanup_json_ json_object *caps = json_object_new_object();
        if (!caps)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(kvm_caps); i++) {
                int v = ioctl(kvm_fd, KVM_CHECK_EXTENSION, kvm_caps[i].cap);
                if (v < 0)
                        v = 0;
                if (json_add_int(caps, kvm_caps[i].name, v) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(caps);
        return 0;
}

static int module_params(const char *dir, json_object **ret) {
        _cleanup_json_ json_object *params = json_object_new_object();
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!params)
                return -ENOMEM;
        if (!d) {
                *ret = TAKE_PTR(params);
                return 0;
        }
        while ((de = readdir(d))) {
                char path[PATH_MAX];
                _cleanup_free_ char *value = NULL;
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
                if (read_one_line_file(path, &value) < 0)
                        continue; /* write-only or unreadable parameters are skipped */
                json_add_string(params, de->d_name, value);
        }
        closedir(d);
        *ret = TAKE_PTR(params);
        return 0;
}

int host_kvm_modules(const char *root, json_object **ret_modules) {
        static const char *const names[] = { "kvm", "kvm_intel", "kvm_amd" };
        _cleanup_json_ json_object *mods = json_object_new_object();
        if (!mods)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char dir[512], path[600];
                struct stat st;
                json_object *mod, *params = NULL;

                snprintf(dir, sizeof dir, "%s/sys/module/%s", root, names[i]);
                if (stat(dir, &st) < 0)
                        continue;
                mod = json_object_new_object();
                if (!mod || json_add(mods, names[i], mod) < 0)
                        return -ENOMEM;
                /* Loadable modules have an initstate; built-in ones only show their parameters. */
                snprintf(path, sizeof path, "%s/initstate", dir);
                json_add_string(mod, "type", access(path, F_OK) == 0 ? "module" : "builtin");
                snprintf(path, sizeof path, "%s/parameters", dir);
                if (module_params(path, &params) < 0)
                        return -ENOMEM;
                json_add(mod, "parameters", params);
        }
        *ret_modules = TAKE_PTR(mods);
        return 0;
}

static void cpu_identity(json_object *cpu) {
        unsigned a, b, c, d;
        char vendor[13] = "", brand[49] = "";

        if (__get_cpuid(0, &a, &b, &c, &d)) {
                memcpy(vendor, &b, 4);
                memcpy(vendor + 4, &d, 4);
                memcpy(vendor + 8, &c, 4);
        }
        if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004)
                for (unsigned leaf = 0; leaf < 3; leaf++) {
                        unsigned r[4];
                        __get_cpuid(0x80000002 + leaf, &r[0], &r[1], &r[2], &r[3]);
                        memcpy(brand + leaf * 16, r, 16);
                }
        json_add_string(cpu, "vendor_id", vendor);
        json_add_string(cpu, "vendor", streq(vendor, "GenuineIntel") ? "intel" : streq(vendor, "AuthenticAMD") ? "amd" : "unknown");
        json_add_string(cpu, "model", strstrip(brand));
        json_add_int(cpu, "count", sysconf(_SC_NPROCESSORS_ONLN));
        if (__get_cpuid(1, &a, &b, &c, &d)) {
                json_add_int(cpu, "family", ((a >> 8) & 0xf) + (((a >> 8) & 0xf) == 0xf ? (a >> 20) & 0xff : 0));
                json_add_int(cpu, "model_number", ((a >> 4) & 0xf) | ((((a >> 8) & 0xf) >= 6 ? (a >> 16) & 0xf : 0) << 4));
                json_add_int(cpu, "stepping", a & 0xf);
                json_add_bool(cpu, "vmx", c & (1u << 5));
        }
        if (__get_cpuid(0x80000001, &a, &b, &c, &d))
                json_add_bool(cpu, "svm", c & (1u << 2));
}

int host_info_build(json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *cpu, *kvm, *mods = NULL;
        struct utsname u;
        _cleanup_close_ int fd = -1;

        if (!o)
                return -ENOMEM;
        uname(&u);
        json_add_string(o, "hostname", u.nodename);
        json_add_string(o, "kernel_release", u.release);
        json_add_string(o, "kernel_version", u.version);
        json_add_string(o, "architecture", u.machine);

        cpu = json_object_new_object();
        if (!cpu || json_add(o, "cpu", cpu) < 0)
                return -ENOMEM;
        cpu_identity(cpu);

        kvm = json_object_new_object();
        if (!kvm || json_add(o, "kvm", kvm) < 0)
                return -ENOMEM;
        fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        json_add_bool(kvm, "available", fd >= 0);
        if (fd < 0)
                json_add_string(kvm, "error", strerror(errno));
        else {
                json_object *caps = NULL;
                json_add_int(kvm, "api_version", ioctl(fd, KVM_GET_API_VERSION, 0));
                if (host_kvm_capabilities(fd, &caps) < 0)
                        return -ENOMEM;
                json_add(kvm, "capabilities", caps);
        }
        if (host_kvm_modules("", &mods) < 0)
                return -ENOMEM;
        json_object *k;
        const char *type = "absent";
        if (json_object_object_get_ex(mods, "kvm", &k)) {
                json_object *t;
                json_object_object_get_ex(k, "type", &t);
                type = json_object_get_string(t);
        }
        json_add_string(kvm, "type", type);
        json_add(kvm, "modules", mods);
        *ret = TAKE_PTR(o);
        return 0;
}

int host_kvm_probe(char *detail, size_t n) {
        _cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                snprintf(detail, n, "open /dev/kvm: %s", strerror(errno));
                return r;
        }
        int v = ioctl(fd, KVM_GET_API_VERSION, 0);
        if (v != KVM_API_VERSION) {
                snprintf(detail, n, "KVM_GET_API_VERSION returned %d, expected %d", v, KVM_API_VERSION);
                return -EPROTO;
        }
        int vm = ioctl(fd, KVM_CREATE_VM, 0);
        if (vm < 0) {
                int r = -errno;
                snprintf(detail, n, "KVM_CREATE_VM: %s", strerror(errno));
                return r;
        }
        close(vm);
        snprintf(detail, n, "/dev/kvm usable: API version %d, VM created and destroyed", v);
        return 0;
}
