/* SPDX-License-Identifier: MIT */
#include "apicv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kvm.h"
#include "str-util.h"
#include "vm.h"

/* Register offsets in the 4 KiB APIC page (Intel SDM vol. 3, table 11-1). */
#define APIC_REG_ID 0x20
#define APIC_REG_VERSION 0x30
#define APIC_REG_TPR 0x80
#define APIC_REG_PPR 0xa0
#define APIC_REG_LDR 0xd0
#define APIC_REG_DFR 0xe0
#define APIC_REG_SVR 0xf0
#define APIC_REG_ISR 0x100
#define APIC_REG_TMR 0x180
#define APIC_REG_IRR 0x200
#define APIC_REG_ESR 0x280
#define APIC_REG_LVT_CMCI 0x2f0
#define APIC_REG_ICR_LOW 0x300
#define APIC_REG_ICR_HIGH 0x310
#define APIC_REG_LVT_TIMER 0x320
#define APIC_REG_LVT_THERMAL 0x330
#define APIC_REG_LVT_PERF 0x340
#define APIC_REG_LVT_LINT0 0x350
#define APIC_REG_LVT_LINT1 0x360
#define APIC_REG_LVT_ERROR 0x370
#define APIC_REG_TIMER_INITIAL 0x380
#define APIC_REG_TIMER_CURRENT 0x390
#define APIC_REG_TIMER_DIVIDE 0x3e0

#define APIC_BASE_BSP (1ULL << 8)
#define APIC_BASE_EXTD (1ULL << 10)
#define APIC_BASE_ENABLE (1ULL << 11)
#define APIC_BASE_ADDRESS_MASK 0xffffffffff000ULL

#define APIC_LVT_MASKED (1u << 16)

static uint32_t reg(const struct kvm_lapic_state *lapic, unsigned offset) {
        uint32_t v;
        memcpy(&v, lapic->regs + offset, sizeof v);
        return v;
}

static const char *delivery_mode_name(unsigned mode) {
        static const char *const names[] = { "fixed", "lowest-priority", "smi", "reserved-3",
                                             "nmi",   "init",            "startup", "extint" };
        return names[mode & 7];
}

static const char *timer_mode_name(unsigned mode) {
        static const char *const names[] = { "one-shot", "periodic", "tsc-deadline", "reserved" };
        return names[mode & 3];
}

/* The 256-bit ISR/TMR/IRR: eight 32-bit registers 16 bytes apart, vector n in bit n. */
static int vector_list(const struct kvm_lapic_state *lapic, unsigned base, json_object **ret) {
        json_object *arr = json_object_new_array();
        if (!arr)
                return -ENOMEM;
        for (unsigned i = 0; i < 8; i++) {
                uint32_t bits = reg(lapic, base + i * 16);
                for (unsigned b = 0; b < 32; b++)
                        if (bits & (1u << b) && json_object_array_add(arr, json_object_new_int((int) (i * 32 + b))) < 0) {
                                json_object_put(arr);
                                return -ENOMEM;
                        }
        }
        *ret = arr;
        return 0;
}

/* One LVT entry; which fields exist depends on the entry (timer: mode; LINT0/1: polarity, trigger). */
static int lvt_entry(uint32_t v, bool is_timer, bool is_lint, json_object **ret) {
        json_object *o = json_object_new_object();
        int r = 0;
        if (!o)
                return -ENOMEM;
        r |= json_add_uint(o, "raw", v);
        r |= json_add_uint(o, "vector", v & 0xff);
        if (!is_timer)
                r |= json_add_string(o, "delivery_mode", delivery_mode_name((v >> 8) & 7));
        r |= json_add_bool(o, "delivery_pending", v & (1u << 12));
        r |= json_add_bool(o, "masked", v & APIC_LVT_MASKED);
        if (is_timer)
                r |= json_add_string(o, "timer_mode", timer_mode_name((v >> 17) & 3));
        if (is_lint) {
                r |= json_add_string(o, "polarity", v & (1u << 13) ? "active-low" : "active-high");
                r |= json_add_bool(o, "remote_irr", v & (1u << 14));
                r |= json_add_string(o, "trigger_mode", v & (1u << 15) ? "level" : "edge");
        }
        if (r < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

/* Divide configuration register bits 0, 1 and 3 → divisor 2, 4, ..., 128, or 1 (0b1011). */
static unsigned timer_divisor(uint32_t dcr) {
        unsigned v = (dcr & 3) | ((dcr & 8) >> 1);
        return 1u << ((v + 1) & 7);
}

int lapic_decode(const struct kvm_lapic_state *lapic, uint64_t apic_base, bool x2apic_32bit_ids, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *sub, *lvt;
        bool enabled = apic_base & APIC_BASE_ENABLE, x2apic = enabled && (apic_base & APIC_BASE_EXTD);
        int r = 0;

        if (!o)
                return -ENOMEM;
        r |= json_add_string(o, "mode", !enabled ? "disabled" : x2apic ? "x2apic" : "xapic");
        r |= json_add_bool(o, "x2apic", x2apic);
        if (!(sub = json_object_new_object()))
                return -ENOMEM;
        r |= json_add(o, "apic_base", sub);
        r |= json_add_uint(sub, "raw", apic_base);
        r |= json_add_uint(sub, "address", apic_base & APIC_BASE_ADDRESS_MASK);
        r |= json_add_bool(sub, "enabled", enabled);
        r |= json_add_bool(sub, "x2apic", apic_base & APIC_BASE_EXTD);
        r |= json_add_bool(sub, "bsp", apic_base & APIC_BASE_BSP);

        uint32_t id = reg(lapic, APIC_REG_ID);
        r |= json_add_uint(o, "id", x2apic && x2apic_32bit_ids ? id : id >> 24);
        uint32_t version = reg(lapic, APIC_REG_VERSION);
        r |= json_add_uint(o, "version", version & 0xff);
        r |= json_add_uint(o, "max_lvt", ((version >> 16) & 0xff) + 1);
        r |= json_add_bool(o, "eoi_broadcast_suppression_supported", version & (1u << 24));
        r |= json_add_uint(o, "tpr", reg(lapic, APIC_REG_TPR) & 0xff);
        r |= json_add_uint(o, "ppr", reg(lapic, APIC_REG_PPR) & 0xff);
        r |= json_add_uint(o, "ldr", reg(lapic, APIC_REG_LDR));
        r |= json_add_uint(o, "dfr", reg(lapic, APIC_REG_DFR));
        r |= json_add_string(o, "dfr_model", (reg(lapic, APIC_REG_DFR) >> 28) == 0xf ? "flat" : "cluster");

        uint32_t svr = reg(lapic, APIC_REG_SVR);
        if (!(sub = json_object_new_object()))
                return -ENOMEM;
        r |= json_add(o, "svr", sub);
        r |= json_add_uint(sub, "raw", svr);
        r |= json_add_bool(sub, "software_enabled", svr & (1u << 8));
        r |= json_add_uint(sub, "spurious_vector", svr & 0xff);
        r |= json_add_bool(sub, "focus_check_disabled", svr & (1u << 9));
        r |= json_add_bool(sub, "eoi_broadcast_suppression", svr & (1u << 12));

        static const struct {
                const char *name;
                unsigned offset;
        } bitmaps[] = { { "isr", APIC_REG_ISR }, { "tmr", APIC_REG_TMR }, { "irr", APIC_REG_IRR } };
        for (size_t i = 0; i < ELEMENTSOF(bitmaps); i++) {
                if (vector_list(lapic, bitmaps[i].offset, &sub) < 0)
                        return -ENOMEM;
                r |= json_add(o, bitmaps[i].name, sub);
        }
        r |= json_add_uint(o, "esr", reg(lapic, APIC_REG_ESR));

        uint32_t icr_low = reg(lapic, APIC_REG_ICR_LOW), icr_high = reg(lapic, APIC_REG_ICR_HIGH);
        static const char *const shorthands[] = { "none", "self", "all-including-self", "all-excluding-self" };
        if (!(sub = json_object_new_object()))
                return -ENOMEM;
        r |= json_add(o, "icr", sub);
        r |= json_add_uint(sub, "raw", (uint64_t) icr_high << 32 | icr_low);
        r |= json_add_uint(sub, "vector", icr_low & 0xff);
        r |= json_add_string(sub, "delivery_mode", delivery_mode_name((icr_low >> 8) & 7));
        r |= json_add_string(sub, "destination_mode", icr_low & (1u << 11) ? "logical" : "physical");
        r |= json_add_bool(sub, "delivery_pending", icr_low & (1u << 12));
        r |= json_add_string(sub, "level", icr_low & (1u << 14) ? "assert" : "de-assert");
        r |= json_add_string(sub, "trigger_mode", icr_low & (1u << 15) ? "level" : "edge");
        r |= json_add_string(sub, "shorthand", shorthands[(icr_low >> 18) & 3]);
        r |= json_add_uint(sub, "destination", x2apic ? icr_high : icr_high >> 24);

        static const struct {
                const char *name;
                unsigned offset;
                bool is_timer, is_lint;
        } lvts[] = {
                { "timer", APIC_REG_LVT_TIMER, true, false },   { "cmci", APIC_REG_LVT_CMCI, false, false },
                { "thermal", APIC_REG_LVT_THERMAL, false, false }, { "perf", APIC_REG_LVT_PERF, false, false },
                { "lint0", APIC_REG_LVT_LINT0, false, true },   { "lint1", APIC_REG_LVT_LINT1, false, true },
                { "error", APIC_REG_LVT_ERROR, false, false },
        };
        if (!(lvt = json_object_new_object()))
                return -ENOMEM;
        r |= json_add(o, "lvt", lvt);
        for (size_t i = 0; i < ELEMENTSOF(lvts); i++) {
                if (lvt_entry(reg(lapic, lvts[i].offset), lvts[i].is_timer, lvts[i].is_lint, &sub) < 0)
                        return -ENOMEM;
                r |= json_add(lvt, lvts[i].name, sub);
        }

        uint32_t lvt_timer = reg(lapic, APIC_REG_LVT_TIMER), dcr = reg(lapic, APIC_REG_TIMER_DIVIDE);
        if (!(sub = json_object_new_object()))
                return -ENOMEM;
        r |= json_add(o, "timer", sub);
        r |= json_add_string(sub, "mode", timer_mode_name((lvt_timer >> 17) & 3));
        r |= json_add_uint(sub, "vector", lvt_timer & 0xff);
        r |= json_add_bool(sub, "masked", lvt_timer & APIC_LVT_MASKED);
        r |= json_add_uint(sub, "initial_count", reg(lapic, APIC_REG_TIMER_INITIAL));
        r |= json_add_uint(sub, "current_count", reg(lapic, APIC_REG_TIMER_CURRENT));
        r |= json_add_uint(sub, "divide_config", dcr & 0xb);
        r |= json_add_uint(sub, "divide", timer_divisor(dcr));

        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int apicv_setup_x2apic_api(int vm_fd, const VmSpec *spec, JsonError *e) {
        uint64_t flags = (spec->x2apic_use_32bit_ids ? KVM_X2APIC_API_USE_32BIT_IDS : 0) |
                         (spec->x2apic_disable_broadcast_quirk ? KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK : 0);
        if (flags == 0)
                return 0;
        if (spec->irqchip == VM_IRQCHIP_NONE)
                return json_error_set(e, "$.x2apic_api", "needs an in-kernel LAPIC (irqchip \"kernel\" or \"split\")");
        int supported = kvm_check_extension(vm_fd, KVM_CAP_X2APIC_API);
        if (supported <= 0)
                return json_error_set(e, "$.x2apic_api", "unsupported: KVM_CAP_X2APIC_API is absent");
        if ((flags & (uint64_t) supported) != flags)
                return json_error_set(e, "$.x2apic_api", "unsupported: KVM_CAP_X2APIC_API offers flags 0x%x, not 0x%llx",
                                      supported, (unsigned long long) flags);
        int r = kvm_enable_cap(vm_fd, KVM_CAP_X2APIC_API, flags);
        if (r < 0)
                return json_error_set(e, "$.x2apic_api", "enabling KVM_CAP_X2APIC_API failed: %s", strerror(-r));
        return 0;
}

/* ---- control methods ---- */

static int error_object(const char *code, json_object **ret, const char *fmt, ...) _printf_(3, 4);
static int error_object(const char *code, json_object **ret, const char *fmt, ...) {
        char message[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(message, sizeof message, fmt, ap);
        va_end(ap);
        json_object *o = json_object_new_object();
        if (!o || json_add_string(o, "code", code) < 0 || json_add_string(o, "message", message) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

typedef struct LapicRead {
        struct kvm_lapic_state lapic;
        uint64_t apic_base;
        const char *failed; /* the ioctl that failed */
} LapicRead;

/* Runs on the vCPU's thread (vm_vcpu_call): both are vCPU ioctls. */
static int lapic_read_on_vcpu(Vcpu *v, void *userdata) {
        LapicRead *lr = userdata;
        struct {
                struct kvm_msrs hdr;
                struct kvm_msr_entry entry;
        } msrs = { .hdr.nmsrs = 1, .entry.index = MSR_IA32_APICBASE };
        int r = kvm_ioctl(v->fd, KVM_GET_LAPIC, &lr->lapic);
        if (r < 0) {
                lr->failed = "KVM_GET_LAPIC";
                return r;
        }
        r = __kvm_ioctl(v->fd, KVM_GET_MSRS, &msrs);
        if (r != 1) {
                lr->failed = "KVM_GET_MSRS(IA32_APIC_BASE)";
                return r < 0 ? r : -EIO;
        }
        lr->apic_base = msrs.entry.data;
        return 0;
}

static int method_lapic(Vm *vm, json_object *params, json_object **ret, json_object **ret_error) {
        static const char *const keys[] = { "vcpu", NULL };
        LapicRead lr = {};
        JsonError e = {};
        uint64_t index;
        int r;

        if (!params)
                return error_object("invalid_argument", ret_error, "$.params.vcpu: is required");
        if (json_check_keys(params, "$.params", keys, &e) < 0 ||
            json_get_uint64(params, "$.params", "vcpu", true, 0, UINT32_MAX, &index, &e) < 0)
                return error_object("invalid_argument", ret_error, "%s: %s", e.path, e.message);
        if (index >= vm->n_vcpus)
                return error_object("not_found", ret_error, "vCPU %llu does not exist (the VM has %u)",
                                    (unsigned long long) index, vm->n_vcpus);
        if (vm->spec->irqchip == VM_IRQCHIP_NONE)
                return error_object("unsupported", ret_error,
                                    "vCPU %llu has no in-kernel LAPIC: the VM was created with irqchip \"none\"",
                                    (unsigned long long) index);
        r = vm_vcpu_call(vm, (unsigned) index, lapic_read_on_vcpu, &lr, APICV_VCPU_CALL_TIMEOUT_MS);
        if (r == -ETIMEDOUT)
                return error_object("internal", ret_error, "vCPU %llu did not stop to read its LAPIC within %d ms",
                                    (unsigned long long) index, APICV_VCPU_CALL_TIMEOUT_MS);
        if (r < 0)
                return error_object("internal", ret_error, "%s on vCPU %llu failed: %s", lr.failed ?: "vCPU call",
                                    (unsigned long long) index, strerror(-r));

        _cleanup_json_ json_object *o = NULL;
        r = lapic_decode(&lr.lapic, lr.apic_base, vm->spec->x2apic_use_32bit_ids, &o);
        if (r < 0)
                return r;
        if (json_add_uint(o, "vcpu", index) < 0 || json_add_string(o, "view", "per-vcpu") < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 1;
}

static int method_pit_reinject(Vm *vm, json_object *params, json_object **ret, json_object **ret_error) {
        static const char *const keys[] = { "reinject", NULL };
        JsonError e = {};
        bool reinject;
        int r;

        if (!params)
                return error_object("invalid_argument", ret_error, "$.params.reinject: is required");
        if (json_check_keys(params, "$.params", keys, &e) < 0 ||
            json_get_bool(params, "$.params", "reinject", true, &reinject, &e) < 0)
                return error_object("invalid_argument", ret_error, "%s: %s", e.path, e.message);
        if (vm->spec->irqchip != VM_IRQCHIP_KERNEL)
                return error_object("unsupported", ret_error,
                                    "the VM has no in-kernel PIT (irqchip \"%s\"): KVM_REINJECT_CONTROL needs irqchip \"kernel\"",
                                    vm_irqchip_to_string(vm->spec->irqchip));
        /* A VM ioctl: it does not wait for the vCPUs. */
        struct kvm_reinject_control rc = { .pit_reinject = reinject };
        r = __kvm_ioctl(vm->vm_fd, KVM_REINJECT_CONTROL, &rc);
        if (r < 0)
                return error_object("internal", ret_error, "KVM_REINJECT_CONTROL failed: %s", strerror(-r));
        pthread_mutex_lock(&vm->lock);
        bool previous = vm->spec->pit_reinject;
        vm->spec->pit_reinject = reinject;
        pthread_mutex_unlock(&vm->lock);

        json_object *o = json_object_new_object();
        if (!o || json_add_bool(o, "reinject", reinject) < 0 || json_add_bool(o, "previous", previous) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        *ret = o;
        return 1;
}

static int method_apicv_config(Vm *vm, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *sub;
        int r = 0;

        if (!o)
                return -ENOMEM;
        pthread_mutex_lock(&vm->lock);
        bool reinject = vm->spec->pit_reinject;
        pthread_mutex_unlock(&vm->lock);
        r |= json_add_string(o, "irqchip", vm_irqchip_to_string(vm->spec->irqchip));
        r |= json_add_bool(o, "in_kernel_lapic", vm->spec->irqchip != VM_IRQCHIP_NONE);
        if (!(sub = json_object_new_object()))
                return -ENOMEM;
        r |= json_add(o, "x2apic_api", sub);
        r |= json_add_bool(sub, "use_32bit_ids", vm->spec->x2apic_use_32bit_ids);
        r |= json_add_bool(sub, "disable_broadcast_quirk", vm->spec->x2apic_disable_broadcast_quirk);
        if (!(sub = json_object_new_object()))
                return -ENOMEM;
        r |= json_add(o, "pit", sub);
        r |= json_add_bool(sub, "in_kernel", vm->spec->irqchip == VM_IRQCHIP_KERNEL);
        r |= json_add_bool(sub, "reinject", reinject);
        r |= json_add_uint(o, "vcpus", vm->n_vcpus);
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 1;
}

bool apicv_control_method(const char *method) {
        return streq(method, "lapic") || streq(method, "pit_reinject") || streq(method, "apicv_config");
}

int apicv_control_call(Vm *vm, const char *method, json_object *params, json_object **ret, json_object **ret_error) {
        if (streq(method, "lapic"))
                return method_lapic(vm, params, ret, ret_error);
        if (streq(method, "pit_reinject"))
                return method_pit_reinject(vm, params, ret, ret_error);
        if (streq(method, "apicv_config"))
                return method_apicv_config(vm, ret);
        return -EOPNOTSUPP;
}
