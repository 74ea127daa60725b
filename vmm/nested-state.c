/* SPDX-License-Identifier: MIT */
#include "nested-state.h"

#include <cpuid.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json-util.h"
#include "str-util.h"

_Static_assert(sizeof(struct kvm_nested_state) == NESTED_STATE_HDR_SIZE, "kvm_nested_state header is 128 bytes");

int nested_state_format_for_vendor(const char *cpuid_vendor) {
        if (streq(cpuid_vendor, "GenuineIntel") || streq(cpuid_vendor, "CentaurHauls") ||
            streq(cpuid_vendor, "  Shanghai  "))
                return KVM_STATE_NESTED_FORMAT_VMX;
        if (streq(cpuid_vendor, "AuthenticAMD") || streq(cpuid_vendor, "HygonGenuine"))
                return KVM_STATE_NESTED_FORMAT_SVM;
        return -EOPNOTSUPP;
}

int nested_state_host_format(void) {
        unsigned a, b, c, d;
        char vendor[13] = "";
        if (!__get_cpuid(0, &a, &b, &c, &d))
                return -EOPNOTSUPP;
        memcpy(vendor, &b, 4);
        memcpy(vendor + 4, &d, 4);
        memcpy(vendor + 8, &c, 4);
        return nested_state_format_for_vendor(vendor);
}

const char *nested_state_format_to_string(unsigned format) {
        switch (format) {
        case KVM_STATE_NESTED_FORMAT_VMX:
                return "vmx";
        case KVM_STATE_NESTED_FORMAT_SVM:
                return "svm";
        default:
                return "unknown";
        }
}

static int add_gpa(json_object *o, const char *key, uint64_t gpa) {
        if (gpa == NESTED_STATE_INVALID_GPA)
                return json_add(o, key, NULL);
        return json_add_uint(o, key, gpa);
}

int nested_state_decode(const void *blob, size_t len, json_object **ret) {
        struct kvm_nested_state st;
        int r = 0;

        if (len < NESTED_STATE_HDR_SIZE)
                return -EINVAL;
        memcpy(&st, blob, sizeof st); /* the blob may come unaligned from a decoder */

        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *flags = json_object_new_object();
        if (!o || !flags) {
                json_object_put(flags);
                return -ENOMEM;
        }
        r |= json_add_string(o, "format", nested_state_format_to_string(st.format));
        r |= json_add_uint(o, "format_raw", st.format);
        r |= json_add_uint(o, "size", st.size);
        r |= json_add_uint(o, "data_size", len - NESTED_STATE_HDR_SIZE);
        r |= json_add(o, "flags", flags);
        r |= json_add_uint(flags, "raw", st.flags);
        r |= json_add_bool(flags, "guest_mode", st.flags & KVM_STATE_NESTED_GUEST_MODE);
        r |= json_add_bool(flags, "run_pending", st.flags & KVM_STATE_NESTED_RUN_PENDING);
        r |= json_add_bool(flags, "evmcs", st.flags & KVM_STATE_NESTED_EVMCS);
        r |= json_add_bool(flags, "mtf_pending", st.flags & KVM_STATE_NESTED_MTF_PENDING);
        r |= json_add_bool(flags, "gif_set", st.flags & KVM_STATE_NESTED_GIF_SET);
        r |= json_add_uint(flags, "unknown", st.flags & ~NESTED_STATE_FLAGS_KNOWN);

        if (st.format == KVM_STATE_NESTED_FORMAT_SVM) {
                json_object *svm = json_object_new_object();
                if (!svm)
                        return -ENOMEM;
                r |= json_add(o, "svm", svm);
                r |= add_gpa(svm, "vmcb_pa", st.hdr.svm.vmcb_pa);
        } else if (st.format == KVM_STATE_NESTED_FORMAT_VMX) {
                json_object *vmx = json_object_new_object(), *smm = json_object_new_object(),
                            *vflags = json_object_new_object();
                if (!vmx || !smm || !vflags) {
                        json_object_put(vmx);
                        json_object_put(smm);
                        json_object_put(vflags);
                        return -ENOMEM;
                }
                r |= json_add(o, "vmx", vmx);
                r |= add_gpa(vmx, "vmxon_pa", st.hdr.vmx.vmxon_pa);
                r |= add_gpa(vmx, "vmcs12_pa", st.hdr.vmx.vmcs12_pa);
                r |= json_add(vmx, "smm", smm);
                r |= json_add_uint(smm, "raw", st.hdr.vmx.smm.flags);
                r |= json_add_bool(smm, "guest_mode", st.hdr.vmx.smm.flags & KVM_STATE_NESTED_SMM_GUEST_MODE);
                r |= json_add_bool(smm, "vmxon", st.hdr.vmx.smm.flags & KVM_STATE_NESTED_SMM_VMXON);
                r |= json_add(vmx, "flags", vflags);
                r |= json_add_uint(vflags, "raw", st.hdr.vmx.flags);
                r |= json_add_bool(vflags, "preemption_timer_deadline_valid",
                                   st.hdr.vmx.flags & KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE);
                r |= json_add_uint(vmx, "preemption_timer_deadline", st.hdr.vmx.preemption_timer_deadline);
        }
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

_printf_(4, 5) static int refuse(NestedStateError *e, int err, const char *field, const char *fmt, ...) {
        va_list ap;
        strscpy(e->field, sizeof e->field, field);
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
        return err;
}

static bool page_aligned(uint64_t gpa) {
        return (gpa & 0xfff) == 0;
}

static int validate_svm(const struct kvm_nested_state *st, size_t len, NestedStateError *e) {
        uint32_t bad = st->flags & ~(KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING | KVM_STATE_NESTED_GIF_SET);
        if (bad)
                return refuse(e, -EINVAL, "flags", "flags 0x%x are not valid in the svm format (evmcs and mtf_pending are VMX flags)", bad);
        if (!(st->flags & KVM_STATE_NESTED_GUEST_MODE))
                return 0;
        if (st->hdr.svm.vmcb_pa == NESTED_STATE_INVALID_GPA || !page_aligned(st->hdr.svm.vmcb_pa))
                return refuse(e, -EINVAL, "svm.vmcb_pa", "guest_mode needs a page-aligned vmcb_pa, not 0x%llx",
                              (unsigned long long) st->hdr.svm.vmcb_pa);
        if (len < NESTED_STATE_SVM_MAX_SIZE)
                return refuse(e, -EINVAL, "size", "guest_mode needs the %u-byte VMCB save area after the header: %zu bytes is too short",
                              KVM_STATE_NESTED_SVM_VMCB_SIZE, len);
        return 0;
}

static int validate_vmx(const struct kvm_nested_state *st, size_t len, NestedStateError *e) {
        const struct kvm_vmx_nested_state_hdr *h = &st->hdr.vmx;
        uint32_t bad = st->flags & ~(KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING | KVM_STATE_NESTED_EVMCS |
                                     KVM_STATE_NESTED_MTF_PENDING);
        if (bad)
                return refuse(e, -EINVAL, "flags", "flags 0x%x are not valid in the vmx format (gif_set is an SVM flag)", bad);
        if (h->smm.flags & ~(KVM_STATE_NESTED_SMM_GUEST_MODE | KVM_STATE_NESTED_SMM_VMXON))
                return refuse(e, -EINVAL, "vmx.smm.flags", "unknown SMM flags 0x%x", h->smm.flags);
        if ((h->smm.flags & KVM_STATE_NESTED_SMM_GUEST_MODE) && !(h->smm.flags & KVM_STATE_NESTED_SMM_VMXON))
                return refuse(e, -EINVAL, "vmx.smm.flags", "SMM guest_mode without SMM vmxon");
        if ((h->smm.flags & KVM_STATE_NESTED_SMM_GUEST_MODE) && (st->flags & KVM_STATE_NESTED_GUEST_MODE))
                return refuse(e, -EINVAL, "vmx.smm.flags", "SMM guest_mode and guest_mode exclude each other");
        if (h->flags & ~KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE)
                return refuse(e, -EINVAL, "vmx.flags", "unknown VMX header flags 0x%x", h->flags);
        if (h->vmxon_pa == NESTED_STATE_INVALID_GPA) {
                if (h->smm.flags)
                        return refuse(e, -EINVAL, "vmx.smm.flags", "SMM flags without VMX operation (vmxon_pa is null)");
                if (h->vmcs12_pa != NESTED_STATE_INVALID_GPA)
                        return refuse(e, -EINVAL, "vmx.vmcs12_pa", "a vmcs12_pa without VMX operation (vmxon_pa is null)");
                if (st->flags & ~KVM_STATE_NESTED_EVMCS)
                        return refuse(e, -EINVAL, "flags", "flags 0x%x without VMX operation (vmxon_pa is null)",
                                      st->flags & ~KVM_STATE_NESTED_EVMCS);
                return 0;
        }
        if (!page_aligned(h->vmxon_pa))
                return refuse(e, -EINVAL, "vmx.vmxon_pa", "vmxon_pa 0x%llx is not page-aligned", (unsigned long long) h->vmxon_pa);
        if (len < NESTED_STATE_HDR_SIZE + KVM_STATE_NESTED_VMX_VMCS_SIZE) {
                if (st->flags & (KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_EVMCS) || h->vmcs12_pa != NESTED_STATE_INVALID_GPA)
                        return refuse(e, -EINVAL, "size", "a loaded vmcs12 needs %u bytes of vmcs12 after the header: %zu bytes is too short",
                                      KVM_STATE_NESTED_VMX_VMCS_SIZE, len);
                return 0;
        }
        if (h->vmcs12_pa != NESTED_STATE_INVALID_GPA) {
                if (h->vmcs12_pa == h->vmxon_pa || !page_aligned(h->vmcs12_pa))
                        return refuse(e, -EINVAL, "vmx.vmcs12_pa", "vmcs12_pa 0x%llx must be page-aligned and differ from vmxon_pa",
                                      (unsigned long long) h->vmcs12_pa);
        } else if (!(st->flags & KVM_STATE_NESTED_EVMCS))
                return refuse(e, -EINVAL, "vmx.vmcs12_pa", "vmcs12 data without a vmcs12_pa (and not an enlightened VMCS)");
        return 0;
}

int nested_state_validate(const void *blob, size_t len, int host_format, int max_size, NestedStateError *e) {
        struct kvm_nested_state st;

        if (max_size <= 0)
                return refuse(e, -EOPNOTSUPP, "size", "KVM_CAP_NESTED_STATE is 0: this host's KVM has no nested state");
        if (len < NESTED_STATE_HDR_SIZE)
                return refuse(e, -EINVAL, "size", "%zu bytes is shorter than the %u-byte header", len, NESTED_STATE_HDR_SIZE);
        if (len > (size_t) max_size)
                return refuse(e, -E2BIG, "size", "%zu bytes exceeds this host's KVM_CAP_NESTED_STATE of %d bytes", len, max_size);
        memcpy(&st, blob, sizeof st);
        if (st.size != len)
                return refuse(e, -EINVAL, "size", "the header's size field says %u bytes but the blob has %zu", st.size, len);
        if (st.format != KVM_STATE_NESTED_FORMAT_VMX && st.format != KVM_STATE_NESTED_FORMAT_SVM)
                return refuse(e, -EINVAL, "format", "unknown format %u (0 = vmx, 1 = svm)", st.format);
        if (host_format < 0)
                return refuse(e, -EINVAL, "format", "this host's CPU vendor has no known nested state format");
        if (st.format != (unsigned) host_format)
                return refuse(e, -EINVAL, "format", "the blob is in %s format but this host is %s",
                              nested_state_format_to_string(st.format), nested_state_format_to_string((unsigned) host_format));
        if (st.flags & ~NESTED_STATE_FLAGS_KNOWN)
                return refuse(e, -EINVAL, "flags", "unknown flags 0x%x", st.flags & ~NESTED_STATE_FLAGS_KNOWN);
        if ((st.flags & KVM_STATE_NESTED_RUN_PENDING) && !(st.flags & KVM_STATE_NESTED_GUEST_MODE))
                return refuse(e, -EINVAL, "flags", "run_pending without guest_mode");
        if (st.format == KVM_STATE_NESTED_FORMAT_SVM) {
                if (len > NESTED_STATE_SVM_MAX_SIZE)
                        return refuse(e, -EINVAL, "size", "%zu bytes exceeds the svm format's %u", len, NESTED_STATE_SVM_MAX_SIZE);
                return validate_svm(&st, len, e);
        }
        if (len > NESTED_STATE_VMX_MAX_SIZE)
                return refuse(e, -EINVAL, "size", "%zu bytes exceeds the vmx format's %u", len, NESTED_STATE_VMX_MAX_SIZE);
        return validate_vmx(&st, len, e);
}
