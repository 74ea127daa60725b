/* SPDX-License-Identifier: MIT */
/* Nested state blobs: the decoded header and the checks made before KVM_SET_NESTED_STATE. */
#include <errno.h>
#include <stdlib.h>

#include "control.h"
#include "json-util.h"
#include "nested-state.h"
#include "str-util.h"
#include "test.h"

#define SVM_SIZE NESTED_STATE_SVM_MAX_SIZE
#define VMX_SIZE NESTED_STATE_VMX_MAX_SIZE

/* A blob as KVM_GET_NESTED_STATE returns it on the test host: SVM, GUEST_MODE|GIF_SET, 4224 bytes. */
static struct kvm_nested_state *svm_blob(uint64_t vmcb_pa) {
        struct kvm_nested_state *st = calloc(1, SVM_SIZE);
        st->format = KVM_STATE_NESTED_FORMAT_SVM;
        st->flags = KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_GIF_SET;
        st->size = SVM_SIZE;
        st->hdr.svm.vmcb_pa = vmcb_pa;
        return st;
}

static struct kvm_nested_state *vmx_blob(void) {
        struct kvm_nested_state *st = calloc(1, VMX_SIZE);
        st->format = KVM_STATE_NESTED_FORMAT_VMX;
        st->flags = KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING;
        st->size = VMX_SIZE;
        st->hdr.vmx.vmxon_pa = 0x10000;
        st->hdr.vmx.vmcs12_pa = 0x11000;
        st->hdr.vmx.flags = KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE;
        st->hdr.vmx.preemption_timer_deadline = 123456789;
        return st;
}

static json_object *get(json_object *o, const char *a, const char *b) {
        json_object *v = NULL;
        json_object_object_get_ex(o, a, &v);
        if (b && v)
                json_object_object_get_ex(v, b, &v);
        return v;
}

static int validate(const struct kvm_nested_state *st, size_t len, int host, int max, NestedStateError *e) {
        *e = (NestedStateError){};
        return nested_state_validate(st, len, host, max, e);
}

TEST(vendor_to_format) {
        CHECK_EQ_INT(nested_state_format_for_vendor("GenuineIntel"), KVM_STATE_NESTED_FORMAT_VMX);
        CHECK_EQ_INT(nested_state_format_for_vendor("AuthenticAMD"), KVM_STATE_NESTED_FORMAT_SVM);
        CHECK_EQ_INT(nested_state_format_for_vendor("HygonGenuine"), KVM_STATE_NESTED_FORMAT_SVM);
        CHECK_EQ_INT(nested_state_format_for_vendor("KVMKVMKVM"), -EOPNOTSUPP);
        CHECK(streq(nested_state_format_to_string(KVM_STATE_NESTED_FORMAT_SVM), "svm"));
        CHECK(streq(nested_state_format_to_string(KVM_STATE_NESTED_FORMAT_VMX), "vmx"));
        CHECK(streq(nested_state_format_to_string(7), "unknown"));
}

TEST(decode_svm) {
        _cleanup_free_ struct kvm_nested_state *st = svm_blob(0x7000);
        _cleanup_json_ json_object *o = NULL;
        ASSERT_EQ_INT(nested_state_decode(st, SVM_SIZE, &o), 0);
        CHECK(streq(json_object_get_string(get(o, "format", NULL)), "svm"));
        CHECK_EQ_INT(json_object_get_int64(get(o, "size", NULL)), 4224);
        CHECK_EQ_INT(json_object_get_int64(get(o, "data_size", NULL)), 4096);
        CHECK_EQ_INT(json_object_get_int64(get(o, "flags", "raw")), 0x101);
        CHECK(json_object_get_boolean(get(o, "flags", "guest_mode")));
        CHECK(json_object_get_boolean(get(o, "flags", "gif_set")));
        CHECK(!json_object_get_boolean(get(o, "flags", "run_pending")));
        CHECK(!json_object_get_boolean(get(o, "flags", "evmcs")));
        CHECK_EQ_INT(json_object_get_int64(get(o, "svm", "vmcb_pa")), 0x7000);
        CHECK(get(o, "vmx", NULL) == NULL);
}

TEST(decode_vmx) {
        _cleanup_free_ struct kvm_nested_state *st = vmx_blob();
        _cleanup_json_ json_object *o = NULL;
        st->hdr.vmx.smm.flags = KVM_STATE_NESTED_SMM_VMXON;
        ASSERT_EQ_INT(nested_state_decode(st, VMX_SIZE, &o), 0);
        CHECK(streq(json_object_get_string(get(o, "format", NULL)), "vmx"));
        CHECK_EQ_INT(json_object_get_int64(get(o, "size", NULL)), 8320);
        CHECK(json_object_get_boolean(get(o, "flags", "run_pending")));
        json_object *vmx = get(o, "vmx", NULL);
        ASSERT(vmx);
        CHECK_EQ_INT(json_object_get_int64(get(vmx, "vmxon_pa", NULL)), 0x10000);
        CHECK_EQ_INT(json_object_get_int64(get(vmx, "vmcs12_pa", NULL)), 0x11000);
        CHECK(json_object_get_boolean(get(vmx, "smm", "vmxon")));
        CHECK(!json_object_get_boolean(get(vmx, "smm", "guest_mode")));
        CHECK(json_object_get_boolean(get(vmx, "flags", "preemption_timer_deadline_valid")));
        CHECK_EQ_INT(json_object_get_int64(get(vmx, "preemption_timer_deadline", NULL)), 123456789);
}

TEST(decode_invalid_gpa_is_null) {
        _cleanup_free_ struct kvm_nested_state *st = vmx_blob();
        _cleanup_json_ json_object *o = NULL;
        st->hdr.vmx.vmxon_pa = NESTED_STATE_INVALID_GPA;
        st->hdr.vmx.vmcs12_pa = NESTED_STATE_INVALID_GPA;
        ASSERT_EQ_INT(nested_state_decode(st, NESTED_STATE_HDR_SIZE, &o), 0);
        json_object *vmx = get(o, "vmx", NULL), *v = (json_object *) 1;
        ASSERT(vmx);
        CHECK(json_object_object_get_ex(vmx, "vmxon_pa", &v) && v == NULL);
        CHECK_EQ_INT(json_object_get_int64(get(o, "data_size", NULL)), 0);
}

TEST(decode_short) {
        uint8_t buf[64] = { 0 };
        json_object *o = NULL;
        CHECK_EQ_INT(nested_state_decode(buf, sizeof buf, &o), -EINVAL);
        CHECK(o == NULL);
}

TEST(validate_round_trip_svm) {
        _cleanup_free_ struct kvm_nested_state *st = svm_blob(0x7000);
        NestedStateError e;
        CHECK_EQ_INT(validate(st, SVM_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 4224, &e), 0);
        /* outside guest mode the header alone is a full state */
        st->flags = KVM_STATE_NESTED_GIF_SET;
        st->size = NESTED_STATE_HDR_SIZE;
        CHECK_EQ_INT(validate(st, NESTED_STATE_HDR_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 4224, &e), 0);
}

TEST(validate_round_trip_vmx) {
        _cleanup_free_ struct kvm_nested_state *st = vmx_blob();
        NestedStateError e;
        CHECK_EQ_INT(validate(st, VMX_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), 0);
}

TEST(validate_unsupported_and_sizes) {
        _cleanup_free_ struct kvm_nested_state *st = svm_blob(0x7000);
        NestedStateError e;
        CHECK_EQ_INT(validate(st, SVM_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 0, &e), -EOPNOTSUPP);
        CHECK(strstr(e.message, "KVM_CAP_NESTED_STATE"));
        CHECK_EQ_INT(validate(st, SVM_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 4096, &e), -E2BIG);
        CHECK(streq(e.field, "size"));
        CHECK_EQ_INT(validate(st, 100, KVM_STATE_NESTED_FORMAT_SVM, 4224, &e), -EINVAL);
        CHECK(streq(e.field, "size"));
        /* header size field disagrees with the blob */
        st->size = SVM_SIZE - 8;
        CHECK_EQ_INT(validate(st, SVM_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 4224, &e), -EINVAL);
        CHECK(streq(e.field, "size"));
        CHECK(strstr(e.message, "size field"));
        /* guest mode without the VMCB save area */
        st->size = NESTED_STATE_HDR_SIZE;
        CHECK_EQ_INT(validate(st, NESTED_STATE_HDR_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 4224, &e), -EINVAL);
        CHECK(streq(e.field, "size"));
}

TEST(validate_svm_vmcb_bigger_than_format) {
        _cleanup_free_ struct kvm_nested_state *st = calloc(1, VMX_SIZE);
        NestedStateError e;
        st->format = KVM_STATE_NESTED_FORMAT_SVM;
        st->size = VMX_SIZE;
        CHECK_EQ_INT(validate(st, VMX_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 8320, &e), -EINVAL);
        CHECK(strstr(e.message, "svm format"));
}

TEST(validate_format) {
        _cleanup_free_ struct kvm_nested_state *st = svm_blob(0x7000);
        NestedStateError e;
        CHECK_EQ_INT(validate(st, SVM_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(streq(e.field, "format"));
        CHECK(strstr(e.message, "svm format but this host is vmx"));
        CHECK_EQ_INT(validate(st, SVM_SIZE, -EOPNOTSUPP, 8320, &e), -EINVAL);
        CHECK(streq(e.field, "format"));
        st->format = 2;
        CHECK_EQ_INT(validate(st, SVM_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 8320, &e), -EINVAL);
        CHECK(strstr(e.message, "unknown format 2"));
}

TEST(validate_flags) {
        _cleanup_free_ struct kvm_nested_state *st = svm_blob(0x7000);
        NestedStateError e;
        st->flags |= 0x40;
        CHECK_EQ_INT(validate(st, SVM_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 4224, &e), -EINVAL);
        CHECK(streq(e.field, "flags"));
        CHECK(strstr(e.message, "unknown flags 0x40"));
        st->flags = KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_EVMCS;
        CHECK_EQ_INT(validate(st, SVM_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 4224, &e), -EINVAL);
        CHECK(strstr(e.message, "svm format"));
        st->flags = KVM_STATE_NESTED_RUN_PENDING;
        CHECK_EQ_INT(validate(st, SVM_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 4224, &e), -EINVAL);
        CHECK(strstr(e.message, "run_pending without guest_mode"));
}

TEST(validate_svm_vmcb_pa) {
        _cleanup_free_ struct kvm_nested_state *st = svm_blob(0x7010);
        NestedStateError e;
        CHECK_EQ_INT(validate(st, SVM_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 4224, &e), -EINVAL);
        CHECK(streq(e.field, "svm.vmcb_pa"));
        st->hdr.svm.vmcb_pa = NESTED_STATE_INVALID_GPA;
        CHECK_EQ_INT(validate(st, SVM_SIZE, KVM_STATE_NESTED_FORMAT_SVM, 4224, &e), -EINVAL);
        CHECK(streq(e.field, "svm.vmcb_pa"));
}

TEST(validate_vmx_header) {
        _cleanup_free_ struct kvm_nested_state *st = vmx_blob();
        NestedStateError e;
        st->flags |= KVM_STATE_NESTED_GIF_SET;
        CHECK_EQ_INT(validate(st, VMX_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(strstr(e.message, "gif_set is an SVM flag"));
        st->flags = KVM_STATE_NESTED_GUEST_MODE;

        st->hdr.vmx.smm.flags = 0x4;
        CHECK_EQ_INT(validate(st, VMX_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(streq(e.field, "vmx.smm.flags"));
        st->hdr.vmx.smm.flags = KVM_STATE_NESTED_SMM_GUEST_MODE;
        CHECK_EQ_INT(validate(st, VMX_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(strstr(e.message, "without SMM vmxon"));
        st->hdr.vmx.smm.flags = KVM_STATE_NESTED_SMM_GUEST_MODE | KVM_STATE_NESTED_SMM_VMXON;
        CHECK_EQ_INT(validate(st, VMX_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(strstr(e.message, "exclude each other"));
        st->hdr.vmx.smm.flags = 0;

        st->hdr.vmx.flags = 0x2;
        CHECK_EQ_INT(validate(st, VMX_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(streq(e.field, "vmx.flags"));
        st->hdr.vmx.flags = 0;

        st->hdr.vmx.vmxon_pa = 0x10001;
        CHECK_EQ_INT(validate(st, VMX_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(streq(e.field, "vmx.vmxon_pa"));
        st->hdr.vmx.vmxon_pa = 0x11000;
        CHECK_EQ_INT(validate(st, VMX_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(streq(e.field, "vmx.vmcs12_pa"));
        st->hdr.vmx.vmxon_pa = 0x10000;
        st->hdr.vmx.vmcs12_pa = NESTED_STATE_INVALID_GPA;
        CHECK_EQ_INT(validate(st, VMX_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(streq(e.field, "vmx.vmcs12_pa"));
}

TEST(validate_vmx_outside_vmx_operation) {
        _cleanup_free_ struct kvm_nested_state *st = vmx_blob();
        NestedStateError e;
        st->size = NESTED_STATE_HDR_SIZE;
        st->flags = 0;
        st->hdr.vmx.flags = 0;
        st->hdr.vmx.vmxon_pa = NESTED_STATE_INVALID_GPA;
        st->hdr.vmx.vmcs12_pa = NESTED_STATE_INVALID_GPA;
        CHECK_EQ_INT(validate(st, NESTED_STATE_HDR_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), 0);
        st->flags = KVM_STATE_NESTED_GUEST_MODE;
        CHECK_EQ_INT(validate(st, NESTED_STATE_HDR_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(strstr(e.message, "without VMX operation"));
        st->flags = 0;
        st->hdr.vmx.vmcs12_pa = 0x1000;
        CHECK_EQ_INT(validate(st, NESTED_STATE_HDR_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(streq(e.field, "vmx.vmcs12_pa"));
        /* VMXON without a loaded vmcs12: the header alone */
        st->hdr.vmx.vmxon_pa = 0x10000;
        st->hdr.vmx.vmcs12_pa = NESTED_STATE_INVALID_GPA;
        CHECK_EQ_INT(validate(st, NESTED_STATE_HDR_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), 0);
        st->hdr.vmx.vmcs12_pa = 0x11000;
        CHECK_EQ_INT(validate(st, NESTED_STATE_HDR_SIZE, KVM_STATE_NESTED_FORMAT_VMX, 8320, &e), -EINVAL);
        CHECK(streq(e.field, "size"));
}

/* The biggest blob (VMX, 8320 bytes) in a nested_state_set request fits one control message. */
TEST(largest_set_request_fits_a_control_message) {
        _cleanup_free_ struct kvm_nested_state *st = vmx_blob();
        memset((uint8_t *) st + NESTED_STATE_HDR_SIZE, 0xa5, VMX_SIZE - NESTED_STATE_HDR_SIZE);
        _cleanup_free_ char *b64 = base64_encode(st, VMX_SIZE);
        ASSERT(b64);
        _cleanup_json_ json_object *req = json_object_new_object(), *params = json_object_new_object();
        json_add_string(req, "method", "nested_state_set");
        json_add_int(req, "id", 1);
        json_add_int(params, "vcpu", 7);
        json_add_string(params, "data", b64);
        json_add(req, "params", json_object_get(params));
        size_t len = strlen(json_to_string(req));
        CHECK(len > 11000);
        CHECK(len < CONTROL_MESSAGE_MAX);
        _cleanup_free_ void *back = NULL;
        size_t back_len = 0;
        ASSERT_EQ_INT(base64_decode(b64, &back, &back_len), 0);
        CHECK_EQ_INT(back_len, VMX_SIZE);
        CHECK(memcmp(back, st, VMX_SIZE) == 0);
}
